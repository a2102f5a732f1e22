"""The Azure network path read live, over the wire: the ARM emulator serves VNets, NSGs, route
tables, an Azure Firewall with its policy in another subscription, a private DNS zone with its
links and the cluster's outbound endpoints, to the real azure-mgmt-network,
azure-mgmt-privatedns and azure-mgmt-containerservice clients; 403 and 404 on path elements end
as named `unavailable` entries, never as a verdict past them."""

from __future__ import annotations

import pytest
from builders import SUB, az_cluster
from emulators import AAD_TOKEN, ArmEmulator, KubeEmulator
from emulators.sample import sample_objects
from test_live_arm import FakeCredential

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.arm import AzureTarget
from diagnostics.collectors.kubeauth import KubeAccess
from diagnostics.collectors.live import LiveSource
from diagnostics.collectors.settings import LiveSettings
from diagnostics.runner import run

HUB_SUB = "11111111-2222-4333-8444-555555555555"
NET = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network"
HUBNET = f"/subscriptions/{HUB_SUB}/resourceGroups/rg-hub/providers/Microsoft.Network"
VNET, HUB = f"{NET}/virtualNetworks/vnet-spoke", f"{HUBNET}/virtualNetworks/vnet-hub"
SUBNET, RT, NSG = (
    f"{VNET}/subnets/snet-aks",
    f"{NET}/routeTables/rt-aks",
    f"{NET}/networkSecurityGroups/nsg-aks",
)
FW, POLICY = f"{HUBNET}/azureFirewalls/fw-hub", f"{HUBNET}/firewallPolicies/fwp-hub"
ZONE = f"{HUBNET.replace('Microsoft.Network', 'Microsoft.Network')}/privateDnsZones/privatelink.westeurope.azmk8s.io"
TARGET = AzureTarget(SUB, "rg-prod", "prod")


def props(rid: str, kind: str, **p) -> dict:
    return {
        "id": rid,
        "name": rid.rsplit("/", 1)[-1],
        "type": kind,
        "location": "westeurope",
        "properties": p,
    }


def network(arm: ArmEmulator, *, allow_mcr: bool, private: bool = False) -> None:
    subnet = {
        "id": SUBNET,
        "name": "snet-aks",
        "properties": {
            "addressPrefix": "10.224.0.0/22",
            "routeTable": {"id": RT},
            "networkSecurityGroup": {"id": NSG},
        },
    }
    peering = {
        "name": "to-hub",
        "properties": {"remoteVirtualNetwork": {"id": HUB}, "peeringState": "Connected"},
    }
    arm.add(
        props(
            VNET,
            "Microsoft.Network/virtualNetworks",
            subnets=[subnet],
            addressSpace={"addressPrefixes": ["10.224.0.0/16"]},
            dhcpOptions={"dnsServers": ["10.0.2.4"] if private else []},
            virtualNetworkPeerings=[peering],
        )
    )
    arm.add(
        props(
            HUB,
            "Microsoft.Network/virtualNetworks",
            subnets=[],
            addressSpace={"addressPrefixes": ["10.0.0.0/16"]},
        )
    )
    rule = {
        "name": "allow-azure-out",
        "properties": {
            "priority": 100,
            "direction": "Outbound",
            "access": "Allow",
            "protocol": "Tcp",
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "AzureCloud",
            "destinationPortRange": "443",
        },
    }
    arm.add(props(NSG, "Microsoft.Network/networkSecurityGroups", securityRules=[rule]))
    route = {
        "name": "default",
        "properties": {
            "addressPrefix": "0.0.0.0/0",
            "nextHopType": "VirtualAppliance",
            "nextHopIpAddress": "10.0.1.4",
        },
    }
    arm.add(props(RT, "Microsoft.Network/routeTables", routes=[route]))
    arm.add(
        props(
            FW,
            "Microsoft.Network/azureFirewalls",
            firewallPolicy={"id": POLICY},
            ipConfigurations=[{"name": "ip", "properties": {"privateIPAddress": "10.0.1.4"}}],
        )
    )
    arm.add(
        props(
            POLICY,
            "Microsoft.Network/firewallPolicies",
            ruleCollectionGroups=[{"id": f"{POLICY}/ruleCollectionGroups/rcg-aks"}],
        )
    )
    fqdns = [
        "*.azmk8s.io",
        "*.hcp.westeurope.azmk8s.invalid",
        "management.azure.com",
        "login.microsoftonline.com",
        "packages.microsoft.com",
        "acs-mirror.azureedge.net",
        "packages.aks.azure.com",
    ]
    if allow_mcr:
        fqdns += ["mcr.microsoft.com", "*.data.mcr.microsoft.com"]
    app = {
        "ruleType": "ApplicationRule",
        "name": "aks",
        "sourceAddresses": ["10.224.0.0/16"],
        "protocols": [{"protocolType": "Https", "port": 443}],
        "targetFqdns": fqdns,
    }
    arm.add(
        props(
            f"{POLICY}/ruleCollectionGroups/rcg-aks",
            "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
            priority=200,
            ruleCollections=[
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "aks",
                    "priority": 200,
                    "action": {"type": "Allow"},
                    "rules": [app],
                }
            ],
        )
    )
    if private:
        arm.add(props(ZONE, "Microsoft.Network/privateDnsZones"))
        arm.add(
            props(
                f"{ZONE}/virtualNetworkLinks/spoke",
                "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
                virtualNetwork={"id": VNET},
                virtualNetworkLinkState="Completed",
            )
        )
        arm.add(
            props(
                f"{ZONE}/A/prod-abc",
                "Microsoft.Network/privateDnsZones/A",
                aRecords=[{"ipv4Address": "10.224.0.9"}],
            )
        )


