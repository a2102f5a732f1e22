"""Live Azure Resource Manager reads over the wire, against the ARM emulator with the real
azure-mgmt-containerservice / azure-mgmt-network clients (TLS with a test CA): the cluster in
both fixture shapes, egress IPs computed from ARM, AAD access to Kubernetes, private clusters
through run command, and ARM failures as reasons."""

from __future__ import annotations

import time

import pytest
from azure.core.credentials import AccessToken
from builders import SUB, az_cluster
from emulators import (
    AAD_TOKEN,
    ARM_TOKEN,
    IDENTITY_HEADER,
    ArmEmulator,
    KubeEmulator,
    rest_cluster,
)
from emulators.sample import sample_objects

from bot.config import Config
from bot.sources import LiveSources, source_for
from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.arm import AzureTarget
from diagnostics.collectors.kubeauth import KubeAccess
from diagnostics.collectors.live import LiveSource
from diagnostics.collectors.settings import AKS_AAD_SCOPE, LiveSettings
from diagnostics.runner import run
from diagnostics.snapshot import Snapshot

MC = f"/subscriptions/{SUB}/resourceGroups/MC_rg-prod_prod_westeurope/providers/Microsoft.Network"
LB_IP = f"{MC}/publicIPAddresses/egress-1"
TARGET = AzureTarget(SUB, "rg-prod", "prod")


class FakeCredential:
    """A token credential: ARM tokens for the ARM scope, AAD tokens for the AKS server app."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kw: object) -> AccessToken:
        self.scopes.append(scopes[0])
        token = AAD_TOKEN if scopes[0] == AKS_AAD_SCOPE else ARM_TOKEN
        return AccessToken(token, int(time.time()) + 3600)


@pytest.fixture
def k8s(tls):
    with KubeEmulator(certfile=str(tls.server_pem), tokens=(AAD_TOKEN,), **sample_objects()) as emu:
        yield emu


@pytest.fixture
def arm(tls, k8s):
    with ArmEmulator(k8s=k8s, certfile=str(tls.server_pem)) as emu:
        emu.ca_data = tls.ca_data
        emu.add_public_ip(LB_IP, "20.61.1.1")
        yield emu


def settings(arm, **kw) -> LiveSettings:
    base = dict(
        arm_endpoint=arm.url,
        retries=0,
        k8s_timeout=5.0,
        connect_timeout=3.0,
        probe_timeout=3.0,
        collect_timeout=30.0,
        run_command_poll=0.01,
        backoff=0.01,
    )
    return LiveSettings(**{**base, **kw})


def live(arm, tls, mode: str = "aad", **kw) -> LiveSource:
    return LiveSource(
        "prod",
        kube=KubeAccess(mode),
        azure=TARGET,
        settings=settings(arm, **kw),
        credential=FakeCredential(),
        connection_verify=str(tls.ca_pem),
    )


def cluster(**overrides):
    base = dict(
        fqdn="prod-dns-abc123.hcp.westeurope.azmk8s.invalid",
        apiServerAccessProfile={"authorizedIpRanges": ["198.51.100.0/24"]},
    )
    return az_cluster(**{**base, **overrides})


def egress_ips(snap: Snapshot) -> tuple[list[str], list[str]]:
    """The cluster's egress public IPs: (resolved addresses, ids that could not be resolved)."""
    assert snap.cluster is not None
    ids = (*snap.cluster.lb_outbound_ip_ids, *snap.cluster.nat_outbound_ip_ids)
    resolved = [snap.public_ips[i.lower()] for i in ids if i.lower() in snap.public_ips]
    return resolved, [i for i in ids if i.lower() not in snap.public_ips]


