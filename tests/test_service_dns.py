"""service.dns: cluster DNS as pods see it (kube-dns endpoints, CoreDNS pods, coredns-custom),
raised by fixtures and silent on a healthy cluster; also part of `health`."""

from __future__ import annotations

from builders import (
    az_cluster,
    configmap,
    endpointslice,
    event,
    pod,
    service,
    write_snapshot,
)

from diagnostics.checks.base import ScenarioArgs
from diagnostics.checks.service_dns import parse_custom
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.model import Severity
from diagnostics.runner import run

N1 = "aks-nodepool1-38214757-vmss000000"
DNS_LABELS = {"k8s-app": "kube-dns"}


def coredns(name: str, ready: bool = True, restarts: int = 0, waiting: str | None = None):
    return pod(
        name,
        "kube-system",
        N1,
        "10.244.0.30" if ready else "10.244.0.31",
        DNS_LABELS,
        ready=ready,
        restarts=restarts,
        waiting=waiting,
        ports=[("dns", 53)],
        owner=("ReplicaSet", "coredns-7d9"),
    )


def kube_dns(ready_ips: list[str]):
    svc = service("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, ports=[("dns", 53, 53)])
    eps = [(ip, True, f"coredns-{i}") for i, ip in enumerate(ready_ips)] or [
        ("10.244.0.31", False, "coredns-7d9-a")
    ]
    return svc, endpointslice("kube-dns", "kube-system", eps, ports=[("dns", 53)])


def snapshot(pods, ready_ips, configmaps=(), events=()):
    svc, sl = kube_dns(ready_ips)
    return dict(
        cluster=az_cluster(),
        pods=list(pods),
        services=[svc],
        endpointslices=[sl],
        endpoints=[],
        configmaps=list(configmaps),
        events=list(events),
    )


def diagnose(tmp_path, scenario="service", **snap):
    folder = write_snapshot(tmp_path / "snap", **snap)
    return run(scenario, SnapshotSource(folder, "prod"), ScenarioArgs())


def dns(report):
    return [f for f in report.findings if f.code == "service.dns"]


def test_healthy_cluster_dns_is_silent(tmp_path):
    snap = snapshot(
        [coredns("coredns-7d9-a"), coredns("coredns-7d9-b")],
        ["10.244.0.30"],
        [
            configmap(
                "coredns-custom",
                {
                    "log.override": "log",
                    "corp.server": "corp.example:53 {\n  forward . 10.10.0.4 10.10.0.5\n}\n",
                },
            )
        ],
    )
    assert dns(diagnose(tmp_path, **snap)) == []


def test_kube_dns_without_ready_endpoints_is_critical_in_service_and_health(tmp_path):
    snap = snapshot(
        [coredns("coredns-7d9-a", ready=False, restarts=12, waiting="CrashLoopBackOff")],
        [],
        events=[
            event(
                "BackOff",
                "Back-off restarting failed container coredns",
                name="coredns-7d9-a",
                namespace="kube-system",
            )
        ],
    )
    for scenario in ("service", "health"):
        (f,) = dns(diagnose(tmp_path / scenario, scenario, **snap))
        assert f.severity is Severity.CRITICAL
        assert f.subject == "service/kube-system/kube-dns"
        text = "\n".join(f.evidence)
        assert (
            "coredns-7d9-a on aks-nodepool1-38214757-vmss000000: not ready (CrashLoopBackOff)"
            in text
        )
        assert "last warning BackOff" in text
        cmds = [s.command for s in f.remediation if s.command]
        assert "kubectl logs --namespace kube-system -l k8s-app=kube-dns --tail 50 --prefix" in cmds


def test_some_coredns_replicas_not_ready_is_a_warning(tmp_path):
    snap = snapshot(
        [coredns("coredns-7d9-a"), coredns("coredns-7d9-b", ready=False)], ["10.244.0.30"]
    )
    (f,) = dns(diagnose(tmp_path, **snap))
    assert f.severity is Severity.WARNING and "1 of 2 CoreDNS pods are not ready" in f.title


def test_coredns_custom_that_coredns_rejects_is_named_line_by_line(tmp_path):
    bad = {
        "corp.server": "corp.example:53 {\n  forwrd . 10.10.0.4\n",
        "default.server": ".:53 {\n  forward . 8.8.8.8\n}\n",
    }
    snap = snapshot(
        [coredns("coredns-7d9-a"), coredns("coredns-7d9-b")],
        ["10.244.0.30"],
        [configmap("coredns-custom", bad)],
    )
    found = {f.subject: f for f in dns(diagnose(tmp_path, **snap))}
    corp = found["configmap/kube-system/coredns-custom#corp.server"]
    assert corp.severity is Severity.WARNING
    assert "coredns-custom[corp.server] line 2: unknown directive `forwrd`" in corp.evidence
    assert "coredns-custom[corp.server] 1 `{` never closed" in corp.evidence
    default = found["configmap/kube-system/coredns-custom#default.server"]
    assert any("repeats AKS's default one" in e for e in default.evidence)


def test_restarting_coredns_with_custom_forwards_points_at_the_upstreams(tmp_path):
    snap = snapshot(
        [coredns("coredns-7d9-a", restarts=7), coredns("coredns-7d9-b", restarts=5)],
        ["10.244.0.30"],
        [
            configmap(
                "coredns-custom", {"corp.server": "corp.example:53 {\n  forward . 10.10.0.4\n}\n"}
            )
        ],
    )
    (f,) = dns(diagnose(tmp_path, **snap))
    assert f.severity is Severity.WARNING
    assert "coredns-custom forwards: corp.example:53 -> 10.10.0.4" in f.evidence
    assert any("nslookup kubernetes.io 10.10.0.4" in (s.command or "") for s in f.remediation)


def test_override_keys_hold_plugins_not_server_blocks():
    assert parse_custom("log.override", "log\nerrors\n").errors == []
    assert (
        parse_custom("x.override", "hosts {\n 10.0.0.1 a.example\n fallthrough\n}\n").errors == []
    )
    assert parse_custom("notes.txt", "log").errors  # AKS reads only .server and .override keys