def cluster(private: bool = False) -> dict:
    body = az_cluster(fqdn="prod-dns-abc123.hcp.westeurope.azmk8s.invalid")
    body["agentPoolProfiles"][0]["vnetSubnetId"] = SUBNET
    body["networkProfile"] = dict(
        body["networkProfile"], outboundType="userDefinedRouting", loadBalancerProfile=None
    )
    if private:
        body["apiServerAccessProfile"] = {"enablePrivateCluster": True, "privateDnsZone": ZONE}
        body["privateFqdn"] = "prod-abc.privatelink.westeurope.azmk8s.io"
    return body


@pytest.fixture
def k8s(tls):
    with KubeEmulator(certfile=str(tls.server_pem), tokens=(AAD_TOKEN,), **sample_objects()) as emu:
        yield emu


@pytest.fixture
def arm(tls, k8s):
    with ArmEmulator(k8s=k8s, certfile=str(tls.server_pem)) as emu:
        emu.ca_data = tls.ca_data
        yield emu


def live(arm, tls, mode: str = "aad") -> LiveSource:
    s = LiveSettings(
        arm_endpoint=arm.url,
        retries=0,
        k8s_timeout=5.0,
        connect_timeout=3.0,
        probe_timeout=3.0,
        collect_timeout=30.0,
        backoff=0.01,
    )
    return LiveSource(
        "prod",
        kube=KubeAccess(mode),
        azure=TARGET,
        settings=s,
        credential=FakeCredential(),
        connection_verify=str(tls.ca_pem),
    )


def codes(report) -> set[str]:
    return {f.code for f in report.findings}


def test_a_firewall_in_another_subscription_missing_mcr_is_named_live(arm, tls):
    arm.add_cluster(cluster())
    network(arm, allow_mcr=False)
    cid = f"/subscriptions/{SUB}/resourcegroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/prod"
    arm.add_outbound_endpoints(
        cid,
        [
            {
                "category": "azure-container-registry",
                "endpoints": [
                    {
                        "domainName": "mcr.microsoft.com",
                        "endpointDetails": [{"port": 443, "protocol": "Https"}],
                    }
                ],
            }
        ],
    )
    report = run("node-api", live(arm, tls))
    assert {"network", "egressendpoints", "endpointslices"} <= set(report.collected)
    (f,) = [f for f in report.findings if f.code == "nodeapi.firewall-rules-missing"]
    assert "fw-hub" in f.title and "mcr.microsoft.com" in f.title
    assert any(f"--subscription {HUB_SUB}" in (s.command or "") for s in f.remediation)
    assert [h.kind for h in report.path][:4] == ["subnet", "nsg", "route", "firewall"]
    assert arm.count(f"/subscriptions/{HUB_SUB}/providers/Microsoft.Network/azureFirewalls") == 1
    assert arm.count(f"{POLICY}/ruleCollectionGroups") == 1