# ---------------------------------------------------------------- the ManagedCluster
@pytest.mark.parametrize("shape", ["az aks show", "ARM REST"])
def test_the_cluster_is_read_through_the_sdk_in_either_fixture_shape(arm, tls, shape):
    body = cluster()
    arm.add_cluster(body if shape == "az aks show" else rest_cluster(body))
    src = live(arm, tls, "none")
    snap = src.collect({"cluster"}, ScenarioArgs())
    assert snap.has("cluster"), snap.missing
    c = snap.cluster
    assert c is not None
    assert (c.name, c.resource_group, c.subscription) == ("prod", "rg-prod", SUB)
    assert c.authorized_ip_ranges == ("198.51.100.0/24",)
    assert c.lb_outbound_ip_ids == (LB_IP,)
    # as_dict() of the SDK model keeps the REST spellings that parse_cluster reads
    raw = src.clients.arm().cluster_body("rg-prod", "prod")
    assert raw["properties"]["apiServerAccessProfile"]["authorizedIPRanges"] == ["198.51.100.0/24"]


def test_the_load_balancer_egress_ip_is_resolved_to_its_address(arm, tls):
    arm.add_cluster(cluster())
    snap = live(arm, tls, "none").collect({"cluster", "publicips"}, ScenarioArgs())
    assert snap.public_ips == {LB_IP.lower(): "20.61.1.1"}
    assert egress_ips(snap) == (["20.61.1.1"], [])
    assert "publicips" not in snap.missing


def test_fresh_reads_the_cluster_and_its_egress_ips_again(arm, tls):
    """Re-run re-reads from ARM what a plain run takes from the read cache (docs/caching.md)."""
    arm.add_cluster(cluster())
    src = live(arm, tls, "none")
    src.collect({"cluster", "publicips"}, ScenarioArgs())
    src.collect({"cluster", "publicips"}, ScenarioArgs())
    assert arm.count("*/egress-1") == 1 and arm.count("*/managedclusters/prod") == 1
    src.collect({"cluster", "publicips"}, ScenarioArgs(), fresh=True)
    assert arm.count("*/egress-1") == 2 and arm.count("*/managedclusters/prod") == 2


def test_managed_nat_gateway_outbound_ips(arm, tls):
    nat_ip = f"{MC}/publicIPAddresses/nat-egress-1"
    arm.add_public_ip(nat_ip, "20.61.2.2")
    net = dict(
        az_cluster()["networkProfile"],
        outboundType="managedNATGateway",
        loadBalancerProfile=None,
        natGatewayProfile={
            "managedOutboundIpProfile": {"count": 1},
            "effectiveOutboundIPs": [{"id": nat_ip}],
        },
    )
    arm.add_cluster(cluster(networkProfile=net))
    snap = live(arm, tls, "none").collect({"cluster", "publicips"}, ScenarioArgs())
    assert egress_ips(snap) == (["20.61.2.2"], [])


def test_user_assigned_nat_gateway_is_found_through_the_node_subnet(arm, tls):
    vnet = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/hub"
    subnet, nat = (
        f"{vnet}/subnets/nodes",
        f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/natGateways/egress",
    )
    nat_ip = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/publicIPAddresses/nat-1"
    arm.add_subnet(subnet, "10.224.0.0/16", nat)
    arm.add_nat_gateway(nat, [nat_ip])
    arm.add_public_ip(nat_ip, "20.61.3.3")
    body = cluster(apiServerAccessProfile={"authorizedIpRanges": ["198.51.100.0/24"]})
    body["networkProfile"] = dict(
        body["networkProfile"], outboundType="userAssignedNATGateway", loadBalancerProfile=None
    )
    body["agentPoolProfiles"][0]["vnetSubnetId"] = subnet
    arm.add_cluster(body)
    src = live(arm, tls, "none")
    snap = src.collect({"cluster", "publicips"}, ScenarioArgs())
    assert egress_ips(snap) == (["20.61.3.3"], [])
    report = run("node-api", src)
    (f,) = [f for f in report.findings if f.code == "nodeapi.authorized-ip.egress-excluded"]
    assert any("20.61.3.3" in e for e in f.evidence)


def test_an_egress_ip_that_cannot_be_read_is_reported_not_guessed(arm, tls):
    arm.add_cluster(cluster())
    arm.fault(LB_IP, 403)
    snap = live(arm, tls, "none").collect({"cluster", "publicips"}, ScenarioArgs())
    assert snap.has("publicips")
    assert egress_ips(snap) == ([], [LB_IP])
    assert snap.missing["publicips"].startswith(
        f"could not resolve {LB_IP}: forbidden: public IP egress-1"
    )


