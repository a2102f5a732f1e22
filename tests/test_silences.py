"""Silences: the command grammar and its errors, and the store in a real valkey (expiry,
matching by subject, audit lines)."""

from __future__ import annotations

import json
import logging

import pytest
import redis

from bot.silences import (
    DEFAULT_DURATION_S,
    MAX_DURATION_S,
    SilenceRequest,
    SilenceStore,
    UnsilenceRequest,
    parse_silence,
    parse_unsilence,
)
from diagnostics.model import Finding, Severity
from diagnostics.scenarios import UsageError

NODE = "node/aks-nodepool1-12345678-vmss000001"
ARM = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-prod/providers/"
    "Microsoft.ContainerService/managedClusters/prod"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def finding(code: str, subject: str) -> Finding:
    return Finding(
        code=code, severity=Severity.WARNING, title=f"{code} on {subject}", subject=subject
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "silence podip.ip-leak prod for 2h -- known leak, fix rolling out (INC-1234)",
            SilenceRequest(
                "podip.ip-leak", "prod", None, 7200, "known leak, fix rolling out (INC-1234)"
            ),
        ),
        (
            f"podip.ip-leak prod {NODE} for 1h30m -- node draining",
            SilenceRequest("podip.ip-leak", "prod", NODE, 5400, "node draining"),
        ),
        (  # Slack turns -- into an em dash; the duration defaults to a day
            "cluster.stopped prod —stopped for the weekend",
            SilenceRequest(
                "cluster.stopped", "prod", None, DEFAULT_DURATION_S, "stopped for the weekend"
            ),
        ),
        (
            f"Cluster.Stopped prod {ARM} for 1w -- decommissioning",
            SilenceRequest("cluster.stopped", "prod", ARM, 604800, "decommissioning"),
        ),
        (  # the probe family, and words for units
            "apiserver.probe.tcp-timeout prod for 3days -- firewall change pending",
            SilenceRequest(
                "apiserver.probe.tcp-timeout", "prod", None, 3 * 86400, "firewall change pending"
            ),
        ),
    ],
)
def test_silence_grammar(text, expected):
    assert parse_silence(text.split()) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "cluster.stoped prod -- x",
            "unknown finding code `cluster.stoped`. Did you mean `cluster.stopped`?",
        ),
        ("podip prod -- x", "`podip` is a family of codes; silence one of them: `podip."),
        ("prod cluster.stopped -- x", "the code comes first: `silence cluster.stopped prod …`"),
        ("cluster.stopped prod for 2x -- x", "`2x` is not a duration"),
        ("cluster.stopped prod for 31d -- x", "a silence lasts at most 30d"),
        ("cluster.stopped prod for 30s -- x", "`30s` is not a duration"),
        ("cluster.stopped prod for -- x", "`for` needs a duration"),
        ("cluster.stopped prod for 1h for 2h -- x", "give the duration once"),
        ("cluster.stopped prod for 2h", "say why after `--`"),
        ("cluster.stopped prod --", "say why after `--`"),
        ("cluster.stopped", "which code and which cluster?"),
        ("cluster.stopped pr%d -- x", "`pr%d` is not a valid cluster name"),
        (f"cluster.stopped prod {NODE} extra -- x", "unexpected `extra`"),
        ("cluster.stopped prod node/<script> -- x", "is not a finding subject"),
        ("cluster.stopped prod -- " + "x" * 301, "keep the reason under 300 characters"),
    ],
)
def test_silence_errors_say_what_is_wrong(text, message):
    with pytest.raises(UsageError) as err:
        parse_silence(text.split())
    assert message in str(err.value)


def test_unsilence_grammar_and_errors():
    assert parse_unsilence("unsilence podip.ip-leak prod".split()) == UnsilenceRequest(
        "podip.ip-leak", "prod", None
    )
    assert parse_unsilence(["podip.ip-leak", "prod", NODE]) == UnsilenceRequest(
        "podip.ip-leak", "prod", NODE
    )
    with pytest.raises(UsageError, match=r"Did you mean `podip\.ip-leak`"):
        parse_unsilence(["podip.ip-leek", "prod"])
    with pytest.raises(UsageError, match="unexpected `more`"):
        parse_unsilence(["podip.ip-leak", "prod", NODE, "more"])


