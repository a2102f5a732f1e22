"""Command text as Slack delivers it -> requests: mentions, links, entities, smart quotes and
dashes, aliases, word order; and button values round-tripping through the same validation."""

from __future__ import annotations

import json

import pytest

from bot.config import Config
from bot.render.blocks import button_value
from bot.runs import RunRequest
from diagnostics.checks.base import ScenarioArgs
from diagnostics.model import Report
from diagnostics.scenarios import UsageError
from handlers.parse import Meta, parse, request_tokens, tokenize

CONFIG = Config.model_validate(
    {
        "clusters": {"prod": {"snapshot": "x"}, "Staging-EU": {"snapshot": "y"}},
        "digests": [
            {"name": "morning", "channel": "C1", "cron": "0 8 * * *", "clusters": ["prod"]}
        ],
    }
)
ALL = ["Staging-EU", "prod"]


def test_tokenize_undoes_slack_formatting():
    text = "<@U123|aksdiag> apiserver prod —from 198.51.100.7 &lt;x&gt; <http://a.example|a.example> “two words”"
    assert tokenize(text) == [
        "apiserver",
        "prod",
        "—from",
        "198.51.100.7",
        "<x>",
        "a.example",
        "two words",
    ]
    assert tokenize('unbalanced "quote') == ["unbalanced", '"quote']


@pytest.mark.parametrize(
    "text, scenario, cluster, args",
    [
        ("apiserver prod", "apiserver", "prod", ScenarioArgs()),
        (
            "API prod —from 198.51.100.7",
            "apiserver",
            "prod",
            ScenarioArgs(from_ips=("198.51.100.7",)),
        ),
        ("prod podip --node aks-np-0", "pod-ip", "prod", ScenarioArgs(node="aks-np-0")),
        ("svc staging-eu shop/web", "service", "Staging-EU", ScenarioArgs(service=("shop", "web"))),
        (
            "<@UBOT> nodes prod --as=kube-system/agent",
            "node-api",
            "prod",
            ScenarioArgs(as_account=("kube-system", "agent")),
        ),
    ],
)
def test_diagnosis_requests(text, scenario, cluster, args):
    req = parse(text, CONFIG, ALL)
    assert isinstance(req, RunRequest)
    assert (req.scenario, req.cluster, req.args) == (scenario, cluster, args)


@pytest.mark.parametrize(
    "text, meta",
    [
        ("", Meta("help")),
        ("help", Meta("help")),
        ("clusters", Meta("clusters")),
        ("history prod", Meta("history", ("prod",), "prod")),
        ("digest morning", Meta("digest", ("morning",))),
        ("silences prod", Meta("silences", ("prod",), "prod")),
        (
            "silence podip.ip-leak prod -- why",
            Meta("silence", ("podip.ip-leak", "prod", "--", "why")),
        ),
    ],
)
def test_meta_commands(text, meta):
    assert parse(text, CONFIG, ALL) == meta


@pytest.mark.parametrize(
    "text, message",
    [
        ("history", "which cluster?"),
        ("history prod staging", "takes one cluster"),
        ("clusters prod", "takes no arguments"),
        ("apiserver nope", "Clusters you may diagnose here: `prod`."),
        ("apiserver prod extra", "unexpected `extra`"),
    ],
)
def test_errors_name_the_problem(text, message):
    with pytest.raises(UsageError) as err:
        parse(text, CONFIG, ["prod"])
    assert message in str(err.value)


def test_button_values_round_trip_through_the_same_validation():
    args = ScenarioArgs(from_ips=("198.51.100.7", "203.0.113.0/24"))
    value = json.loads(
        button_value(Report(cluster="prod", scenario="apiserver", arguments=args.to_dict()))
    )
    req = parse(" ".join(["apiserver", "prod", *request_tokens(value["a"])]), CONFIG, ALL)
    assert isinstance(req, RunRequest) and req.args == args
    with pytest.raises(UsageError):
        request_tokens({"kubeconfig": "/etc/passwd"})
    with pytest.raises(UsageError):
        request_tokens({"from": "not-a-list"})
