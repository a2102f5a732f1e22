"""Hostile input to the scenario parser (what Slack and the CLI share): no exception but
UsageError escapes, every rejection says something specific, and whatever is accepted is a
valid Kubernetes/Azure name or IP — so it can be shell-quoted safely into commands."""

from __future__ import annotations

import ipaddress
import re
import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from diagnostics.checks.base import q
from diagnostics.scenarios import (
    SCENARIOS,
    UsageError,
    parse_args,
    resolve_scenario,
    validate_cluster_name,
)

NASTY = st.sampled_from(
    [
        "",
        " ",
        "--",
        "—from",
        "–node",
        "$(id)",
        "`id`",
        "a;b",
        "a&&b",
        "a|b",
        "a\nb",
        "../..",
        "default/web",
        "kube-system/kubernetes",
        "x" * 300,
        "ｄｅｆａｕｌｔ/web",
        "dеfault/web",
        "--from",
        "--node",
        "--as",
        "--from=1.2.3.4",
        "10.0.0.0/8",
        "::1",
        "1.2.3.4,5.6.7.8",
        "<@U123>",
        "*bold*",
        "&amp;",
        "\u202e",
        "\x00",
        "ns/",
        "/svc",
        "a/b/c",
    ]
)
TOKENS = st.lists(st.one_of(NASTY, st.text(max_size=40)), max_size=8)
DNS = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@settings(max_examples=400, deadline=None)
@given(scenario=st.sampled_from(list(SCENARIOS)), tokens=TOKENS)
def test_parse_args_accepts_only_valid_names(scenario, tokens):
    try:
        args = parse_args(scenario, tokens)
    except UsageError as exc:
        assert str(exc) and len(str(exc)) < 600
        return
    for ip in args.from_ips:
        ipaddress.ip_network(ip)
    for name in [args.node, *(args.service or ()), *(args.as_account or ())]:
        if name is not None:
            assert DNS.match(name), name
            assert shlex.split(q(name)) == [name]


@settings(max_examples=300, deadline=None)
@given(word=st.one_of(NASTY, st.text(max_size=60)))
def test_scenario_and_cluster_names(word):
    try:
        resolve_scenario(word)
    except UsageError as exc:
        assert "Valid scenarios" in str(exc)
        # The message never echoes control characters or Slack markup from the input.
        assert all(ch.isprintable() for ch in str(exc))
    try:
        name = validate_cluster_name(word)
    except UsageError as exc:
        assert "not a valid cluster name" in str(exc)
    else:
        assert re.match(r"^[A-Za-z0-9_.-]{1,63}$", name)


def test_lookalike_unicode_and_shell_metacharacters_are_rejected():
    for bad in (
        "dеfault/web",
        "ｄｅｆａｕｌｔ/web",
        "default/web;rm",
        "default/$(id)",
        "default/web\n",
    ):
        try:
            parse_args("service", [bad])
        except UsageError as exc:
            assert "not a valid" in str(exc) or "expected" in str(exc)
        else:
            raise AssertionError(f"accepted {bad!r}")
