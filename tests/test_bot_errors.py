"""Every bad input gets a clear answer, and nothing runs that should not: bad scenarios,
clusters and arguments; access refusals (audited); forged buttons; bad signatures; Slack's
retries; a channel the bot is not in; rate limits; a run that fails."""

from __future__ import annotations

import json
import logging
import time

import pytest
from blockkit import validate_message
from bot_harness import (
    ALICE,
    BOB,
    MALLORY,
    OPS,
    OTHER,
    Bot,
    block_text,
    buttons,
    make_clusters,
)

from bot.deps import Settings

pytest_plugins = ["bot_fixtures"]
RERUN = "aksdiag_rerun"


def nothing_ran(bot) -> bool:
    return bot.metric("aksdiag_cluster_collections_total") == 0 and not bot.slack.calls_to(
        "chat.postMessage"
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("apiservr prod", ["unknown scenario `apiservr`", "Did you mean `apiserver`?", "`pod-ip`"]),
        ("apiserver prdo", ["unknown cluster `prdo`", "Did you mean `prod`?", "`staging`"]),
        ("apiserver", ["which cluster?", "`prod`"]),
        ("service prod shop/WEB", ["`WEB` is not a valid service name"]),
        ("service prod", ["which service?"]),
        ("pod-ip prod --from 1.2.3.4", ["`--from` belongs to the `apiserver` scenario"]),
        ("apiserver prod --from 300.1.1.1", ["`300.1.1.1` is not an IP address"]),
        ("histroy prod", ["Did you mean `history`?"]),
        ("digest evening", ["unknown digest `evening`", "`morning`"]),
    ],
)
def test_bad_input_gets_an_ephemeral_answer_in_the_ack_and_nothing_runs(bot, text, expected):
    ack = bot.command(text)
    assert ack.status == 200
    answer = ack.json()
    assert answer["response_type"] == "ephemeral"
    for part in expected:
        assert part in answer["text"]
    assert "help" in answer["text"]
    assert nothing_ran(bot)


def test_cluster_then_scenario_order_is_understood(bot):
    bot.command("prod apiserver")
    (parent,) = bot.finished_parents()
    assert "`apiserver prod`" in block_text(parent)


def test_refusals_read_like_unknown_clusters_are_audited_with_the_rule_and_read_nothing(
    bot, caplog
):
    """A cluster the user may not diagnose here is answered word for word like one that does
    not exist (no rule, no spelling, no count leaked); the rule goes to the audit log."""
    caplog.set_level(logging.INFO, logger="aksdiag.audit")
    not_user = bot.command("apiserver vault", user=MALLORY, channel=OPS).json()["text"]
    unknown = bot.command("apiserver vaulx", user=MALLORY, channel=OPS).json()["text"]
    assert not_user == unknown.replace("vaulx", "vault")
    assert "allow" not in not_user and "may not" not in not_user.lower()
    folded = bot.command("apiserver VAULT", user=MALLORY, channel=OPS).json()["text"]
    assert "`VAULT`" in folded and "`vault`" not in folded  # the real spelling is not confirmed
    wrong_channel = bot.command("apiserver vault", user=ALICE, channel=OTHER).json()["text"]
    assert "unknown cluster `vault`" in wrong_channel and "allow" not in wrong_channel
    audits = [r for r in caplog.records if r.name == "aksdiag.audit"]
    refused = [r.fields for r in audits if r.fields["decision"] == "refused"]
    assert {(f["user"], f["channel"], f["cluster"]) for f in refused} == {
        (MALLORY, OPS, "vault"),
        (ALICE, OTHER, "vault"),
    }
    assert {f["rule"] for f in refused} >= {
        "you are not in the cluster's allow.users or allow.usergroups",
        "this channel is not in the cluster's allow.channels",
    }
    assert nothing_ran(bot)
    assert bot.metric("aksdiag_access_refusals_total") == 2


def test_user_groups_not_loaded_yet_ack_first_then_decide(bot):
    assert not bot.deps.usergroups.ready  # the background refresh has not run in this test
    token, url = bot.response_url()
    ack = bot.command("apiserver groups", user=MALLORY, response_url=url)
    assert ack.status == 200 and ack.body == ""
    (answer,) = bot.slack.wait_for(lambda: bot.slack.responses(token))
    assert "unknown cluster `groups`" in answer["text"] and "allow" not in answer["text"]
    assert bot.slack.calls_to("usergroups.users.list")[0].params["usergroup"] == "SFAKESRE"

    ack = bot.command("apiserver groups", user=BOB)  # in @sre: known now, decided before the ack
    assert ack.body == ""
    (parent,) = bot.finished_parents()
    assert "`apiserver groups` · for <@UFAKEBOB>" in block_text(parent)