def test_healthy_path_raises_nothing_live(arm, tls):
    arm.add_cluster(cluster())
    network(arm, allow_mcr=True)
    report = run("node-api", live(arm, tls))
    assert not codes(report) & {
        "nodeapi.firewall-rules-missing",
        "nodeapi.firewall-egress",
        "nodeapi.nsg-blocks-egress",
        "nodeapi.route-blackhole",
    }
    assert {h.verdict for h in report.path} == {"pass"}


@pytest.mark.parametrize("status,word", [(403, "forbidden"), (404, "not found")])
def test_an_unreadable_policy_is_named_and_not_guessed(arm, tls, status, word):
    arm.add_cluster(cluster())
    network(arm, allow_mcr=False)
    arm.fault(f"{POLICY}*", status)  # the policy and its rule collection groups
    arm.fault(f"/subscriptions/{HUB_SUB}/providers/Microsoft.Network/firewallPolicies", status)
    report = run("node-api", live(arm, tls))
    assert "nodeapi.firewall-rules-missing" not in codes(report)
    assert "nodeapi.firewall-egress" in codes(report)  # unverifiable, with the list to allow
    (u,) = [u for u in report.unavailable if "fwp-hub" in u.source]
    assert word in u.reason and "nodeapi.firewall-rules-missing" in u.checks
    assert [h.verdict for h in report.path if h.kind == "firewall"] == ["unknown"]


def test_an_unreadable_route_table_is_named(arm, tls):
    arm.add_cluster(cluster())
    network(arm, allow_mcr=True)
    arm.fault(RT, 403)
    report = run("node-api", live(arm, tls))
    assert any("rt-aks" in u.source and "forbidden" in u.reason for u in report.unavailable)
    assert not codes(report) & {"nodeapi.firewall-rules-missing", "nodeapi.route-blackhole"}


def test_private_zone_not_linked_to_the_hub_dns_live(arm, tls):
    arm.add_cluster(cluster(private=True))
    network(arm, allow_mcr=True, private=True)
    report = run("apiserver", live(arm, tls))
    (f,) = [f for f in report.findings if f.code == "apiserver.private-dns-link"]
    assert "vnet-hub" in f.title
    assert arm.count(f"{ZONE}/virtualNetworkLinks") == 1


def test_kubernetes_only_access_names_the_network_path_unavailable(arm, tls, k8s):
    from diagnostics.collectors.kubeauth import KubeAccess as KA

    src = LiveSource("prod", kube=KA("none"), azure=None)
    snap = src.collect({"network", "egressendpoints"}, ScenarioArgs())
    assert set(snap.missing) == {"network", "egressendpoints"}


def test_capture_writes_only_the_allowlisted_fields_and_reads_back_the_same(arm, tls, tmp_path):
    import json

    from diagnostics.collectors.capture import capture
    from diagnostics.collectors.snapshot_dir import SnapshotSource
    from diagnostics.netpath.parse import FIELDS, resource_type

    arm.add_cluster(cluster())
    network(arm, allow_mcr=False)
    arm.fault(RT.replace("rt-aks", "rt-other"), 403)  # not on the path: never read
    src = live(arm, tls)
    result = capture(src, tmp_path / "snap")
    # diagnostic-settings.json is the control-plane logs' item (tests/test_live_logs.py)
    arm_dir = tmp_path / "snap" / "arm"
    files = sorted(p.name for p in arm_dir.iterdir() if p.name != "diagnostic-settings.json")
    assert files == [
        "azurefirewalls.json",
        "firewallpolicies-rulecollectiongroups.json",
        "firewallpolicies.json",
        "networksecuritygroups.json",
        "routetables.json",
        "virtualnetworks.json",
    ]
    assert result.counts["arm/virtualnetworks.json"] == 2

    def allowed(value, spec) -> bool:
        if isinstance(value, list):
            return all(allowed(v, spec) for v in value)
        if isinstance(value, dict) and isinstance(spec, dict):
            return all(k in spec and allowed(v, spec[k]) for k, v in value.items())
        return True

    for path in (tmp_path / "snap" / "arm").glob("*.json"):
        for body in json.loads(path.read_text()):
            assert allowed(body, FIELDS[resource_type(body)]), (path.name, body)
    live_report = run("node-api", src)
    offline = run("node-api", SnapshotSource(tmp_path / "snap", "prod"))
    for r in (live_report, offline):
        assert "nodeapi.firewall-rules-missing" in codes(r)
    assert [h.to_dict() for h in offline.path] == [h.to_dict() for h in live_report.path]


