"""Authorization (issue 8, item 4), over the wire: a user outside a cluster's allow lists gets a
refusal and no cluster data on every surface — slash command, mention, both buttons (forged
values naming the cluster), `history`, `silence`, `unsilence`, `silences CLUSTER`, `digest` —
and every decision, allowed or refused, is an audit log line naming who, where, what and the
rule.

Already covered elsewhere: the refusal wording per rule and channel refusals for commands
(`test_bot_errors.py::test_refusals_say_which_rule_refused_are_audited_and_read_nothing`),
forged button values of every shape (`test_bot_errors.py::test_forged_button_values_run_nothing`),
user groups decided after the ack (`test_bot_errors.py::test_user_groups_not_loaded_yet_ack_first_then_decide`),
the access rules themselves (`test_config.py::test_access_rules`). Scheduled digests have no
requester: the configuration may not point one at a channel a cluster's allow list leaves out.
"""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from bot_harness import ALICE, MALLORY, OPS, OTHER, Bot, make_clusters

from bot.config import ConfigError, load_config

pytest_plugins = ["bot_fixtures"]
RERUN, COMMANDS = "aksdiag_rerun", "aksdiag_commands"
CODE = "apiserver.authorized-ip.client-excluded"
VAULT_DATA = ("rg-vault", "rg-prod")  # what only a run on a cluster can show


def _audits(caplog) -> list[dict]:
    """Access decisions (silence changes are audited too, as events)."""
    return [
        r.fields for r in caplog.records if r.name == "aksdiag.audit" and "decision" in r.fields
    ]


