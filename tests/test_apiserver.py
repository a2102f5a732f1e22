"""apiserver scenario over snapshot folders: each code raised by a fixture, silent when healthy."""

from __future__ import annotations

import pytest
from builders import az_cluster, write_snapshot

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.model import Severity
from diagnostics.runner import run


def _run(tmp_path, cluster, **kw):
    write_snapshot(tmp_path / "snap", cluster=cluster)
    return run("apiserver", SnapshotSource(tmp_path / "snap", "prod"), ScenarioArgs(**kw))


def codes(report):
    return sorted(f.code for f in report.findings)


def test_healthy_public_cluster_with_ranges_covering_client(tmp_path):
    cluster = az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["198.51.100.0/24"]})
    report = _run(tmp_path, cluster, from_ips=("198.51.100.7",))
    assert codes(report) == ["apiserver.authorized-ip.enabled"]
    assert report.worst is Severity.INFO
    assert "client 198.51.100.7 is covered by 198.51.100.0/24" in report.findings[0].evidence


def test_client_outside_ranges_is_critical_with_full_replacement_list(tmp_path):
    cluster = az_cluster(
        apiServerAccessProfile={"authorizedIpRanges": ["203.0.113.0/24", "192.0.2.10/32"]}
    )
    report = _run(tmp_path, cluster, from_ips=("198.51.100.7",))
    (f,) = [f for f in report.findings if f.code == "apiserver.authorized-ip.client-excluded"]
    assert f.severity is Severity.CRITICAL
    cmds = [s.command for s in f.remediation if s.command]
    assert (
        "az aks update --resource-group rg-prod --name prod --api-server-authorized-ip-ranges "
        "203.0.113.0/24,192.0.2.10/32,198.51.100.7/32" in cmds
    )
    assert (
        "az aks show --resource-group rg-prod --name prod --query apiServerAccessProfile.authorizedIpRanges"
        in cmds
    )


def test_rest_body_spelling_is_read_too(tmp_path):
    """The ARM REST body: `properties` wrapper and `authorizedIPRanges`."""
    az = az_cluster()
    rest = {
        "id": az["id"],
        "name": "prod",
        "location": "westeurope",
        "type": "Microsoft.ContainerService/ManagedClusters",
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "kubernetesVersion": "1.35.2",
            "fqdn": az["fqdn"],
            "apiServerAccessProfile": {"authorizedIPRanges": ["203.0.113.0/24"]},
            "networkProfile": {
                "networkPlugin": "azure",
                "dnsServiceIP": "10.0.0.10",
                "loadBalancerProfile": {"effectiveOutboundIPs": [{"id": "/x/pip"}]},
            },
            "agentPoolProfiles": [
                {"name": "np", "count": 2, "vnetSubnetID": "/s/1", "maxPods": 30}
            ],
        },
    }
    report = _run(tmp_path, rest, from_ips=("198.51.100.7",))
    assert "apiserver.authorized-ip.client-excluded" in codes(report)


def test_stopped_cluster(tmp_path):
    report = _run(tmp_path, az_cluster(powerState={"code": "Stopped"}))
    (f,) = [f for f in report.findings if f.code == "cluster.stopped"]
    assert f.severity is Severity.CRITICAL
    assert any(
        s.command == "az aks start --resource-group rg-prod --name prod" for s in f.remediation
    )


def test_power_state_null_is_not_stopped(tmp_path):
    report = _run(tmp_path, az_cluster(powerState=None))
    assert "cluster.stopped" not in codes(report)


@pytest.mark.parametrize(
    "state,severity", [("Failed", Severity.CRITICAL), ("Upgrading", Severity.INFO)]
)
def test_provisioning_state(tmp_path, state, severity):
    report = _run(tmp_path, az_cluster(provisioningState=state))
    (f,) = [f for f in report.findings if f.code == "cluster.provisioning-failed"]
    assert f.severity is severity


def test_private_cluster_with_custom_dns_zone(tmp_path):
    zone = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones/privatelink.westeurope.azmk8s.io"
    cluster = az_cluster(
        apiServerAccessProfile={"enablePrivateCluster": True, "privateDnsZone": zone},
        privateFqdn="prod-dns-abc123.privatelink.westeurope.azmk8s.io",
    )
    report = _run(tmp_path, cluster)
    assert codes(report) == ["apiserver.private-cluster", "apiserver.private-dns"]
    assert all(f.severity is Severity.INFO for f in report.findings)
    assert any(
        "az aks command invoke" in (s.command or "") for f in report.findings for s in f.remediation
    )


def test_private_cluster_with_system_zone_raises_no_dns_finding(tmp_path):
    cluster = az_cluster(
        apiServerAccessProfile={"enablePrivateCluster": True, "privateDnsZone": "system"}
    )
    assert codes(_run(tmp_path, cluster)) == ["apiserver.private-cluster"]


def test_probe_is_reported_unavailable_on_a_snapshot(tmp_path):
    report = _run(tmp_path, az_cluster())
    (u,) = [u for u in report.unavailable if u.source == "probe"]
    assert "live cluster" in u.reason
    assert "apiserver.probe.tcp-timeout" in u.checks


def test_missing_cluster_json_is_reported_not_raised(tmp_path):
    write_snapshot(tmp_path / "snap", pods=[])
    report = run("apiserver", SnapshotSource(tmp_path / "snap", "prod"))
    assert report.findings == []
    (u,) = [u for u in report.unavailable if u.source == "cluster"]
    assert "cluster.json" in u.reason
    assert "apiserver.authorized-ip.client-excluded" in u.checks


def test_az_spelling_values_survive_the_sdk_model(tmp_path):
    from diagnostics.collectors.armjson import parse_cluster

    c = parse_cluster(
        az_cluster(
            apiServerAccessProfile={"authorizedIpRanges": ["1.2.3.4/32"], "privateDnsZone": "none"}
        )
    )
    assert c.authorized_ip_ranges == ("1.2.3.4/32",)
    assert c.private_dns_zone == "none"
    assert c.lb_outbound_ip_ids and c.lb_outbound_ip_ids[0].endswith("egress-1")
    assert c.dns_service_ip == "10.0.0.10"


def test_added_ranges_are_one_host_cidrs_for_both_ip_versions():
    """Both the client fix (apiserver) and the egress fix (node-api) build the list this way."""
    from diagnostics.checks.authorized import covering, parse_ranges, replacement_list

    assert replacement_list(["203.0.113.0/24"], ["198.51.100.7", "2001:db8::7"]) == (
        "203.0.113.0/24,198.51.100.7/32,2001:db8::7/128"
    )
    # 0.0.0.0/32 is refused by az next to other ranges; host bits are refused too
    assert replacement_list(["0.0.0.0/32"], ["20.1.2.3/24"]) == "20.1.2.0/24"
    assert replacement_list(["20.1.2.0/24"], ["20.1.2.0/24"]) == "20.1.2.0/24"
    ranges, bad = parse_ranges(["203.0.113.0/24", "not-a-cidr"])
    assert bad == ["not-a-cidr"]
    assert covering("203.0.113.9", ranges) == "203.0.113.0/24"
    assert covering("2001:db8::7", ranges) is None and covering("nonsense", ranges) is None
