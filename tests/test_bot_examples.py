"""The bundled configuration (examples/aksdiag.yaml) maps every example snapshot, and the bot
answers about them as it would in a real workspace (docs/slack.md)."""

from __future__ import annotations

from pathlib import Path

from bot_harness import OPS, Bot, block_text

from bot.config import load_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_every_example_snapshot_is_a_configured_cluster():
    config = load_config(EXAMPLES / "aksdiag.yaml")
    folders = {p.name for p in EXAMPLES.iterdir() if (p / "cluster.json").exists()}
    assert folders == set(config.clusters)
    for alias, cluster in config.clusters.items():
        assert config.resolve(cluster.snapshot or "").is_dir(), alias


def test_the_bot_diagnoses_the_bundled_examples(tmp_path, redis_url):
    b = Bot(tmp_path, redis_url, config_file=EXAMPLES / "aksdiag.yaml")
    try:
        b.command("apiserver broken-apiserver")
        b.command("svc broken-service shop/web")
        b.command("health healthy")
        parents = {block_text(p).split("\n")[1]: block_text(p) for p in b.finished_parents(count=3)}
        assert "*CRITICAL*" in parents["`apiserver broken-apiserver` · for <@UFAKEALICE>"]
        service = parents["`service broken-service shop/web` · for <@UFAKEALICE>"]
        assert "*CRITICAL* · *Service shop/web: selector" in service  # about what was asked
        healthy = parents["`health healthy` · for <@UFAKEALICE>"]
        assert healthy.startswith(":large_green_circle: *No problems found*")
        assert all(b.slack.replies(OPS, p["ts"]) for p in b.slack.top_level(OPS))
    finally:
        b.stop()


def test_the_bot_answers_with_the_api_servers_side_from_the_audit_log(tmp_path, redis_url):
    """`/aksdiag node-api broken-nodeapi --since 1h`: the 403s and 429s of its audit log."""
    b = Bot(tmp_path, redis_url, config_file=EXAMPLES / "aksdiag.yaml")
    try:
        b.command("node-api broken-nodeapi --since 1h")
        (parent,) = b.finished_parents(count=1)
        text = block_text(parent) + "".join(
            block_text(r) for r in b.slack.replies(OPS, parent["ts"])
        )
        assert "nodeapi.rbac-forbidden" in text and "nodeapi.apiserver-throttled" in text
        assert "388 × 403" in text and "in the last 1h" in text
    finally:
        b.stop()
