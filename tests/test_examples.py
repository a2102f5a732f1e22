"""The bundled example snapshots (examples/*/): each broken one raises what it is there to show,
in its scenario and in `health`; the healthy one raises no warning or critical in any scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource, read_snapshot
from diagnostics.model import Report, Severity
from diagnostics.resources import K8S_RESOURCES
from diagnostics.runner import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FOLDERS = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) if EXAMPLES.is_dir() else []
AS = ("shop", "orders-worker")

# folder -> [(scenario, arguments, codes it must raise)]; README.md in each folder shows the same.
EXPECTED: dict[str, list[tuple[str, dict[str, Any], set[str]]]] = {
    "broken-apiserver": [
        (
            "apiserver",
            {"from_ips": ("198.51.100.7",)},
            {"cluster.provisioning-failed", "apiserver.authorized-ip.client-excluded"},
        ),
        ("node-api", {}, {"nodeapi.kubernetes-service"}),
    ],
    "broken-nodeapi": [
        (
            "node-api",
            {"as_account": AS},
            {
                "nodeapi.authorized-ip.egress-excluded",
                "nodeapi.tunnel-unhealthy",
                "nodeapi.network-policy-egress",
                "nodeapi.rbac-forbidden",
            },
        ),
        # from the audit log in logs/kube-audit.json, without --as
        ("node-api", {}, {"nodeapi.rbac-forbidden", "nodeapi.apiserver-throttled"}),
    ],
    "firewall-udr": [
        (
            "node-api",
            {},
            {
                "nodeapi.firewall-egress",
                "nodeapi.tunnel-unhealthy",
                "nodeapi.authorized-ip.egress-unverified",
                "cluster.control-plane-logs-off",
            },
        ),
    ],
    "private-cluster": [
        ("apiserver", {}, {"apiserver.private-cluster", "apiserver.private-dns"}),
        ("node-api", {}, {"nodeapi.private-dns"}),
    ],
    # the Azure network path (arm/ in each folder)
    "hub-spoke-firewall": [("node-api", {}, {"nodeapi.firewall-rules-missing"})],
    "private-dns-unlinked": [
        ("node-api", {}, {"nodeapi.private-dns-link"}),
        ("apiserver", {}, {"apiserver.private-dns-link"}),
    ],
    "nsg-blocks-443": [("node-api", {}, {"nodeapi.nsg-blocks-egress", "nodeapi.tunnel-unhealthy"})],
    "kubenet-routes": [
        ("service", {"service": ("payments", "api")}, {"service.kubenet-routes-missing"})
    ],
    "stopped": [("apiserver", {}, {"cluster.stopped"})],
    # the pod-ip and service examples (their READMEs say what each shows)
    "broken-podip-cni": [
        (
            "pod-ip",
            {},
            {
                "podip.allocation-failed",
                "podip.ip-leak",
                "podip.node-ip-exhausted",
                "podip.terminated-pods-backlog",
                "podip.subnet-capacity",
            },
        ),
        ("pod-ip", {"node": "aks-userpool-16493051-vmss000009"}, {"podip.node-not-found"}),
    ],
    # several symptoms behind one cause: the diagnosis puts them all under the full subnet
    "full-pod-subnet": [
        (
            "pod-ip",
            {},
            {"podip.allocation-failed", "podip.node-ip-exhausted", "podip.subnet-capacity"},
        ),
    ],
    "broken-podip-kubenet": [
        (
            "pod-ip",
            {},
            {
                "podip.allocation-failed",
                "podip.ip-leak",
                "podip.terminated-pods-backlog",
                "podip.subnet-capacity",
            },
        ),
    ],
    "broken-service": [
        ("service", {"service": ("shop", "web")}, {"service.selector-matches-no-pods"}),
        ("service", {"service": ("shop", "cart")}, {"service.no-ready-endpoints"}),
        ("service", {"service": ("shop", "checkout")}, {"service.target-port-mismatch"}),
        ("service", {"service": ("shop", "payments")}, {"service.network-policy"}),
        ("service", {"service": ("shop", "catalog")}, {"service.cni-errors"}),
        ("service", {"service": ("shop", "legacy-erp")}, {"service.no-selector"}),
        ("service", {"service": ("shop", "webshop")}, {"service.not-found"}),
        ("health", {}, {"service.kube-proxy-unhealthy"}),
    ],
    "cilium-policies": [
        ("node-api", {}, {"nodeapi.network-policy-egress"}),
        ("service", {"service": ("payments", "ledger")}, {"service.network-policy"}),
    ],
    "coredns-incident": [("service", {"service": ("shop", "checkout")}, {"service.dns"})],
}
# Examples of modern clusters that must raise no warning or critical in any scenario.
QUIET = ("vnet-integration", "dynamic-pod-subnet")
# Codes only a scenario argument can raise (a client IP, an account, a name that does not exist).
NEEDS_ARGS = {
    "apiserver.authorized-ip.client-excluded",
    "nodeapi.rbac-forbidden",
    "service.not-found",
    "podip.node-not-found",
}


def _run(folder: str, scenario: str, **args: Any) -> Report:
    return run(scenario, SnapshotSource(EXAMPLES / folder, folder), ScenarioArgs(**args))


def _codes(report: Report) -> set[str]:
    return {f.code for f in report.findings}


def _internal_errors(report: Report) -> list[str]:
    return [u.sentence() for u in report.unavailable if "internal error" in u.reason]


CASES = [(folder, sc, args, codes) for folder, runs in EXPECTED.items() for sc, args, codes in runs]


@pytest.mark.parametrize(
    "folder,scenario,args,codes", CASES, ids=[f"{f}-{s}" for f, s, _, _ in CASES]
)
def test_example_raises_its_codes(folder, scenario, args, codes):
    report = _run(folder, scenario, **args)
    assert codes <= _codes(report), f"{folder} {scenario}: missing {codes - _codes(report)}"
    assert not _internal_errors(report)
    health = _run(
        folder, "health", **({"as_account": args["as_account"]} if "as_account" in args else {})
    )
    expected = {c for c in codes if c not in NEEDS_ARGS or "as_account" in args}
    assert expected <= _codes(health), f"{folder} health: missing {expected - _codes(health)}"
    assert all(f.scenario for f in health.findings)


def test_broken_nodeapi_names_the_excluded_nat_ip_and_the_blocked_namespace():
    report = _run("broken-nodeapi", "node-api", as_account=AS)
    (egress,) = [f for f in report.findings if f.code == "nodeapi.authorized-ip.egress-excluded"]
    assert any("203.0.113.78" in e for e in egress.evidence)
    assert any(
        s.command
        and "--api-server-authorized-ip-ranges 192.0.2.0/26,203.0.113.77/32,203.0.113.78/32"
        in s.command
        for s in egress.remediation
    )
    (policy,) = [f for f in report.findings if f.code == "nodeapi.network-policy-egress"]
    assert policy.subject == "Namespace/shop"


def test_stopped_cluster_reports_kubernetes_sources_unavailable():
    report = _run("stopped", "health")
    assert "cluster.stopped" in _codes(report)
    missing = {u.source for u in report.unavailable}
    assert {"pods", "services", "nodes", "events"} <= missing


def test_both_cluster_json_shapes_are_exercised():
    shapes = {
        f: "properties" in json.loads((EXAMPLES / f / "cluster.json").read_text())
        for f in ("healthy", "broken-apiserver")
    }
    assert shapes == {"healthy": False, "broken-apiserver": True}
    rest = read_snapshot(EXAMPLES / "broken-apiserver").cluster
    assert rest is not None and rest.authorized_ip_ranges == ("192.0.2.0/26", "203.0.113.48/32")


def test_healthy_example_holds_every_snapshot_file():
    root = EXAMPLES / "healthy"
    for name in ("cluster.json", "publicips.json", "snapshot.json", "egress-endpoints.json"):
        assert (root / name).is_file(), name
    for name, api in K8S_RESOURCES.items():
        if api.engine:  # Cilium / Calico kinds: a cluster on Azure NPM serves none
            continue
        doc = json.loads((root / "k8s" / f"{name}.json").read_text())
        assert doc["kind"] == "List" and doc["items"], name
    snap = read_snapshot(root)
    assert not snap.missing


# The network path codes each example must NOT raise: the traps it holds (SPEC, issue #12).
NOT_RAISED = {
    "private-cluster": {
        "nodeapi.firewall-rules-missing",
        "nodeapi.private-dns-link",
        "apiserver.private-dns-link",
        "nodeapi.firewall-egress",
    },
    "hub-spoke-firewall": {"nodeapi.nsg-blocks-egress", "nodeapi.firewall-egress"},
    "nsg-blocks-443": {"nodeapi.firewall-rules-missing", "nodeapi.firewall-egress"},
    "firewall-udr": {"nodeapi.firewall-rules-missing", "nodeapi.route-blackhole"},
    "healthy": {"nodeapi.nsg-blocks-egress", "nodeapi.firewall-egress", "service.nsg-blocks-pods"},
}


@pytest.mark.parametrize("folder", sorted(NOT_RAISED))
def test_network_path_traps_stay_silent(folder):
    codes = _codes(_run(folder, "health"))
    assert not codes & NOT_RAISED[folder]


def test_network_path_is_read_from_both_shapes():
    az = read_snapshot(EXAMPLES / "hub-spoke-firewall").network  # az flattened shape
    rest = read_snapshot(EXAMPLES / "private-cluster").network  # ARM REST shape
    assert az is not None and rest is not None
    assert [f.private_ips for f in az.firewalls.values()] == [("10.0.1.4",)]
    assert [f.private_ips for f in rest.firewalls.values()] == [("10.0.1.4",)]
    assert {v.dns_servers for v in rest.vnets.values()} == {("10.0.2.4", "10.0.2.5"), ()}
    assert len(rest.links) == 2 and len(az.groups) == 1


def _healthy_runs() -> list[tuple[str, dict[str, Any]]]:
    snap = read_snapshot(EXAMPLES / "healthy") if (EXAMPLES / "healthy").is_dir() else None
    runs: list[tuple[str, dict[str, Any]]] = [
        ("health", {}),
        ("apiserver", {}),
        ("apiserver", {"from_ips": ("192.0.2.10",)}),
        ("pod-ip", {}),
        ("node-api", {}),
        ("node-api", {"as_account": AS}),
        ("node-api", {"as_account": ("shop", "api")}),
    ]
    if snap is not None:
        runs += [("pod-ip", {"node": n.name}) for n in snap.nodes]
        runs += [("service", {"service": (s.namespace, s.name)}) for s in snap.services]
    return runs


@pytest.mark.parametrize("scenario,args", _healthy_runs(), ids=lambda v: str(v))
def test_healthy_example_raises_no_warning_in_any_scenario(scenario, args):
    report = _run("healthy", scenario, **args)
    bad = [f"{f.code}: {f.title}" for f in report.findings if f.severity.at_least(Severity.WARNING)]
    assert bad == []
    assert not _internal_errors(report)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_example_runs_cleanly(folder):
    """Folders added by other scenarios too: health runs without an internal error, and a
    `broken-*` folder shows at least one warning or critical."""
    report = _run(folder, "health")
    assert not _internal_errors(report)
    if folder.startswith("broken-"):
        assert report.worst.at_least(Severity.WARNING)


@pytest.mark.parametrize("folder", QUIET)
def test_modern_cluster_examples_raise_no_warning(folder):
    for scenario in ("health", "apiserver", "pod-ip", "service", "node-api"):
        report = _run(folder, scenario)
        bad = [
            f"{f.code}: {f.title}" for f in report.findings if f.severity.at_least(Severity.WARNING)
        ]
        assert bad == [], (folder, scenario)


def test_cilium_example_names_its_policies_and_offers_the_entity_fix():
    report = _run("cilium-policies", "node-api")
    (f,) = [f for f in report.findings if f.code == "nodeapi.network-policy-egress"]
    assert f.subject == "Namespace/payments"
    assert any("CiliumNetworkPolicy payments/payments-egress" in e for e in f.evidence)
    assert any("kube-apiserver" in (s.command or "") for s in f.remediation)


def test_coredns_example_points_at_the_rejected_line():
    report = _run("coredns-incident", "health")
    dns = {f.severity: f for f in report.findings if f.code == "service.dns"}
    assert Severity.CRITICAL in dns and Severity.WARNING in dns
    assert (
        "coredns-custom[corp.server] line 4: unknown directive `forwrd`"
        in dns[Severity.WARNING].evidence
    )