def test_arm_429_with_retry_after_is_retried_by_the_sdk(arm, tls):
    cid = arm.add_cluster(cluster())
    arm.fault(cid, 429, retry_after=1, times=1)
    snap = live(arm, tls, "none", retries=1).collect({"cluster"}, ScenarioArgs())
    assert snap.has("cluster") and arm.count(cid) == 2


@pytest.mark.parametrize(
    "status,reason",
    [
        (403, "forbidden: managed cluster rg-prod/prod: injected fault: 403"),
        (404, "not found: managed cluster rg-prod/prod does not exist"),
        (500, "Azure Resource Manager answered 500 for managed cluster rg-prod/prod after retries"),
    ],
)
def test_arm_failures_become_reasons(arm, tls, status, reason):
    cid = arm.add_cluster(cluster())
    arm.fault(cid, status)
    report = run("apiserver", live(arm, tls, "none"))
    (u,) = [u for u in report.unavailable if u.source == "cluster"]
    assert u.reason.startswith(reason)
    assert "cluster.stopped" in u.checks


# ---------------------------------------------------------------- Kubernetes through Azure
def test_aad_access_uses_the_arm_kubeconfig_and_an_aad_token(arm, k8s, tls):
    arm.add_cluster(cluster(aadProfile={"managed": True, "enableAzureRbac": True}))
    src = live(arm, tls, "aad")
    report = run("health", src)
    assert report.source == "aad"
    assert "pods" in report.collected and "cluster" in report.collected
    assert {r.headers["authorization"] for r in k8s.requests if r.path.startswith("/api")} == {
        f"Bearer {AAD_TOKEN}"
    }
    assert arm.count("*/listClusterUserCredential") == 1


def test_api_server_unreachable_arm_checks_still_run_and_the_probe_says_why(arm, tls):
    arm.add_cluster(cluster())
    dead = KubeEmulator().start()
    arm.kubeconfig_server = dead.url.replace("http://", "https://")
    dead.stop()
    src = live(arm, tls, "aad")
    report = run("apiserver", src, ScenarioArgs(from_ips=("203.0.113.9",)))
    codes = {f.code for f in report.findings}
    assert {"apiserver.authorized-ip.client-excluded", "apiserver.probe.tcp-refused"} <= codes
    health = run("health", src)
    reasons = {u.source: u.reason for u in health.unavailable}
    assert reasons["pods"].startswith("API server unreachable: connection refused")
    assert "apiserver.authorized-ip.enabled" in {f.code for f in health.findings}


def test_private_cluster_lists_come_through_run_command(tls):
    objects = sample_objects()
    with (
        KubeEmulator(nnc_installed=False, **objects) as k8s,
        ArmEmulator(
            k8s=k8s,
            certfile=str(tls.server_pem),
            run_command_polls=2,
            run_command_forbidden=("configmaps",),
        ) as arm,
    ):
        access = {"enablePrivateCluster": True, "privateDnsZone": "system"}
        arm.add_cluster(
            cluster(
                apiServerAccessProfile=access,
                aadProfile={"managed": True},
                privateFqdn="prod-abc.privatelink.westeurope.azmk8s.invalid",
            )
        )
        src = live(arm, tls, "run-command")
        report = run("pod-ip", src)
        assert report.source == "run-command"
        assert "pods" in report.collected and "nodes" in report.collected
        reasons = {u.source: u.reason for u in report.unavailable}
        assert reasons["nodenetworkconfigs"].startswith(
            "not installed: this cluster does not serve NodeNetworkConfig"
        )
        assert "podip.allocation-failed" in {f.code for f in report.findings}
        assert arm.count("*/runCommand") == 1  # every list in one command
        assert arm.run_command_requests[0]["clusterToken"] == AAD_TOKEN
        health = run("health", src)
        assert {u.source: u.reason for u in health.unavailable}["configmaps"].startswith(
            "forbidden (run command): Error from server (Forbidden)"
        )


