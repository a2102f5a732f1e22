"""Cluster state and authorized ranges as a real AKS cluster shows them: routine upgrades are
context, failures carry AKS's own error, support follows the versions AKS offers, and client
addresses the public API server can never see are explained, not reported as excluded."""

from __future__ import annotations

import json

import pytest
from builders import az_cluster, write_snapshot

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.model import Severity
from diagnostics.runner import run

CAPTURED = "2026-11-20T10:00:00Z"


def _run(tmp_path, cluster, versions=None, **kw):
    snap = write_snapshot(tmp_path / "snap", cluster=cluster, captured_at=CAPTURED)
    if versions is not None:
        (snap / "versions.json").write_text(json.dumps(versions))
    return run("apiserver", SnapshotSource(snap, "prod"), ScenarioArgs(**kw))


def _one(report, code):
    (f,) = [f for f in report.findings if f.code == code]
    return f


def _cmds(f):
    return [s.command for s in f.remediation if s.command]


# ---------------------------------------------------------------- provisioning
def test_routine_upgrade_is_info(tmp_path):
    cluster = az_cluster(
        provisioningState="Upgrading", systemData={"lastModifiedAt": "2026-11-20T09:40:00Z"}
    )
    f = _one(_run(tmp_path, cluster), "cluster.provisioning-failed")
    assert f.severity is Severity.INFO
    assert any("began 20 min ago" in e for e in f.evidence)
    assert not any("update" in c and "--yes" in c for c in _cmds(f))


def test_upgrade_running_far_too_long_is_a_warning_with_a_reconcile_that_does_not_prompt(
    tmp_path,
):
    cluster = az_cluster(
        provisioningState="Upgrading", systemData={"lastModifiedAt": "2026-11-20T05:00:00Z"}
    )
    f = _one(_run(tmp_path, cluster), "cluster.provisioning-failed")
    assert f.severity is Severity.WARNING
    assert "300 min" in f.title
    assert "az aks update --resource-group rg-prod --name prod --yes" in _cmds(f)


def test_failed_cluster_carries_the_recorded_error(tmp_path):
    cluster = az_cluster(
        provisioningState="Failed",
        status={
            "provisioningError": {
                "code": "VMExtensionProvisioningError",
                "message": "VM has reported a failure when processing extension 'vmssCSE'.",
                "details": [{"code": "OutboundConnFailVMExtensionError", "message": "exit 50"}],
            }
        },
    )
    f = _one(_run(tmp_path, cluster), "cluster.provisioning-failed")
    assert f.severity is Severity.CRITICAL
    assert "VMExtensionProvisioningError" in f.title
    assert any("OutboundConnFailVMExtensionError: exit 50" in e for e in f.evidence)
    assert "az aks update --resource-group rg-prod --name prod --yes" in _cmds(f)


def test_failed_node_pool_carries_its_error(tmp_path):
    pool = az_cluster()["agentPoolProfiles"][0] | {
        "provisioningState": "Failed",
        "status": {"provisioningError": {"code": "QuotaExceeded", "message": "no cores"}},
    }
    f = _one(_run(tmp_path, az_cluster(agentPoolProfiles=[pool])), "cluster.provisioning-failed")
    assert "status.provisioningError = QuotaExceeded: no cores" in f.evidence


# ---------------------------------------------------------------- versions
@pytest.mark.parametrize(
    "version,plan,outdated",
    [
        ("1.35.2", None, False),
        ("1.32.5", None, True),  # community support ended in 2026-03
        ("1.32.5", "AKSLongTermSupport", False),  # LTS runs a year longer
        ("1.29.9", "AKSLongTermSupport", True),
        ("1.40.0", None, False),  # newer than the table: never "outdated"
    ],
)
def test_version_support_from_the_dated_calendar(tmp_path, version, plan, outdated):
    extra = {"supportPlan": plan} if plan else {}
    cluster = az_cluster(kubernetesVersion=version, currentKubernetesVersion=version, **extra)
    codes = [f.code for f in _run(tmp_path, cluster).findings]
    assert ("cluster.version-outdated" in codes) is outdated


def test_version_support_from_the_regions_versions_wins(tmp_path):
    versions = {
        "values": [
            {"version": "1.33", "capabilities": {"supportPlan": ["KubernetesOfficial"]}},
            {"version": "1.32", "capabilities": {"supportPlan": ["AKSLongTermSupport"]}},
        ]
    }
    cluster = az_cluster(kubernetesVersion="1.32.5", currentKubernetesVersion="1.32.5")
    f = _one(_run(tmp_path, cluster, versions), "cluster.version-outdated")
    assert any("1.32 (LTS)" in e for e in f.evidence)
    assert f.docs.endswith("supported-kubernetes-versions")
    lts = az_cluster(
        kubernetesVersion="1.32.5",
        currentKubernetesVersion="1.32.5",
        supportPlan="AKSLongTermSupport",
    )
    codes = [f.code for f in _run(tmp_path / "lts", lts, versions).findings]
    assert "cluster.version-outdated" not in codes


# ---------------------------------------------------------------- authorized ranges
@pytest.mark.parametrize("client", ["10.20.0.5", "100.64.1.1", "2001:4860::8888"])
def test_private_and_ipv6_clients_are_explained_not_excluded(tmp_path, client):
    cluster = az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["20.50.0.0/24"]})
    report = _run(tmp_path, cluster, from_ips=(client,))
    codes = sorted(f.code for f in report.findings)
    assert codes == ["apiserver.authorized-ip.client-not-public", "apiserver.authorized-ip.enabled"]
    assert report.worst is Severity.INFO
    f = _one(report, "apiserver.authorized-ip.client-not-public")
    assert "curl -s https://ifconfig.me" in _cmds(f)
    assert not any("--api-server-authorized-ip-ranges" in c for c in _cmds(f))