def test_the_firewalls_public_ip_is_read_and_checked_against_the_ranges(arm, tls):
    pip = f"{HUBNET}/publicIPAddresses/pip-fw-hub"
    body = cluster()
    body["apiServerAccessProfile"] = {"authorizedIpRanges": ["198.51.100.0/24"]}
    arm.add_cluster(body)
    network(arm, allow_mcr=True)
    fw = arm._resources[FW.lower()]
    fw["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"] = {"id": pip}
    arm.add_public_ip(pip, "20.61.9.9")
    report = run("node-api", live(arm, tls))
    (f,) = [f for f in report.findings if f.code == "nodeapi.authorized-ip.egress-excluded"]
    assert "20.61.9.9" in f.title and arm.count(pip) == 1


def test_a_zone_without_the_api_servers_record_live(arm, tls):
    arm.add_cluster(cluster(private=True))
    network(arm, allow_mcr=True, private=True)
    del arm._resources[f"{ZONE}/A/prod-abc".lower()]
    report = run("apiserver", live(arm, tls))
    subjects = {f.subject for f in report.findings if f.code == "apiserver.private-dns-link"}
    assert f"{ZONE}#record:prod-abc" in subjects
    assert arm.count(f"{ZONE}/A") == 1


def test_dns_servers_in_a_vnet_behind_the_hub_are_found(arm, tls):
    shared = f"{HUBNET}/virtualNetworks/vnet-shared"
    arm.add_cluster(cluster(private=True))
    network(arm, allow_mcr=True, private=True)
    hub = arm._resources[HUB.lower()]
    hub["properties"]["virtualNetworkPeerings"] = [
        {"name": "to-shared", "properties": {"remoteVirtualNetwork": {"id": shared}}}
    ]
    arm.add(
        props(
            shared,
            "Microsoft.Network/virtualNetworks",
            subnets=[],
            addressSpace={"addressPrefixes": ["10.0.2.0/24"]},
        )
    )
    hub["properties"]["addressSpace"] = {"addressPrefixes": ["10.0.0.0/23"]}
    report = run("node-api", live(arm, tls))
    (f,) = [f for f in report.findings if f.code == "nodeapi.private-dns-link"]
    assert "vnet-shared" in f.title and arm.count(shared) == 1


def test_apiserver_on_a_public_cluster_reads_no_network_resource(arm, tls):
    arm.add_cluster(cluster())
    network(arm, allow_mcr=True)
    report = run("apiserver", live(arm, tls, "none"))
    assert "privatedns" in report.collected
    assert sum(n for p, n in arm.counts.items() if "microsoft.network" in p) == 0


def test_rule_collection_groups_unreadable_are_named(arm, tls):
    arm.add_cluster(cluster())
    network(arm, allow_mcr=False)
    arm.fault(f"{POLICY}/ruleCollectionGroups", 403)
    report = run("node-api", live(arm, tls))
    assert "nodeapi.firewall-rules-missing" not in codes(report)
    (u,) = [u for u in report.unavailable if "rcg-aks" in u.source]
    assert "forbidden" in u.reason and "fwp-hub" in u.reason