# ---------------------------------------------------------------- configured clusters
def test_sovereign_cloud_endpoints_come_from_the_environment():
    s = LiveSettings.from_env(
        {
            "AKSDIAG_ARM_ENDPOINT": "https://management.usgovcloudapi.net/",
            "AZURE_AUTHORITY_HOST": "login.microsoftonline.us",
        }
    )
    assert s.arm_endpoint == "https://management.usgovcloudapi.net"
    assert s.scope == "https://management.usgovcloudapi.net/.default"
    assert s.authority_host == "login.microsoftonline.us"
    with pytest.raises(ValueError, match="AKSDIAG_ARM_ENDPOINT must be an https:// URL"):
        LiveSettings.from_env({"AKSDIAG_ARM_ENDPOINT": "http://management.azure.com"})


def test_a_configured_cluster_reads_arm_with_the_default_credential_chain(arm, tls, monkeypatch):
    """DefaultAzureCredential over the wire: a managed identity endpoint (App Service style)."""
    arm.add_cluster(cluster())
    monkeypatch.setenv("AKSDIAG_ARM_ENDPOINT", arm.url)
    monkeypatch.setenv("AKSDIAG_RETRIES", "0")
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{arm.url}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_pem))
    config = Config.model_validate(
        {
            "clusters": {
                "prod": {
                    "subscription": SUB,
                    "resource_group": "rg-prod",
                    "name": "prod",
                    "kubernetes": {"aad": True},
                }
            }
        }
    )
    registry = LiveSources()
    src = source_for("prod", config.clusters["prod"], config, registry=registry)
    assert source_for("prod", config.clusters["prod"], config, registry=registry) is src
    report = run("apiserver", src, ScenarioArgs(from_ips=("198.51.100.7",)))
    assert "apiserver.authorized-ip.enabled" in {f.code for f in report.findings}, (
        report.unavailable
    )
    assert arm.count("/msi/token") >= 1
    registry.clear()


# ---------------------------------------------------------------- Kubernetes versions
def _offered(*plans: tuple[str, str]) -> list[dict]:
    return [{"version": v, "capabilities": {"supportPlan": [p]}} for v, p in plans]


def test_the_regions_versions_are_read_live_and_decide_support(arm, tls):
    old = dict(kubernetesVersion="1.32.5", currentKubernetesVersion="1.32.5")
    arm.add_cluster(cluster(**old))
    rid = arm.add_kubernetes_versions(
        SUB, "westeurope", _offered(("1.34", "KubernetesOfficial"), ("1.32", "AKSLongTermSupport"))
    )
    src = live(arm, tls, "none")
    report = run("apiserver", src)
    (f,) = [f for f in report.findings if f.code == "cluster.version-outdated"]
    assert "AKS offers in westeurope: 1.34, 1.32 (LTS)" in f.evidence
    assert arm.count(rid) == 1
    assert not [u for u in report.unavailable if u.source == "versions"]


def test_a_version_the_region_still_supports_is_not_outdated_live(arm, tls):
    # the dated calendar ends 1.32's community support in 2026-03: the region's answer wins
    old = dict(kubernetesVersion="1.32.5", currentKubernetesVersion="1.32.5")
    arm.add_cluster(cluster(**old))
    arm.add_kubernetes_versions(SUB, "westeurope", _offered(("1.32", "KubernetesOfficial")))
    report = run("apiserver", live(arm, tls, "none"))
    assert "cluster.version-outdated" not in {f.code for f in report.findings}


def test_versions_that_cannot_be_read_are_unavailable_and_the_calendar_decides(arm, tls):
    old = dict(kubernetesVersion="1.32.5", currentKubernetesVersion="1.32.5")
    arm.add_cluster(cluster(**old))
    rid = arm.add_kubernetes_versions(SUB, "westeurope", _offered(("1.32", "KubernetesOfficial")))
    arm.fault(rid, 403)
    report = run("apiserver", live(arm, tls, "none"))
    (u,) = [u for u in report.unavailable if u.source == "versions"]
    assert u.reason.startswith("forbidden: the Kubernetes versions AKS offers in westeurope")
    (f,) = [f for f in report.findings if f.code == "cluster.version-outdated"]
    assert any("AKS release calendar" in e for e in f.evidence)