def test_only_outbound_list_is_replaced_not_extended(tmp_path):
    cluster = az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["0.0.0.0/32"]})
    f = _one(
        _run(tmp_path, cluster, from_ips=("20.1.2.3",)), "apiserver.authorized-ip.client-excluded"
    )
    assert (
        "az aks update --resource-group rg-prod --name prod "
        "--api-server-authorized-ip-ranges 20.1.2.3/32" in _cmds(f)
    )
    assert any("replaces it" in e for e in f.evidence)


def test_range_limit_is_2000_with_vnet_integration(tmp_path):
    ranges = [f"20.{i // 250}.{i % 250}.0/24" for i in range(300)]
    plain = az_cluster(apiServerAccessProfile={"authorizedIpRanges": ranges})
    f = _one(
        _run(tmp_path, plain, from_ips=("52.1.2.3",)), "apiserver.authorized-ip.client-excluded"
    )
    assert any("at most 200 ranges" in s.text for s in f.remediation)
    vnet = az_cluster(
        apiServerAccessProfile={"authorizedIpRanges": ranges, "enableVnetIntegration": True}
    )
    f = _one(
        _run(tmp_path / "v", vnet, from_ips=("52.1.2.3",)),
        "apiserver.authorized-ip.client-excluded",
    )
    assert not any("at most" in s.text for s in f.remediation)


# ---------------------------------------------------------------- node public IPs
PREFIX = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-prod/providers/"
    "Microsoft.Network/publicIPPrefixes/node-ips"
)


def _node_api(tmp_path, pool_extra, public_ips=None):
    pool = az_cluster()["agentPoolProfiles"][0] | {"enableNodePublicIp": True, **pool_extra}
    cluster = az_cluster(
        apiServerAccessProfile={"authorizedIpRanges": ["20.50.0.0/24"]}, agentPoolProfiles=[pool]
    )
    snap = write_snapshot(tmp_path / "snap", cluster=cluster, public_ips=public_ips or {})
    report = run("node-api", SnapshotSource(snap, "prod"), ScenarioArgs())
    return [f for f in report.findings if f.code == "nodeapi.authorized-ip.node-public-ip"]


def test_node_public_ip_prefix_outside_the_ranges_is_a_warning_with_the_full_list(tmp_path):
    (f,) = _node_api(tmp_path, {"nodePublicIpPrefixId": PREFIX}, {PREFIX.lower(): "20.61.7.0/28"})
    assert f.severity is Severity.WARNING
    assert (
        "az aks update --resource-group rg-prod --name prod "
        "--api-server-authorized-ip-ranges 20.50.0.0/24,20.61.7.0/28" in _cmds(f)
    )


def test_node_public_ips_without_a_prefix_and_covered_prefixes(tmp_path):
    (f,) = _node_api(tmp_path / "a", {})
    assert f.severity is Severity.WARNING and "no prefix" in f.title
    assert any("--node-public-ip-prefix-id" in c for c in _cmds(f))
    covered = _node_api(
        tmp_path / "b", {"nodePublicIpPrefixId": PREFIX}, {PREFIX.lower(): "20.50.0.16/28"}
    )
    assert covered == []


# ---------------------------------------------------------------- load balancer outbound prefixes
LB_PREFIX = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-prod/providers/"
    "Microsoft.Network/publicIPPrefixes/lb-egress"
)


def _lb_prefix_run(tmp_path, client, public_ips):
    net = az_cluster()["networkProfile"]
    lb = {"outboundIPPrefixes": {"publicIPPrefixes": [{"id": LB_PREFIX}]}}
    cluster = az_cluster(
        apiServerAccessProfile={"authorizedIpRanges": ["20.50.0.0/24"]},
        networkProfile=net | {"loadBalancerProfile": lb},
    )
    snap = write_snapshot(tmp_path / "snap", cluster=cluster, public_ips=public_ips)
    return run("apiserver", SnapshotSource(snap, "prod"), ScenarioArgs(from_ips=(client,)))


def test_a_client_in_the_load_balancers_outbound_prefix_is_allowed_by_aks(tmp_path):
    # AKS allows the standard load balancer's outbound IPs and prefixes besides the ranges
    report = _lb_prefix_run(tmp_path, "20.61.9.5", {LB_PREFIX.lower(): "20.61.9.0/28"})
    assert "apiserver.authorized-ip.client-excluded" not in {f.code for f in report.findings}
    f = _one(report, "apiserver.authorized-ip.enabled")
    assert any("20.61.9.5 is in 20.61.9.0/28" in e and "AKS allows it" in e for e in f.evidence)
    assert any("20.61.9.0/28 (lb-egress)" in e for e in f.evidence)


def test_a_client_outside_the_ranges_and_the_lb_prefix_is_excluded(tmp_path):
    report = _lb_prefix_run(tmp_path, "20.61.10.5", {LB_PREFIX.lower(): "20.61.9.0/28"})
    f = _one(report, "apiserver.authorized-ip.client-excluded")
    assert any("20.61.9.0/28 (lb-egress)" in e and "none of them either" in e for e in f.evidence)
    # the prefix needs no entry of its own: AKS adds it; the client is added as a /32
    assert (
        "az aks update --resource-group rg-prod --name prod "
        "--api-server-authorized-ip-ranges 20.50.0.0/24,20.61.10.5/32" in _cmds(f)
    )