def test_a_base_policy_is_read_within_three_rounds(arm, tls):
    base = f"{HUBNET}/firewallPolicies/fwp-base"
    arm.add_cluster(cluster())
    network(arm, allow_mcr=False)
    arm._resources[POLICY.lower()]["properties"]["basePolicy"] = {"id": base}
    arm.add(
        props(
            base,
            "Microsoft.Network/firewallPolicies",
            ruleCollectionGroups=[{"id": f"{base}/ruleCollectionGroups/rcg-base"}],
        )
    )
    app = {
        "ruleType": "ApplicationRule",
        "name": "aks",
        "sourceAddresses": ["*"],
        "protocols": [{"protocolType": "Https", "port": 443}],
        "fqdnTags": ["AzureKubernetesService"],
    }
    arm.add(
        props(
            f"{base}/ruleCollectionGroups/rcg-base",
            "Microsoft.Network/firewallPolicies/ruleCollectionGroups",
            priority=100,
            ruleCollections=[
                {
                    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
                    "name": "aks",
                    "priority": 100,
                    "action": {"type": "Allow"},
                    "rules": [app],
                }
            ],
        )
    )
    from diagnostics.collectors.armnet import read_network

    src = live(arm, tls, "none")
    info, _ = src.clients.arm().cluster("rg-prod", "prod")
    read = read_network(src.clients.arm(), info)
    assert read.rounds == 3 and not read.network.unreadable
    assert "nodeapi.firewall-rules-missing" not in codes(run("node-api", src))  # base allows it


@pytest.mark.parametrize("fault", [None, 403])
def test_the_firewalls_egress_through_a_nat_gateway_prefix_is_read_live(arm, tls, fault):
    """A NAT gateway on the AzureFirewallSubnet takes the firewall's egress: its public IP
    prefix is read (public_ip_prefixes.get) and checked by containment; a 403 on it leaves the
    egress unverified and named in `unavailable`."""
    fw_subnet, nat = f"{HUB}/subnets/AzureFirewallSubnet", f"{HUBNET}/natGateways/ngw-fw"
    pip, nat_pip = f"{HUBNET}/publicIPAddresses/pip-fw", f"{HUBNET}/publicIPAddresses/pip-ngw"
    prefix, nat_prefix = (
        f"{HUBNET}/publicIPPrefixes/ippre-fw",
        f"{HUBNET}/publicIPPrefixes/ippre-ngw",
    )
    body = cluster()
    body["apiServerAccessProfile"] = {"authorizedIpRanges": ["20.61.0.0/16", "20.50.1.1/32"]}
    arm.add_cluster(body)
    network(arm, allow_mcr=True)
    hub = arm._resources[HUB.lower()]["properties"]
    hub["subnets"] = [
        {
            "id": fw_subnet,
            "name": "AzureFirewallSubnet",
            "properties": {"addressPrefix": "10.0.1.0/26", "natGateway": {"id": nat}},
        }
    ]
    config = arm._resources[FW.lower()]["properties"]["ipConfigurations"][0]["properties"]
    config.update(publicIPAddress={"id": pip}, subnet={"id": fw_subnet})
    arm.add_public_ip(pip, "20.61.9.9")
    arm._resources[pip.lower()]["properties"]["publicIPPrefix"] = {"id": prefix}
    arm.add(props(prefix, "Microsoft.Network/publicIPPrefixes", ipPrefix="20.61.9.8/30"))
    arm.add_nat_gateway(nat, [nat_pip], (nat_prefix,))
    arm.add_public_ip(nat_pip, "20.50.1.1")
    arm.add(props(nat_prefix, "Microsoft.Network/publicIPPrefixes", ipPrefix="20.50.0.0/30"))
    if fault:
        arm.fault(nat_prefix, fault)
    from diagnostics.collectors.armnet import read_network

    src = live(arm, tls)
    info, _ = src.clients.arm().cluster("rg-prod", "prod")
    read = read_network(src.clients.arm(), info)
    assert read.rounds <= 4
    report = run("node-api", src)
    if fault is None:
        assert read.network.ip_prefixes[nat_prefix.lower()] == "20.50.0.0/30"
        (f,) = [f for f in report.findings if f.code == "nodeapi.authorized-ip.egress-excluded"]
        assert "20.50.0.0/30" in f.title and "ngw-fw" in "\n".join(f.evidence)
        fix = next(s.command or "" for s in f.remediation if "update" in (s.command or ""))
        assert "20.61.0.0/16,20.50.1.1/32,20.50.0.0/30" in fix
        assert arm.count(nat_prefix) == 2  # read once per run: read_network above, then run
    else:
        codes_ = codes(report)
        assert "nodeapi.authorized-ip.egress-unverified" in codes_
        assert "nodeapi.authorized-ip.egress-excluded" not in codes_
        (u,) = [u for u in report.unavailable if "ippre-ngw" in u.source]
        assert "403" in u.reason or "forbidden" in u.reason.lower()
        assert "nodeapi.authorized-ip.egress-excluded" in u.checks