# ---------------------------------------------------------------- public IP prefixes
LB_PREFIX = f"{MC}/publicIPPrefixes/lb-egress"


def test_the_load_balancers_outbound_prefix_is_read_and_aks_allows_it(arm, tls):
    arm.add_public_ip_prefix(LB_PREFIX, "20.61.9.0/28")
    body = cluster()
    body["networkProfile"]["loadBalancerProfile"]["outboundIPPrefixes"] = {
        "publicIPPrefixes": [{"id": LB_PREFIX}]
    }
    arm.add_cluster(body)
    src = live(arm, tls, "none")
    snap = src.collect({"cluster", "publicips"}, ScenarioArgs())
    assert snap.public_ips[LB_PREFIX.lower()] == "20.61.9.0/28"
    assert "publicips" not in snap.missing
    # a client in the prefix reaches the API server: AKS allows it besides the ranges
    report = run("apiserver", src, ScenarioArgs(from_ips=("20.61.9.5",)))
    assert "apiserver.authorized-ip.client-excluded" not in {f.code for f in report.findings}
    (f,) = [f for f in report.findings if f.code == "apiserver.authorized-ip.enabled"]
    assert any("20.61.9.5 is in 20.61.9.0/28" in e for e in f.evidence)


def test_a_prefix_that_cannot_be_read_is_a_reason(arm, tls):
    arm.add_public_ip_prefix(LB_PREFIX, "20.61.9.0/28")
    arm.fault(LB_PREFIX, 403)
    body = cluster()
    body["networkProfile"]["loadBalancerProfile"]["outboundIPPrefixes"] = {
        "publicIPPrefixes": [{"id": LB_PREFIX}]
    }
    arm.add_cluster(body)
    snap = live(arm, tls, "none").collect({"cluster", "publicips"}, ScenarioArgs())
    assert LB_PREFIX.lower() not in snap.public_ips
    assert f"{LB_PREFIX}: forbidden: public IP prefix lb-egress" in snap.missing["publicips"]


def _user_nat_with_prefix(arm, ranges: list[str]) -> None:
    rg = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network"
    subnet, nat, pfx = (
        f"{rg}/virtualNetworks/hub/subnets/nodes",
        f"{rg}/natGateways/egress",
        f"{rg}/publicIPPrefixes/nat-egress",
    )
    arm.add_subnet(subnet, "10.224.0.0/16", nat)
    arm.add_nat_gateway(nat, [], (pfx,))
    arm.add_public_ip_prefix(pfx, "20.61.4.0/30")
    body = cluster(apiServerAccessProfile={"authorizedIpRanges": ranges})
    body["networkProfile"] = dict(
        body["networkProfile"], outboundType="userAssignedNATGateway", loadBalancerProfile=None
    )
    body["agentPoolProfiles"][0]["vnetSubnetId"] = subnet
    arm.add_cluster(body)


def test_a_nat_gateway_prefix_outside_the_ranges_is_added_as_its_cidr(arm, tls):
    _user_nat_with_prefix(arm, ["198.51.100.0/24", "20.61.4.0/31"])  # half of the prefix
    report = run("node-api", live(arm, tls, "none"))
    (f,) = [f for f in report.findings if f.code == "nodeapi.authorized-ip.egress-excluded"]
    assert any("prefix 20.61.4.0/30 (nat-egress) is not wholly inside" in e for e in f.evidence)
    assert any(
        s.command
        and s.command.endswith(
            "--api-server-authorized-ip-ranges 198.51.100.0/24,20.61.4.0/31,20.61.4.0/30"
        )
        for s in f.remediation
    )


def test_a_nat_gateway_prefix_inside_a_range_is_covered(arm, tls):
    _user_nat_with_prefix(arm, ["198.51.100.0/24", "20.61.4.0/24"])
    report = run("node-api", live(arm, tls, "none"))
    codes = {f.code for f in report.findings}
    assert not codes & {
        "nodeapi.authorized-ip.egress-excluded",
        "nodeapi.authorized-ip.egress-unverified",
    }