def test_forged_button_values_run_nothing(bot, caplog):
    caplog.set_level(logging.INFO, logger="aksdiag.audit")
    cases = [
        json.dumps({"s": "apiserver", "c": "vault", "a": {}}),  # a cluster Mallory may not read
        json.dumps({"s": "apiserver", "c": "nope", "a": {}}),  # not configured
        json.dumps({"s": "rm -rf", "c": "prod", "a": {}}),
        json.dumps({"s": "service", "c": "prod", "a": {"service": "a/b;id"}}),
        json.dumps({"s": "apiserver", "c": "prod", "a": {}, "x": 1}),
        "not json",
    ]
    tokens = []
    for value in cases:
        token, url = bot.response_url()
        tokens.append(token)
        assert bot.client.action(RERUN, value, user=MALLORY, response_url=url).status == 200
    answers = [bot.slack.wait_for(lambda t=t: bot.slack.responses(t))[0]["text"] for t in tokens]
    # a button naming a cluster Mallory may not read answers like one naming no cluster at all
    assert all("does not match a diagnosis you may run here" in a for a in answers)
    assert nothing_ran(bot)
    refused = [
        r for r in caplog.records if r.name == "aksdiag.audit" and r.fields["decision"] == "refused"
    ]
    assert len(refused) == len(cases)


@pytest.mark.parametrize("kind", ["bad signature", "wrong secret", "stale timestamp"])
def test_unsigned_or_replayed_requests_are_rejected_with_nothing_run(bot, kind):
    from slack_client import SlackClient

    if kind == "bad signature":
        answer = bot.client.command("apiserver prod", signature="v0=" + "0" * 64)
    elif kind == "wrong secret":
        answer = SlackClient(bot.base, secret="FAKE0other0secret0EXAMPLE").command("apiserver prod")
    else:
        answer = bot.client.command("apiserver prod", ts=int(time.time()) - 6 * 60)
    assert answer.status == 401
    assert bot.only_the_sentinel_runs()


def test_a_retried_event_delivery_does_not_run_twice(bot):
    for retry in (None, 1, 2):
        bot.client.mention("<@UBOTFAKE1> apiserver staging", event_id="EvFAKEONCE", retry_num=retry)
    bot.client.mention(
        "<@UBOTFAKE1> apiserver prod", event_id="EvFAKEOTHER"
    )  # a later, different event
    parents = bot.finished_parents(count=2)
    assert sorted("`apiserver staging`" in block_text(p) for p in parents) == [False, True]
    # A sentinel delivered last: once it is answered, a duplicate run had its time to show.
    bot.client.mention("<@UBOTFAKE1> apiserver staging", event_id="EvFAKELAST")
    bot.finished_parents(count=3)
    assert len(bot.slack.top_level(OPS)) == 3


def test_not_in_channel_asks_to_invite_the_bot_via_response_url(bot):
    bot.slack.fail("chat.postMessage", "not_in_channel")
    token, url = bot.response_url()
    bot.command("apiserver prod", response_url=url)
    (answer,) = bot.slack.wait_for(lambda: bot.slack.responses(token))
    assert answer["response_type"] == "ephemeral"
    assert "/invite @aksdiag" in answer["text"]
    assert (
        bot.metric(
            "aksdiag_slack_api_errors_total", method="chat.postMessage", error="not_in_channel"
        )
        == 1
    )


def test_rate_limited_calls_are_retried_after_retry_after(bot):
    bot.slack.rate_limit("chat.postMessage", retry_after=0)
    bot.command("apiserver prod")
    (parent,) = bot.finished_parents()
    assert "*CRITICAL*" in block_text(parent)
    # the answer is posted directly: the first post was a 429, its retry went through
    assert bot.slack.calls_to("chat.postMessage")[0].params["text"].startswith("CRITICAL:")
    assert len([m for m in bot.slack.top_level(OPS)]) == 1


def test_a_run_that_fails_at_once_says_so_in_one_message_without_running_first(tmp_path, redis_url):
    config = make_clusters(tmp_path)
    config["clusters"]["gone"] = {"snapshot": "no-such-folder"}
    b = Bot(tmp_path, redis_url, config=config)
    try:
        b.command("node-api gone --as shop/web")
        (answer,) = b.slack.wait_for(lambda: b.slack.top_level(OPS))
        b.settle()
        assert b.slack.top_level(OPS) == [answer] and not b.slack.replies(OPS, answer["ts"])
        assert not [
            c for c in b.slack.calls_to("chat.postMessage") if "running" in c.params["text"]
        ]
        assert answer["text"].startswith("failed node-api gone --as shop/web: ")
        assert "does not exist" in answer["text"]  # the notification says why
        text = block_text(answer)
        assert "The diagnosis failed" in text and "Run id `" in text
        assert RERUN in buttons(answer)
        validate_message(b.slack.calls_to("chat.postMessage")[0].params)
        assert b.metric("aksdiag_runs_total", scenario="node-api", outcome="failed") == 1
    finally:
        b.stop()


def test_a_run_that_fails_after_running_was_posted_tells_the_thread(tmp_path, redis_url):
    config = make_clusters(tmp_path)
    config["clusters"]["gone"] = {"snapshot": "no-such-folder"}
    settings = Settings(workers=8, run_workers=2, run_timeout_s=20, direct_post_s=0)
    b = Bot(tmp_path, redis_url, config=config, settings=settings)
    try:
        b.command("apiserver gone")
        parent = b.slack.wait_for(
            lambda: [m for m in b.slack.top_level(OPS) if "failed" in m["text"]]
        )[0]
        assert ":x: failed" in block_text(parent)
        (reply,) = b.slack.wait_for(lambda: b.slack.replies(OPS, parent["ts"]))
        assert "The diagnosis failed" in reply["text"] and "does not exist" in reply["text"]
        assert "Run id `" in reply["text"]
        assert b.metric("aksdiag_runs_total", scenario="apiserver", outcome="failed") == 1
    finally:
        b.stop()