def test_appliances_behind_a_load_balancer_egress_is_read_and_captured_live(arm, tls, tmp_path):
    """A route to an internal load balancer in front of NVAs: the load balancers are listed,
    the public one's outbound rule prefix is read, checked against the ranges, and `aksdiag
    capture` writes only the allowlisted fields, which read back to the same report."""
    import json

    from diagnostics.collectors.capture import capture
    from diagnostics.collectors.snapshot_dir import SnapshotSource
    from diagnostics.netpath.parse import FIELDS, resource_type

    ilb, out_lb = f"{HUBNET}/loadBalancers/ilb-nva", f"{HUBNET}/loadBalancers/lb-nva-out"
    prefix = f"{HUBNET}/publicIPPrefixes/ippre-nva"
    nics = [f"{HUBNET}/networkInterfaces/nva-{i}-nic/ipConfigurations/ipconfig1" for i in (0, 1)]
    body = cluster()
    body["apiServerAccessProfile"] = {"authorizedIpRanges": ["20.61.0.0/16"]}
    arm.add_cluster(body)
    network(arm, allow_mcr=True)
    route = arm._resources[RT.lower()]["properties"]["routes"][0]["properties"]
    route["nextHopIpAddress"] = "10.0.2.4"

    def balancer(rid: str, front: dict, outbound: bool) -> dict:
        fe = f"{rid}/frontendIPConfigurations/fe"
        pool = {
            "id": f"{rid}/backendAddressPools/nvas",
            "properties": {"backendIPConfigurations": [{"id": n} for n in nics]},
        }
        rules = [{"name": "out", "properties": {"frontendIPConfigurations": [{"id": fe}]}}]
        return props(
            rid,
            "Microsoft.Network/loadBalancers",
            frontendIPConfigurations=[{"id": fe, "name": "fe", "properties": front}],
            backendAddressPools=[pool],
            outboundRules=rules if outbound else [],
        )

    arm.add(balancer(ilb, {"privateIPAddress": "10.0.2.4"}, False))
    arm.add(balancer(out_lb, {"publicIPPrefix": {"id": prefix}}, True))
    arm.add(props(prefix, "Microsoft.Network/publicIPPrefixes", ipPrefix="20.70.1.0/31"))
    src = live(arm, tls)
    report = run("node-api", src)
    (f,) = [f for f in report.findings if f.code == "nodeapi.authorized-ip.egress-excluded"]
    assert "20.70.1.0/31" in f.title and "lb-nva-out" in "\n".join(f.evidence)
    capture(src, tmp_path / "snap")
    arm_dir = tmp_path / "snap" / "arm"
    assert {"loadbalancers.json", "publicipprefixes.json"} <= {p.name for p in arm_dir.iterdir()}

    def allowed(value, spec) -> bool:
        if isinstance(value, list):
            return all(allowed(v, spec) for v in value)
        if isinstance(value, dict) and isinstance(spec, dict):
            return all(k in spec and allowed(v, spec[k]) for k, v in value.items())
        return True

    for name in ("loadbalancers.json", "publicipprefixes.json"):
        for item in json.loads((arm_dir / name).read_text()):
            assert allowed(item, FIELDS[resource_type(item)]), (name, item)
    offline = run("node-api", SnapshotSource(tmp_path / "snap", "prod"))
    assert {x.code for x in offline.findings} == {x.code for x in report.findings}
    assert [h.to_dict() for h in offline.path] == [h.to_dict() for h in report.path]