@pytest.fixture
def store(redis_url):
    return SilenceStore(redis.Redis.from_url(redis_url), Clock())


def test_a_silence_hides_matching_findings_on_its_cluster_only(store):
    s = store.add("prod", "podip.ip-leak", NODE, 3600, "draining it", "U0ALICE")
    assert (s.cluster, s.code, s.subject, s.created_by) == (
        "prod",
        "podip.ip-leak",
        NODE,
        "U0ALICE",
    )
    assert s.until == store.clock() + 3600
    leak_node1 = finding("podip.ip-leak", NODE)
    leak_node2 = finding("podip.ip-leak", "node/aks-nodepool1-12345678-vmss000002")
    stopped = finding("cluster.stopped", ARM)
    kept, hidden = store.split("prod", [leak_node1, leak_node2, stopped])
    assert kept == [leak_node2, stopped]
    assert hidden == [(leak_node1, s)]
    assert store.split("stage", [leak_node1]) == ([leak_node1], [])

    every = store.add("prod", "podip.ip-leak", None, 7200, "whole cluster migrating", "U0BOB")
    kept, hidden = store.split("prod", [leak_node1, leak_node2])
    assert kept == [] and hidden == [(leak_node1, s), (leak_node2, every)]  # specific one wins
    assert [x.subject for x in store.list("prod")] == [None, NODE]
    assert store.list("stage") == [] and len(store.list()) == 2


def test_silences_expire_and_can_be_removed(store, redis_url):
    store.add("prod", "cluster.stopped", None, 600, "weekend", "U0ALICE")
    store.add("stage", "cluster.stopped", None, 7200, "weekend", "U0ALICE")
    raw = redis.Redis.from_url(redis_url)
    ttls = [raw.ttl(k) for k in raw.keys("aksdiag:silence:*")]
    assert sorted(ttls) and 590 <= min(ttls) <= 600 and max(ttls) <= 7200  # Redis expires them
    store.clock.now += 601
    assert [s.cluster for s in store.list()] == ["stage"]
    assert store.split("prod", [finding("cluster.stopped", ARM)])[1] == []
    assert store.remove("stage", "cluster.stopped", None, "U0BOB") is True
    assert store.remove("stage", "cluster.stopped", None, "U0BOB") is False
    assert store.list() == []


def test_adding_again_replaces_the_silence(store):
    store.add("prod", "cluster.stopped", None, 600, "first", "U0ALICE")
    store.add("prod", "cluster.stopped", None, 3600, "second, longer", "U0BOB")
    (only,) = store.list()
    assert (only.reason, only.created_by, only.until) == (
        "second, longer",
        "U0BOB",
        store.clock() + 3600,
    )


def test_store_refuses_durations_out_of_range(store):
    with pytest.raises(ValueError):
        store.add("prod", "cluster.stopped", None, MAX_DURATION_S + 1, "too long", "U0ALICE")


def test_every_change_is_audited_without_secrets(store, caplog):
    caplog.set_level(logging.INFO, logger="aksdiag.audit")
    store.add(
        "prod",
        "cluster.stopped",
        None,
        600,
        "see token=xoxb-FAKE0000-EXAMPLE000000 in the runbook",
        "U0ALICE",
    )
    (stored,) = store.list()
    assert "xoxb-FAKE" not in stored.reason  # what Slack would show later is clean too
    store.remove("prod", "cluster.stopped", None, "U0BOB")
    records = [r for r in caplog.records if r.name == "aksdiag.audit"]
    assert [r.fields["event"] for r in records] == ["silence.add", "silence.remove"]
    added = records[0].fields
    assert added["user"] == "U0ALICE" and added["cluster"] == "prod"
    assert added["code"] == "cluster.stopped" and added["duration_s"] == 600
    assert "xoxb-FAKE" not in json.dumps(added) and "[REDACTED]" in added["reason"]
    assert records[1].fields["user"] == "U0BOB" and records[1].fields["removed"] is True
