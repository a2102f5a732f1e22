"""Secrets (issue 8, item 3; issue 15): a corpus of realistic secret formats
(tests/secret_corpus.py) planted in every place a cluster can hold one — event messages, env
values, args, probes (exec commands, httpGet paths, httpHeaders), lifecycle hooks, CSI
volumeAttributes, gitRepo URLs, annotations, labels, ConfigMaps, pod-template annotations, ARM
properties (httpProxyConfig, workspaceKey, tags) — and typed by users (a silence reason) never
reaches a Slack payload, a log line of `aksdiag serve` or of the CLI, CLI output in any format,
a Redis value, or a snapshot written by `aksdiag capture`; and settings errors never echo the
secret they are about. Ids made of hex digits only stay readable. Every redaction pattern runs
in linear time (1 MB hostile inputs under a budget).

Every fake keeps its real format and says FAKE or EXAMPLE where the format allows.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from bot_harness import OPS, block_text, buttons
from builders import configmap, event, pod, service
from emulators import KubeEmulator
from emulators.sample import NODE1, sample_objects
from secret_corpus import CORPUS, DEVOPS_PAT, JWT_RS, JWT_SHORT, leaks
from slack_client import SIGNING_SECRET
from slack_emulator import SlackEmulator
from test_resilience_restart import ServeProcess

from bot.logs import JsonFormatter
from diagnostics.collectors.settings import LiveSettings, SettingsError
from diagnostics.redact import MASK, TOKEN_FORMATS, redact_text

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = "3f2a9c0d1e4b5a6978c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6"
DIGEST = "sha256:9b2d6a0c4e8f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d1e2f4a6b8c0d2e3f5a7b"
ACCOUNT_KEY = "FAKEkeyEXAMPLE/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV+/=="
GHP = CORPUS["github pat classic"][0]
GHP_OTHER = "ghp_EXAMPLEfake9876543210zyxwvutsrqponmlk"
SECRETS = [secret for secret, _ in CORPUS.values()]
RERUN, COMMANDS = "aksdiag_rerun", "aksdiag_commands"
_leaks = leaks


# ---------------------------------------------------------------- redaction by pattern
def test_the_corpus_holds_at_least_50_formats_and_a_fake_for_every_token_format_row():
    assert len(CORPUS) >= 50
    for name, pattern in TOKEN_FORMATS:
        row = re.compile(pattern)
        assert any(row.search(secret) for secret in SECRETS), f"no fake for the {name} row"


@pytest.mark.parametrize("kind", list(CORPUS))
def test_each_realistic_secret_format_is_masked_and_the_text_around_it_kept(kind):
    secret, needle = CORPUS[kind]
    text = f"upstream said: {secret} (retrying in 5s)"
    clean = redact_text(text)
    assert needle not in clean and MASK in clean
    assert clean.startswith("upstream said: ") and clean.endswith("(retrying in 5s)")


@pytest.mark.parametrize(
    "text, clean",
    [
        (
            "GET /healthz?access_token=eyJhbGciOiJub25lIn0.eyJGQUtFIjoxfQ. failed: 401",
            f"GET /healthz?access_token={MASK} failed: 401",
        ),
        (
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
        ),
        (
            "rpc error: code = Unknown desc = failed to pull",
            "rpc error: code = Unknown desc = failed to pull",
        ),
        ('{"user": "app", "password": "FAKE"}', f'{{"user": "app", "password": "{MASK}"}}'),
        ("AZURE_CLIENT_SECRET=x8Q~FAKE", f"AZURE_CLIENT_SECRET={MASK}"),
        (
            "said: //registry.npmjs.org/:_authToken=FAKEnpmrc",
            f"said: //registry.npmjs.org/:_authToken={MASK}",
        ),
        ("https://PAT@dev.azure.com/org/_git/repo", f"https://{MASK}@dev.azure.com/org/_git/repo"),
        ("Authorization: Bearer FAKEtokenEXAMPLE1", f"Authorization: Bearer {MASK}"),
        ("app:FAKE@tcp(db:3306)/orders", f"app:{MASK}@tcp(db:3306)/orders"),
        ("image nginx:1.25@sha256:abc pulled", "image nginx:1.25@sha256:abc pulled"),
        (
            "az rest --url 'https://management.azure.com/x?api-version=2024-09-01'",
            "az rest --url 'https://management.azure.com/x?api-version=2024-09-01'",
        ),
        (
            "az aks show --query \"agentPoolProfiles[?name=='np1']\"",
            "az aks show --query \"agentPoolProfiles[?name=='np1']\"",
        ),
        (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/MC_rg-prod_prod_westeurope"
            "/providers/Microsoft.Network/publicIPAddresses/kubernetes-a1b2c3",
            None,
        ),
        ("node image AKSUbuntu-2204gen2containerd-202510.19.0", None),
        ("containerd://a3ea84ef5689a754d620103fc5ee1b75f2c2b1c7fdc34eade5dc97e9a5c3fbff", None),
        ("secretName: db-credentials", None),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else "",
)
def test_evidence_keeps_its_meaning(text, clean):
    assert redact_text(text) == (text if clean is None else clean)


def test_the_bundled_examples_hold_no_false_positive_but_a_certificate():
    """Every string of every example snapshot comes out of redaction unchanged (a harmless event
    message, an id, a path, an image), except a PEM certificate body."""
    changed = []
    for path in sorted((ROOT / "examples").rglob("*.json")):
        stack = [json.loads(path.read_text())]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                stack += [*value.values(), *value.keys()]
            elif isinstance(value, list):
                stack += value
            elif isinstance(value, str) and redact_text(value) != value:
                changed.append(value)
    assert all("BEGIN CERTIFICATE" in v for v in changed), changed[:5]


def test_hex_ids_stay_readable_and_base64_keys_do_not():
    cni = (
        f'failed to setup network for sandbox "{SANDBOX}": plugin type="azure-vnet" failed '
        f"(add): image {DIGEST}, commit 0123456789abcdef0123456789abcdef01234567"
    )
    assert redact_text(cni) == cni
    assert redact_text(SANDBOX.upper()) == SANDBOX.upper()
    key = "FAKEkeyEXAMPLE0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ=="
    assert redact_text(f"key {key} end") == f"key {MASK} end"
    assert redact_text(f"key {ACCOUNT_KEY[:60]} end") == f"key {MASK} end"


HOSTILE = {
    "a+ then dot": lambda n: "a+" * (n // 2) + ".",
    "angle brackets": lambda n: "<" * n,
    "one long word": lambda n: "a" * n,
    "mixed base64 run": lambda n: "aZ9+/" * (n // 5),
    "jwt head then run": lambda n: "eyJ" + "a" * n,
    "jwt dots": lambda n: "eyJ." * (n // 4),
    "unterminated pem": lambda n: "-----BEGIN RSA PRIVATE KEY-----" + "A" * n,
    "many pem heads": lambda n: "-----BEGIN RSA PRIVATE KEY-----" * (n // 31),
    "key colon": lambda n: "a: " * (n // 3),
    "secret key then long value": lambda n: "password=" + "a" * n,
    "unclosed quote": lambda n: 'password="' + "a" * n,
    "quoted keys": lambda n: '"a": "' * (n // 6),
    "schemes": lambda n: "x://" * (n // 4),
    "query": lambda n: "?a=" * (n // 3),
    "ampersands": lambda n: "&a=b" * (n // 4),
    "at signs": lambda n: "@" * n,
    "dsn-like": lambda n: "a:b" * (n // 3),
    "flags": lambda n: "--password " * (n // 11),
    "aad-like": lambda n: "abc8Q~" * (n // 6),
    "hex": lambda n: "0123456789abcdef" * (n // 16),
    "spaces": lambda n: " " * n,
    "equals": lambda n: "=" * n,
    "slashes": lambda n: "aB1/" * (n // 4),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_every_pattern_runs_in_linear_time_on_1_mb(kind):
    """1 MB of hostile text through every pattern, uncapped. Linear patterns take well under a
    second here; a pattern that backtracks quadratically takes minutes (the old base64 rule:
    12.9 s on 20 KB). The budget is generous so a loaded machine cannot flake it."""
    text = HOSTILE[kind](1_000_000)
    started = time.perf_counter()
    redact_text(text, limit=None)
    assert time.perf_counter() - started < 20.0


def test_text_is_capped_before_any_pattern_and_the_cut_says_so():
    text = "word " * 10_000 + GHP
    clean = redact_text(text, limit=1000)
    assert len(clean) < 1100 and clean.endswith("characters]") and "truncated" in clean
    half = "x" * 990 + " " + GHP  # a cut in the middle of a token drops the whole token
    assert "ghp_" not in redact_text(half, limit=1000)


def test_log_lines_mask_the_redis_password_however_it_is_written():
    env = {
        "REDIS_URL": "redis://:FAKE%2Fpw%2BEXAMPLE@cache:6380/0",
        "REDIS_PASSWORD": "FAKEbundledPASSWORDexample",
    }
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(env))
    log = logging.getLogger("test.secrets")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info(
            "auth with FAKE/pw+EXAMPLE failed; FAKE%2Fpw%2BEXAMPLE; FAKEbundledPASSWORDexample"
        )
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "FAKE/pw+EXAMPLE" not in out and "FAKE%2Fpw" not in out and "FAKEbundled" not in out


def test_live_settings_errors_do_not_echo_credentials_in_an_endpoint():
    with pytest.raises(SettingsError) as err:
        LiveSettings.from_env({"AKSDIAG_ARM_ENDPOINT": "http://admin:FAKEarmPassEXAMPLE@arm.local"})
    assert "AKSDIAG_ARM_ENDPOINT must be an https:// URL" in str(err.value)
    assert "FAKEarmPassEXAMPLE" not in str(err.value)


# ---------------------------------------------------------------- a cluster full of secrets
LABEL_VALUE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


def planted_cluster() -> dict:
    """The sample cluster with every secret of the corpus in every place a cluster holds text."""
    objects = sample_objects()
    joined = " ; ".join(SECRETS)
    numbered = {f"example.com/note-{i}": s for i, s in enumerate(SECRETS)}
    web = objects["pods"][0]
    web["metadata"]["annotations"] = {
        **numbered,
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"s": SECRETS}),
    }
    web["metadata"]["labels"] = {
        **web["metadata"]["labels"],
        "deploy-token": GHP,
        **{f"t{i}": s for i, s in enumerate(SECRETS) if LABEL_VALUE.fullmatch(s)},
    }
    c = web["spec"]["containers"][0]
    c["env"] = [
        {"name": "SLACK_BOT_TOKEN", "value": SECRETS[0]},
        {"name": "LOG_LEVEL", "value": "info"},
        *({"name": f"UPSTREAM_{i}", "value": s} for i, s in enumerate(SECRETS)),
    ]
    c["command"], c["args"] = ["sh", "-c", joined], list(SECRETS)
    c["readinessProbe"] = {"exec": {"command": ["sh", "-c", f"curl -fsS -u {joined} localhost"]}}
    c["livenessProbe"] = {
        "httpGet": {
            "path": f"/healthz?access_token={JWT_SHORT}",
            "port": 8080,
            "httpHeaders": [{"name": f"X-Key-{i}", "value": s} for i, s in enumerate(SECRETS)],
        }
    }
    c["lifecycle"] = {
        "postStart": {"exec": {"command": ["sh", "-c", joined]}},
        "preStop": {"httpGet": {"path": f"/drain?key={SECRETS[1]}", "port": 8080}},
    }
    web["spec"]["volumes"] = [
        {
            "name": "kv",
            "csi": {
                "driver": "secrets-store.csi.k8s.io",
                "volumeAttributes": {f"k{i}": s for i, s in enumerate(SECRETS)},
            },
        },
        {
            "name": "repo",
            "gitRepo": {"repository": f"https://{DEVOPS_PAT}@dev.azure.com/fake/_git/app"},
        },
    ]
    # a service whose selector differs from its pods in one (secret) label value: the check
    # shows the labels and suggests a `kubectl patch`
    objects["pods"].append(
        pod(
            "batch-0",
            "shop",
            NODE1,
            "10.244.1.40",
            {"app": "batch", "deploy-token": GHP},
            owner=("ReplicaSet", "batch-7d"),
        )
    )
    objects["services"].append(
        service(
            "batch",
            "shop",
            {"app": "batch", "deploy-token": GHP_OTHER},
            [("http", 80, 8080)],
            cluster_ip="10.0.120.18",
        )
    )
    objects["services"][0]["metadata"]["annotations"] = numbered
    objects["daemonsets"][0]["spec"]["template"]["metadata"] = {"annotations": numbered}
    objects["configmaps"].append(
        configmap(
            "app-settings",
            {
                **{f"k{i}": s for i, s in enumerate(SECRETS)},
                "client_secret": "FAKE",
                "level": "info",
                "config.yaml": "\n".join(SECRETS),
            },
        )
    )
    pending = objects["events"][0]
    pending["message"] = (
        f"Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network "
        f'for sandbox "{SANDBOX}": plugin type="azure-vnet" failed (add): Failed to allocate '
        f"address: no IP addresses available in range set: 10.244.1.1-10.244.1.254 "
        f"(diagnostics uploaded to {CORPUS['sas url'][0]})"
    )
    for i, secret in enumerate(SECRETS):
        objects["events"].append(
            event(
                "FailedCreatePodSandBox",
                f'failed to setup network for sandbox "{SANDBOX}": plugin '
                f'type="azure-vnet" failed (add): netplugin failed: {secret} rejected',
                name="web-0",
                namespace="shop",
                count=i + 1,
                host=NODE1,
            )
        )
        objects["events"].append(
            event("Failed", f"Failed to pull image: {secret}", name="api-0", namespace="shop")
        )
    return objects


def deny_with_a_credential(k8s: KubeEmulator) -> None:
    """An API server error that quotes a credential (a webhook or a proxy can): the reason,
    "could not check X because Y", is shown in Slack, logged and written by capture."""
    k8s.fault(
        "/apis/networking.k8s.io/v1/networkpolicies",
        403,
        body={
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": f"denied by webhook: bearer {JWT_RS} is not allowed; "
            f"see {CORPUS['sas url'][0]}",
        },
    )


def _redis_values(url: str) -> str:
    """Every value of every key, whatever its type."""
    client: Any = redis.Redis.from_url(url)  # replies of every type: bytes, lists, pairs
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            out.append(client.get(key))
        elif kind == "list":
            out += client.lrange(key, 0, -1)
        elif kind == "hash":
            out += [*client.hgetall(key).keys(), *client.hgetall(key).values()]
        elif kind == "set":
            out += list(client.smembers(key))
        elif kind == "zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        out.append(key)
    client.close()
    return "\n".join(v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in out)


def test_planted_secrets_reach_no_slack_payload_log_line_or_cache_entry(tmp_path, tls, redis_url):
    slack = SlackEmulator().start()
    with KubeEmulator(certfile=str(tls.server_pem), **planted_cluster()) as k8s:
        deny_with_a_credential(k8s)
        kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        config = tmp_path / "aksdiag.yaml"
        config.write_text(
            yaml.safe_dump({"clusters": {"shop": {"kubernetes": {"kubeconfig": str(kubeconfig)}}}})
        )
        served = ServeProcess(config, slack, "--verbose", REDIS_URL=redis_url)
        try:
            asks = [
                "health shop",
                "service shop shop/web",
                "service shop shop/api",
                "service shop shop/batch",
                "pod-ip shop",
                "node-api shop --as shop/web",
                "apiserver shop",
            ]
            for text in asks:
                served.client.command(text, response_url=slack.response_url("r"))

            def finished() -> list[dict]:
                done = [
                    m
                    for m in slack.top_level(OPS)
                    if RERUN in buttons(m) and slack.replies(OPS, m["ts"])
                ]
                # a service that does not exist is told to the requester only
                private = [r for r in slack.responses("r") if ":grey_question:" in r["text"]]
                return done if len(done) + len(private) == len(asks) else []

            parents = slack.wait_for(finished, 30)
            health = next(p for p in parents if "`health shop`" in block_text(p))
            served.client.action(
                COMMANDS,
                buttons(health)[COMMANDS],
                message_ts=health["ts"],
                response_url=slack.response_url("c"),
            )
            served.client.command("history shop", response_url=slack.response_url("h"))
            slack.wait_for(lambda: slack.responses("h"))
            # a user types a secret into a silence reason: stored and posted redacted
            served.client.command(
                f"silence podip.allocation-failed shop for 1h -- rotated "
                f"{GHP}, {CORPUS['aad client secret bare'][0]}",
                response_url=slack.response_url("s"),
            )
            slack.wait_for(lambda: slack.responses("s"))
            served.client.command("silences", response_url=slack.response_url("l"))
            slack.wait_for(lambda: slack.responses("l"))
            slack.wait_for(
                lambda: [
                    m for m in slack.responses("c") if (m["text"] or "").startswith("commands for")
                ]
            )
        finally:
            assert served.stop() == 0
            slack.stop()
    payloads = "\n".join(json.dumps(c.params) for c in slack.calls)
    assert "podip.allocation-failed" in payloads and "service." in payloads  # findings were shown
    assert "denied by webhook" in payloads  # the reason was shown, its credential masked
    assert "kubectl patch service -n shop batch" in payloads  # labels shown, masked
    assert "deploy-token=[REDACTED:" in payloads and "rotated [REDACTED]" in payloads
    assert _leaks(payloads) == [], "a secret reached Slack"
    logs = "".join(served.lines)
    assert '"level": "debug"' in logs or '"level": "info"' in logs
    assert _leaks(logs) == [], "a secret reached a log line"
    cached = _redis_values(redis_url)
    assert "aksdiag:report:" in cached  # reports were cached
    assert _leaks(cached) == [], "a secret reached Redis"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "REDIS_", "AKSDIAG_", "AZURE_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_and_capture_write_no_secret_and_keep_hex_ids(tmp_path, tls):
    with KubeEmulator(certfile=str(tls.server_pem), **planted_cluster()) as k8s:
        deny_with_a_credential(k8s)
        kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        ran = _cli(
            "run",
            "health",
            "shop",
            "--kubeconfig",
            str(kubeconfig),
            "--format",
            "json",
            "--verbose",
        )
        others = [
            _cli(
                "run",
                scenario,
                "shop",
                *more,
                "--kubeconfig",
                str(kubeconfig),
                "--format",
                fmt,
                "--verbose",
            )
            for scenario, more in (("health", ()), ("service", ("shop/batch",)))
            for fmt in ("text", "blocks")
        ]
        captured = _cli(
            "capture", "shop", str(tmp_path / "snap"), "--kubeconfig", str(kubeconfig), "--verbose"
        )
    assert ran.returncode in (0, 1) and json.loads(ran.stdout)["findings"]
    assert captured.returncode == 0, captured.stderr
    assert _leaks(ran.stdout + ran.stderr + captured.stdout + captured.stderr) == []
    for other in others:
        assert other.returncode in (0, 1) and other.stdout, other.stderr
        assert _leaks(other.stdout + other.stderr) == [], other.args
    assert "kubectl patch service" in others[2].stdout + others[3].stdout
    written = "\n".join(p.read_text() for p in sorted((tmp_path / "snap").rglob("*.json")))
    assert _leaks(written) == [], "a secret reached the snapshot"
    assert SANDBOX in written, "a sandbox id is not a secret: it must stay readable"
    assert "denied by webhook" in written and "denied by webhook" in ran.stdout
    again = _cli("run", "pod-ip", "shop", "--snapshot", str(tmp_path / "snap"), "--format", "json")
    assert _leaks(again.stdout) == [] and "podip.allocation-failed" in again.stdout


# ---------------------------------------------------------------- settings errors
@pytest.mark.parametrize(
    "env, says, secret",
    [
        (
            {"REDIS_URL": "redis://:FAKEpass/EXAMPLE+key==@cache.example:6380/0"},
            "REDIS_URL is not a valid Redis URL",
            "FAKEpass",
        ),
        (
            {"REDIS_URL": "redis//:FAKEredisEXAMPLE@cache.example:6380/0"},
            "REDIS_URL is not a valid Redis URL",
            "FAKEredisEXAMPLE",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-9999999999-FAKE9999999-EXAMPLEwrongToken000000"},
            "Slack rejected SLACK_BOT_TOKEN (not_authed)",
            "EXAMPLEwrongToken",
        ),
        (
            {"SLACK_APP_TOKEN": "xapp-1-AFAKE9-9999999999-EXAMPLEwrongAppToken00000000"},
            "Slack rejected SLACK_APP_TOKEN (not_authed)",
            "EXAMPLEwrongAppToken",
        ),
    ],
    ids=["redis-url-bad-password", "redis-url-bad-scheme", "bot-token", "app-token"],
)
def test_serve_settings_errors_name_the_variable_never_the_secret(tmp_path, env, says, secret):
    config = tmp_path / "aksdiag.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"prod": {"snapshot": "prod"}}}))
    slack = SlackEmulator().start()
    try:
        done = _cli(
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
            env={
                "SLACK_BOT_TOKEN": slack.token,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                **env,
            },
        )
    finally:
        slack.stop()
    assert done.returncode == 3, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert secret not in done.stdout + done.stderr


# ---------------------------------------------------------------- ARM properties
def test_arm_properties_reach_no_report_rendering_or_captured_file(tmp_path, tls):
    """Tags, an httpProxyConfig with `user:pass@`, the Log Analytics workspaceKey, a service
    principal secret: a live run over ARM renders (text, json, blocks) and captures none."""
    from builders import SUB
    from emulators import AAD_TOKEN, ArmEmulator
    from rich.console import Console
    from test_capture import MC, FakeCredential, azure_cluster, settings

    from bot.render.blocks import report_payload
    from bot.render.text import render_text
    from diagnostics.collectors.arm import AzureTarget
    from diagnostics.collectors.capture import capture
    from diagnostics.collectors.kubeauth import KubeAccess
    from diagnostics.collectors.live import LiveSource
    from diagnostics.runner import run

    body = azure_cluster()
    body["tags"] = {f"t{i}": s for i, s in enumerate(SECRETS)}
    body["httpProxyConfig"] = {
        "httpProxy": CORPUS["http proxy with credentials"][0],
        "httpsProxy": CORPUS["http proxy with credentials"][0],
        "noProxy": SECRETS[:5],
    }
    body["addonProfiles"] = {
        "omsagent": {
            "enabled": True,
            "config": {
                "logAnalyticsWorkspaceResourceID": "/subscriptions/x/workspaces/w",
                "workspaceKey": CORPUS["log analytics workspace key"][1],
            },
        }
    }
    body["servicePrincipalProfile"] = {
        "clientId": "msi",
        "secret": CORPUS["aad client secret bare"][0],
    }
    body["windowsProfile"] = {
        "adminUsername": "azureuser",
        "adminPassword": "FAKE-win-EXAMPLE-pass",
    }
    with (
        KubeEmulator(certfile=str(tls.server_pem), tokens=(AAD_TOKEN,), **planted_cluster()) as k8s,
        ArmEmulator(k8s=k8s, certfile=str(tls.server_pem)) as arm,
    ):
        arm.ca_data = tls.ca_data
        arm.add_cluster(body)
        arm.add_public_ip(f"{MC}/publicIPAddresses/egress-1", "20.61.1.1")
        source = LiveSource(
            "prod",
            kube=KubeAccess("aad"),
            azure=AzureTarget(SUB, "rg-prod", "prod"),
            settings=settings(arm.url),
            credential=FakeCredential(),
            connection_verify=str(tls.ca_pem),
        )
        served = json.dumps(source.clients.arm().cluster_body("rg-prod", "prod"))
        assert SECRETS[0] in served and "FAKE-win-EXAMPLE" in served  # what ARM answered
        report = run("health", source)
        capture(source, tmp_path / "snap")
    out = io.StringIO()
    console = Console(file=out, width=200, soft_wrap=False)
    render_text(report, console)
    rendered = [out.getvalue(), json.dumps(report.to_dict()), json.dumps(report_payload(report))]
    assert report.findings and "cluster" in report.collected
    for text in rendered:
        assert _leaks(text) == [] and "FAKE-win-EXAMPLE" not in text
    written = "\n".join(p.read_text() for p in sorted((tmp_path / "snap").rglob("*.json")))
    assert '"fqdn"' in written  # cluster.json was written
    assert _leaks(written) == [] and "FAKE-win-EXAMPLE" not in written
    assert "tags" not in json.loads((tmp_path / "snap/cluster.json").read_text())