class Asker:
    """Sends one request as a user and returns what came back to that user only."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def command(self, text: str, user: str, channel: str = OPS) -> str:
        token, url = self.bot.response_url()
        ack = self.bot.command(text, user=user, channel=channel, response_url=url)
        assert ack.status == 200
        if ack.body:
            return ack.json()["text"]
        return self.bot.slack.wait_for(lambda: self.bot.slack.responses(token))[-1]["text"]

    def mention(self, text: str, user: str, channel: str = OPS) -> str:
        before = len(self.bot.slack.ephemerals(user))
        assert (
            self.bot.client.mention(f"<@UBOTFAKE1> {text}", user=user, channel=channel).status
            == 200
        )
        said = self.bot.slack.wait_for(lambda: self.bot.slack.ephemerals(user)[before:])
        return said[-1]["text"]

    def button(self, action: str, cluster: str, user: str, parent_ts: str) -> str:
        token, url = self.bot.response_url()
        value = json.dumps({"s": "apiserver", "c": cluster, "a": {}})
        self.bot.client.action(action, value, user=user, response_url=url, message_ts=parent_ts)
        return self.bot.slack.wait_for(lambda: self.bot.slack.responses(token))[-1]["text"]


def test_every_surface_refuses_a_user_outside_the_allow_lists_and_audits_every_decision(
    tmp_path, redis_url, caplog
):
    caplog.set_level(logging.INFO, logger="aksdiag.audit")
    config = make_clusters(tmp_path)
    config["digests"].append(
        {"name": "vaulted", "channel": OPS, "cron": "0 9 * * *", "clusters": ["prod", "vault"]}
    )
    bot = Bot(tmp_path, redis_url, config=config)
    ask = Asker(bot)
    try:
        # Alice may: her answers hold the cluster's data (history, silences, a run).
        bot.command("apiserver vault", user=ALICE)
        (parent,) = bot.finished_parents()
        assert "You may not" not in ask.command(f"silence {CODE} vault -- known, INC-1", ALICE)
        alice_history = ask.command("history vault", ALICE)
        assert "Latest runs on vault" in alice_history
        allowed = {
            (f["action"], f["cluster"])
            for f in _audits(caplog)
            if f["decision"] == "allowed" and f["user"] == ALICE
        }
        assert {("apiserver", "vault"), ("silence", "vault"), ("history", "vault")} <= allowed

        # uniform: each answer is the one a cluster (or digest) that does not exist gets
        unknown = {
            "cluster": ask.command("pod-ip vaulx", MALLORY).replace("vaulx", "vault"),
            "button": ask.button(RERUN, "nope", MALLORY, parent["ts"]),
            "digest": ask.command("digest vaultex", MALLORY).replace("vaultex", "vaulted"),
        }
        # Mallory may not, on any surface; Alice may not from another channel.
        calls_before = len(bot.slack.calls)
        audited_before = len(_audits(caplog))
        refusals = {
            "command": ask.command("pod-ip vault", MALLORY),
            "command, other channel": ask.command("health vault", ALICE, channel=OTHER),
            "mention": ask.mention("apiserver vault", MALLORY),
            "mention history": ask.mention("history vault", MALLORY),
            "rerun button": ask.button(RERUN, "vault", MALLORY, parent["ts"]),
            "commands button": ask.button(COMMANDS, "vault", MALLORY, parent["ts"]),
            "history": ask.command("history vault", MALLORY),
            "silence": ask.command(f"silence {CODE} vault -- mine now", MALLORY),
            "unsilence": ask.command(f"unsilence {CODE} vault", MALLORY),
            "silences": ask.command("silences vault", MALLORY),
            "digest": ask.command("digest vaulted", MALLORY),
        }
        for surface, text in refusals.items():
            kind = (
                "button" if "button" in surface else "digest" if surface == "digest" else "cluster"
            )
            assert text == unknown[kind], (surface, text)
            assert not any(data in text for data in VAULT_DATA), (surface, text)
            assert "allow" not in text and "may not diagnose" not in text, (surface, text)
        assert CODE not in ask.command("silences", MALLORY)  # the list hides vault's silence

        later = bot.slack.calls[calls_before:]
        shown = [c for c in later if c.method in ("chat.postMessage", "chat.update")]
        assert shown == [], "a refusal posts nothing in the channel"
        assert not any(d in json.dumps(c.params) for c in later for d in VAULT_DATA)
        assert bot.metric("aksdiag_cluster_collections_total", cluster="vault") == 1  # Alice's
        refused = [f for f in _audits(caplog)[audited_before:] if f["decision"] == "refused"]
        assert {(f["user"], f["channel"], f["cluster"]) for f in refused} == {
            (MALLORY, OPS, "vault"),
            (ALICE, OTHER, "vault"),
        }
        actions = {f["action"] for f in refused}
        assert {
            "pod-ip",
            "health",
            "apiserver",
            "history",
            "silence",
            "unsilence",
            "silences",
            "digest vaulted",
            f"button {RERUN}",
            f"button {COMMANDS}",
        } <= actions
        assert all(f["rule"] and f["audit"] is True for f in refused)
    finally:
        bot.stop()


def test_a_digest_cannot_be_configured_to_show_a_cluster_outside_its_allowed_channels(tmp_path):
    """Scheduled digests have no requester to check: the configuration itself must not post a
    restricted cluster's findings in a channel its allow list leaves out."""
    config = make_clusters(tmp_path)
    config["digests"].append(
        {"name": "leaky", "channel": OTHER, "cron": "0 9 * * *", "clusters": ["staging", "vault"]}
    )
    (tmp_path / "aksdiag.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "aksdiag.yaml")
    assert (
        f"digests[1] (leaky): cluster 'vault' may not be shown in {OTHER}, which is not in its "
        "allow.channels" in str(err.value)
    )
    config["digests"][-1]["channel"] = OPS  # where vault is allowed: fine
    (tmp_path / "aksdiag.yaml").write_text(yaml.safe_dump(config))
    assert load_config(tmp_path / "aksdiag.yaml").digest("leaky") is not None


@pytest.mark.parametrize(
    "allow",
    [
        {"users": ["U0ADMIN"]},
        {"usergroups": ["sre"]},
        {"users": ["U0ADMIN"], "usergroups": ["sre"]},
    ],
    ids=["users", "usergroups", "both"],
)
def test_a_digest_cannot_publish_a_cluster_restricted_to_people(tmp_path, allow):
    """Everyone in a digest's channel reads it: a cluster restricted to users or user groups
    may be in a digest only when its allow.channels lists that channel explicitly."""
    config = make_clusters(tmp_path)
    config["clusters"]["admins"] = {"snapshot": "vault", "allow": allow}
    config["digests"].append(
        {"name": "leaky", "channel": OPS, "cron": "0 9 * * *", "clusters": ["staging", "admins"]}
    )
    (tmp_path / "aksdiag.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "aksdiag.yaml")
    assert (
        f"digests[1] (leaky): cluster 'admins' is restricted to allow.users/allow.usergroups, "
        f"and everyone in {OPS} would read its findings; list {OPS} in its allow.channels"
    ) in str(err.value)
    config["clusters"]["admins"]["allow"] = {**allow, "channels": [OPS]}  # explicitly allowed
    (tmp_path / "aksdiag.yaml").write_text(yaml.safe_dump(config))
    assert load_config(tmp_path / "aksdiag.yaml").digest("leaky") is not None
