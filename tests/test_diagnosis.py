"""The diagnosis: causal links declared next to the checks, the grouping of findings as causes
with the symptoms they explain, the headline, and the order (what the user asked about first).

Table-driven over hand-made findings (the engine is pure), then over every bundled example:
nothing a report found is lost from the diagnosis, and the links name real codes.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from diagnostics.checks import default_registry
from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import read_snapshot
from diagnostics.diagnosis import (
    NO_PROBLEMS,
    Link,
    always,
    diagnose,
    in_scope,
    missing_subject,
    same_subject,
)
from diagnostics.model import Finding, Report, Severity
from diagnostics.runner import analyse

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
C, W, INFO, OK = Severity.CRITICAL, Severity.WARNING, Severity.INFO, Severity.OK
# Codes the Azure network path checks (issue 12/13) bring; links may name them before they land.
PLANNED = {"nodeapi.nsg-blocks-egress", "nodeapi.route-blackhole", "nodeapi.firewall-rules-missing"}


def f(code: str, sev: Severity, subject: str, *scope: str, title: str = "") -> Finding:
    return Finding(code, sev, title or f"{code} on {subject}", subject, scope=scope)


SUBNET_LINKS = [
    Link(
        "podip.subnet-capacity",
        "podip.allocation-failed",
        in_scope,
        "pods on {n} node{s} cannot get an IP",
    ),
    Link(
        "podip.ip-leak",
        "podip.allocation-failed",
        same_subject,
        "pods on {n} node{s} cannot get an IP",
    ),
]


def test_a_full_subnet_explains_the_failures_on_the_nodes_behind_it_only():
    subnet = f(
        "podip.subnet-capacity", W, "subnet/snet", "node/b", "node/c", title="Subnet snet is full"
    )
    fails = [f("podip.allocation-failed", C, f"node/{n}") for n in "abc"]
    leak = f("podip.ip-leak", W, "node/a")
    headline, causes = diagnose([*fails, leak, subnet], SUBNET_LINKS)
    assert [c.code for c in causes] == ["podip.subnet-capacity", "podip.ip-leak"]
    assert causes[0].symptoms == (fails[1].fingerprint, fails[2].fingerprint)
    assert causes[1].symptoms == (fails[0].fingerprint,)
    assert headline == "Subnet snet is full → pods on 2 nodes cannot get an IP (+1 other problem)"


def test_unexplained_symptoms_stay_causes_and_repeats_become_one():
    fails = [f("podip.allocation-failed", C, f"node/{n}") for n in "abc"]
    headline, causes = diagnose(fails, SUBNET_LINKS)
    (cause,) = causes
    assert cause.fingerprints == tuple(x.fingerprint for x in fails) and not cause.symptoms
    assert headline.endswith("(and 2 more nodes)")


def test_chains_are_followed_and_cycles_do_not_hang():
    links = [Link("a.x", "b.x"), Link("b.x", "c.x"), Link("c.x", "b.x")]
    a, b, c = f("a.x", W, "s"), f("b.x", C, "s"), f("c.x", C, "s")
    _, causes = diagnose([a, b, c], links)
    assert [x.code for x in causes] == ["a.x"] and set(causes[0].symptoms) == {
        b.fingerprint,
        c.fingerprint,
    }
    _, causes = diagnose([b, c], links)  # a cycle alone: the worst-ranked becomes the cause
    assert len(causes) == 1 and len(causes[0].symptoms) == 1


def test_info_is_a_cause_only_when_it_explains_a_problem_and_ok_never():
    links = [Link("apiserver.private-cluster", "apiserver.probe.tcp-timeout", always)]
    private = f("apiserver.private-cluster", INFO, "cluster")
    probe_ok = f("apiserver.probe.ok", OK, "probe/x")
    headline, causes = diagnose([private, probe_ok], links)
    assert headline == NO_PROBLEMS and causes == []
    timeout = f("apiserver.probe.tcp-timeout", C, "probe/x")
    _, causes = diagnose([private, timeout], links)
    assert [c.code for c in causes] == ["apiserver.private-cluster"]


def test_codes_without_links_are_tolerated():
    new = f("service.brand-new-check", C, "service/a/b")
    headline, causes = diagnose([new], default_registry().links())
    assert headline == new.title and causes[0].code == "service.brand-new-check"


def test_the_subject_asked_about_comes_first():
    proxy = f("service.kube-proxy-unhealthy", W, "daemonset/kube-system/kube-proxy")
    ports = f("service.target-port-mismatch", W, "service/shop/web")
    other = f("service.no-ready-endpoints", C, "service/shop/cart")
    _, causes = diagnose([proxy, ports, other], [], {"service": "shop/web"})
    assert causes[0].code == "service.target-port-mismatch"
    assert causes[1].code == "service.no-ready-endpoints"  # then worst first


def test_a_missing_service_is_a_usage_error_and_explains_the_rest_about_it():
    snap = read_snapshot(EXAMPLES / "broken-service", "broken-service")
    report = analyse("service", snap, ScenarioArgs(service=("shop", "nope")))
    missing = missing_subject(report)
    assert missing is not None and missing.code == "service.not-found"
    ok = analyse("service", snap, ScenarioArgs(service=("shop", "web")))
    assert missing_subject(ok) is None
    assert ok.causes[0].code == "service.selector-matches-no-pods"  # about shop/web, first


def test_an_account_that_does_not_exist_is_a_usage_error():
    snap = read_snapshot(EXAMPLES / "broken-nodeapi", "broken-nodeapi")
    for asked, title, hint in (
        (("shop", "orders-wroker"), "Service account shop/orders-wroker does not exist", "shop"),
        (("shopp", "orders-worker"), "(no namespace shopp)", "shop"),
    ):
        report = analyse("node-api", snap, ScenarioArgs(as_account=asked))
        missing = missing_subject(report)
        assert missing is not None and missing.code == "nodeapi.account-not-found"
        assert title in missing.title
        assert f"did you mean: {hint}/orders-worker" in missing.evidence
        assert not [f for f in report.findings if f.code.startswith("nodeapi.rbac")]
    ok = analyse("node-api", snap, ScenarioArgs(as_account=("shop", "orders-worker")))
    assert missing_subject(ok) is None
    assert "nodeapi.account-not-found" not in {f.code for f in ok.findings}


def test_without_service_accounts_read_only_a_missing_namespace_is_certain():
    snap = read_snapshot(EXAMPLES / "broken-service", "broken-service")
    assert not snap.has("serviceaccounts")
    gone = analyse("node-api", snap, ScenarioArgs(as_account=("nope", "web")))
    assert missing_subject(gone) is not None
    unknown = analyse("node-api", snap, ScenarioArgs(as_account=("shop", "nobody")))
    assert missing_subject(unknown) is None  # it may exist: the list was not read


def test_every_link_names_registered_codes():
    registry = default_registry()
    codes = set(registry.codes())
    for link in registry.links():
        for pattern in (link.cause, link.symptom):
            assert any(fnmatchcase(c, pattern) for c in codes | PLANNED), (link, pattern)


def _examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", _examples(), ids=lambda p: p.name)
def test_every_problem_of_every_example_is_placed_and_the_json_round_trips(folder):
    snap = read_snapshot(folder, folder.name)
    report = analyse("health", snap)
    placed = [fp for c in report.causes for fp in (*c.fingerprints, *c.symptoms)]
    assert {x.fingerprint for x in report.problems()} <= set(placed)
    assert set(placed) <= {x.fingerprint for x in report.findings}
    assert report.headline == NO_PROBLEMS or report.verdict in (C, W)
    again = Report.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.headline == report.headline and again.causes == report.causes


def test_the_cni_example_leads_with_the_full_subnet_and_never_advises_growing_the_pool():
    snap = read_snapshot(EXAMPLES / "broken-podip-cni", "prod")
    report = analyse("pod-ip", snap)
    assert report.headline.startswith("Subnet snet-aks-pods (10.241.0.0/25) is full")
    assert "pods on 2 nodes cannot get an IP" in report.headline
    by_fp = report.by_fingerprint()
    top = report.causes[0]
    assert sorted(
        by_fp[s].subject for s in top.symptoms if by_fp[s].code == "podip.allocation-failed"
    ) == ["node/aks-userpool-16493051-vmss000001", "node/aks-userpool-16493051-vmss000002"]
    commands = [s.command or "" for x in report.findings for s in x.remediation]
    assert not any("--max-count" in c for c in commands)  # the subnet cannot hold more nodes


def test_healthy_is_ok_not_info():
    snap = read_snapshot(EXAMPLES / "healthy", "healthy")
    report = analyse("health", snap)
    assert report.verdict is OK and report.headline == NO_PROBLEMS and report.worst is INFO


BEFORE = json.loads((Path(__file__).parent / "example_codes_before.json").read_text())
# Codes that said "cannot verify" before and are now verified from the snapshot's arm/ data:
# private-cluster's firewall is an Azure Firewall whose policy allows every required endpoint,
# so `nodeapi.firewall-egress` (kept for appliances aksdiag cannot read) gave way to a path
# whose every hop passes (tests/test_netpath*.py prove the verdicts).
VERIFIED_SINCE = {
    ("private-cluster", "node-api"): {"nodeapi.firewall-egress"},
    ("private-cluster", "health"): {"nodeapi.firewall-egress"},
}


@pytest.mark.parametrize("folder", _examples(), ids=lambda p: p.name)
def test_nothing_true_is_lost_every_code_reported_before_is_still_reported(folder):
    """`example_codes_before.json` holds the codes each example raised before the diagnosis
    (schema 1): the flat JSON list still has every one of them."""
    snap = read_snapshot(folder, folder.name)
    for scenario, codes in BEFORE.get(folder.name, {}).items():
        now = {x.code for x in analyse(scenario, snap).findings}
        now |= VERIFIED_SINCE.get((folder.name, scenario), set())
        assert set(codes) <= now, (folder.name, scenario, set(codes) - now)


def test_the_full_subnet_example_has_one_cause_behind_all_its_symptoms():
    snap = read_snapshot(EXAMPLES / "full-pod-subnet", "aks-orders-weu")
    report = analyse("pod-ip", snap)
    (cause,) = report.causes
    by_fp = report.by_fingerprint()
    assert cause.code == "podip.subnet-capacity" and len(cause.symptoms) == 6
    symptoms = sorted(by_fp[s].code for s in cause.symptoms)
    assert symptoms == ["podip.allocation-failed"] * 3 + ["podip.node-ip-exhausted"] * 2 + [
        "podip.subnet-capacity"
    ]
    assert report.headline.endswith("→ pods on 3 nodes cannot get an IP")
