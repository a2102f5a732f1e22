"""Where an Azure Firewall sends from, against the API server's authorized IP ranges, from
snapshot folders in the az flattened and the ARM REST shapes: a public IP created from a public
IP prefix (the fix allows the prefix's CIDR), a NAT gateway on the AzureFirewallSubnet with
public IPs and public IP prefixes (prefix containment), and what cannot be resolved (unverified,
named in `unavailable`)."""

from __future__ import annotations

from typing import Any

import pytest
from test_netpath import (
    ALL_AKS,
    HUB,
    OTHER_SUB,
    PIP,
    RT,
    cluster,
    codes,
    fw_arm,
    group,
    report,
    route_table,
    snap,
    subnet,
    the,
    vnet,
)

HUBNET = f"/subscriptions/{OTHER_SUB}/resourceGroups/rg-hub/providers/Microsoft.Network"
FW_SUBNET = f"{HUB}/subnets/AzureFirewallSubnet"
PREFIX = f"{HUBNET}/publicIPPrefixes/ippre-fw"
NAT = f"{HUBNET}/natGateways/ngw-fw"
NAT_PIP = f"{HUBNET}/publicIPAddresses/pip-ngw"
NAT_PREFIX = f"{HUBNET}/publicIPPrefixes/ippre-ngw"


def pip(rid: str = PIP, address: str | None = "203.0.113.200", prefix: str | None = None):
    d: dict[str, Any] = {"id": rid, "name": rid.rsplit("/", 1)[-1]}
    d["type"] = "Microsoft.Network/publicIPAddresses"
    if address:
        d["ipAddress"] = address
    if prefix:
        d["publicIPPrefix"] = {"id": prefix}
    return d


def ip_prefix(rid: str = PREFIX, cidr: str = "203.0.113.192/28") -> dict[str, Any]:
    return {
        "id": rid,
        "name": rid.rsplit("/", 1)[-1],
        "type": "Microsoft.Network/publicIPPrefixes",
        "ipPrefix": cidr,
    }


def nat(pips=(NAT_PIP,), prefixes=(NAT_PREFIX,)) -> dict[str, Any]:
    return {
        "id": NAT,
        "name": "ngw-fw",
        "type": "Microsoft.Network/natGateways",
        "publicIpAddresses": [{"id": p} for p in pips],
        "publicIpPrefixes": [{"id": p} for p in prefixes],
    }


def arm_with(extra: list[dict[str, Any]], *, nat_on_subnet: bool, shape: str) -> list:
    arm = fw_arm([group([("aks", 100, "Allow", [ALL_AKS])])])
    fw_subnet = subnet("10.0.1.0/26", rid=FW_SUBNET)
    if nat_on_subnet:
        fw_subnet["natGateway"] = {"id": NAT}
    arm[1] = vnet(HUB, ("10.0.0.0/16",), [fw_subnet])
    config: dict[str, Any] = {
        "name": "ip",
        "privateIPAddress": "10.0.1.4",
        "publicIPAddress": {"id": PIP},
        "subnet": {"id": FW_SUBNET},
    }
    if shape == "rest":  # sub-resources carry a properties wrapper too
        config = {"name": "ip", "properties": {k: v for k, v in config.items() if k != "name"}}
    arm[3]["ipConfigurations"] = [config]
    return arm + extra


def udr(ranges: list[str]) -> dict[str, Any]:
    return cluster(
        outboundType="userDefinedRouting", apiServerAccessProfile={"authorizedIpRanges": ranges}
    )


EXCLUDED, UNVERIFIED = (
    "nodeapi.authorized-ip.egress-excluded",
    "nodeapi.authorized-ip.egress-unverified",
)
CASES = [
    # (case, arm extra, NAT on the firewall subnet, ranges, code or None, text in title/fix)
    (
        "a firewall IP from a prefix, outside the ranges: the fix allows the prefix",
        [pip(prefix=PREFIX), ip_prefix()],
        False,
        ["198.51.100.0/24"],
        EXCLUDED,
        "203.0.113.192/28",
    ),
    (
        "a firewall IP from a prefix inside the ranges",
        [pip(prefix=PREFIX), ip_prefix()],
        False,
        ["203.0.113.0/24"],
        None,
        "",
    ),
    (
        "a firewall IP without an address yet: its prefix, contained in a range",
        [pip(address=None, prefix=PREFIX), ip_prefix()],
        False,
        ["203.0.113.128/25"],
        None,
        "",
    ),
    (
        "a firewall IP without an address yet: its prefix, only partly in a range",
        [pip(address=None, prefix=PREFIX), ip_prefix()],
        False,
        ["203.0.113.192/29"],
        EXCLUDED,
        "203.0.113.192/28",
    ),
    (
        "a NAT gateway on the firewall subnet takes egress: its prefix outside the ranges",
        [pip(), pip(NAT_PIP, "20.50.1.1"), ip_prefix(NAT_PREFIX, "20.50.0.0/30"), nat()],
        True,
        ["203.0.113.0/24", "20.50.1.1/32"],
        EXCLUDED,
        "20.50.0.0/30",
    ),
    (
        "a NAT gateway on the firewall subnet, its IP and prefix in the ranges",
        [pip(), pip(NAT_PIP, "20.50.1.1"), ip_prefix(NAT_PREFIX, "20.50.0.0/30"), nat()],
        True,
        ["20.50.0.0/16"],
        None,
        "",
    ),
    (
        "the NAT gateway's prefix is not in the data",
        [pip(), pip(NAT_PIP, "20.50.1.1"), nat()],
        True,
        ["20.50.0.0/16"],
        UNVERIFIED,
        "ippre-ngw",
    ),
    (
        "a firewall IP without an address whose prefix is not in the data",
        [pip(address=None, prefix=PREFIX)],
        False,
        ["203.0.113.0/24"],
        UNVERIFIED,
        "ippre-fw",
    ),
]


@pytest.mark.parametrize("shape", ["az", "rest"])
@pytest.mark.parametrize(
    "case,extra,on_subnet,ranges,raised,text", CASES, ids=[c[0] for c in CASES]
)
def test_firewall_egress_sources(tmp_path, case, extra, on_subnet, ranges, raised, text, shape):
    arm = arm_with(extra, nat_on_subnet=on_subnet, shape=shape)
    r = report(snap(tmp_path, arm, c=udr(ranges), shape=shape))
    found = codes(r) & {EXCLUDED, UNVERIFIED}
    assert found == ({raised} if raised else set()), case
    if raised == EXCLUDED:
        f = the(r, EXCLUDED)
        fix = next(s.command for s in f.remediation if s.command and "update" in s.command)
        assert text in fix and all(x in fix for x in ranges)
        if on_subnet:
            assert "NAT gateway ngw-fw on fw-hub's subnet" in "\n".join(f.evidence)
        else:
            assert any(f"public IP prefix ippre-fw ({text})" in e for e in f.evidence)
    if raised == UNVERIFIED:
        (u,) = [u for u in r.unavailable if u.source.startswith("network path: egress IP")]
        assert text in f"{u.source}: {u.reason}" and EXCLUDED in u.checks
        f = the(r, UNVERIFIED)
        assert "could not be resolved" in "\n".join(f.evidence)
        assert any(text in (s.command or "") for s in f.remediation)  # the az that reads it


def test_an_unread_firewall_subnet_keeps_the_firewalls_own_ips(tmp_path):
    """A hand-made snapshot without the hub VNet: the firewall's public IPs, as before."""
    arm = arm_with([pip()], nat_on_subnet=False, shape="az")
    del arm[1]
    r = report(snap(tmp_path, arm, c=udr(["198.51.100.0/24"])))
    assert "203.0.113.200" in the(r, EXCLUDED).title


# ---------------------------------------------------------------- appliances behind load balancers
NVA_IP = "10.0.2.4"
ILB = f"{HUBNET}/loadBalancers/ilb-nva"
OUT_LB = f"{HUBNET}/loadBalancers/lb-nva-out"
NVA_NICS = [f"{HUBNET}/networkInterfaces/nva-{i}-nic/ipConfigurations/ipconfig1" for i in (0, 1)]
LB_PIP = f"{HUBNET}/publicIPAddresses/pip-nva-out"
LB_PREFIX = f"{HUBNET}/publicIPPrefixes/ippre-nva-out"


def lb(rid: str, frontends: list[dict[str, Any]], outbound: bool, shape: str) -> dict[str, Any]:
    fronts = [{"id": f"{rid}/frontendIPConfigurations/fe{i}", **f} for i, f in enumerate(frontends)]
    pool: dict[str, Any] = {"id": f"{rid}/backendAddressPools/nvas"}
    pool["backendIPConfigurations"] = [{"id": n} for n in NVA_NICS]
    rules = [{"name": "out", "frontendIPConfigurations": [{"id": f["id"]} for f in fronts]}]
    if shape == "rest":  # sub-resources carry a properties wrapper too
        fronts = [
            {"id": f["id"], "properties": {k: v for k, v in f.items() if k != "id"}} for f in fronts
        ]
    d: dict[str, Any] = {
        "id": rid,
        "name": rid.rsplit("/", 1)[-1],
        "type": "Microsoft.Network/loadBalancers",
        "frontendIPConfigurations": fronts,
        "backendAddressPools": [pool],
    }
    if outbound:
        d["outboundRules"] = rules
    return d


def nva_arm(shape: str, out_front: dict[str, Any] | None, extra: list) -> list[dict[str, Any]]:
    arm = [
        vnet(subnets=[subnet(rt=RT)], peers=[HUB]),
        vnet(HUB, ("10.0.0.0/16",), []),
        route_table(("default", "0.0.0.0/0", "VirtualAppliance", NVA_IP)),
        lb(ILB, [{"privateIPAddress": NVA_IP}], False, shape),
    ]
    if out_front is not None:
        arm.append(lb(OUT_LB, [out_front], True, shape))
    return arm + extra


LB_CASES = [
    # (case, outbound frontend, arm extra, ranges, code or None, text)
    (
        "the outbound rule's public IP is outside the ranges",
        {"publicIPAddress": {"id": LB_PIP}},
        [pip(LB_PIP, "20.70.0.5")],
        ["198.51.100.0/24"],
        EXCLUDED,
        "20.70.0.5/32",
    ),
    (
        "the outbound rule's public IP prefix is inside the ranges",
        {"publicIPPrefix": {"id": LB_PREFIX}},
        [ip_prefix(LB_PREFIX, "20.70.1.0/31")],
        ["20.70.0.0/16"],
        None,
        "",
    ),
    (
        "the outbound rule's public IP prefix straddles the ranges",
        {"publicIPPrefix": {"id": LB_PREFIX}},
        [ip_prefix(LB_PREFIX, "20.70.1.0/31")],
        ["20.70.1.1/32"],
        EXCLUDED,
        "20.70.1.0/31",
    ),
    (
        "no public load balancer holds the appliances",
        None,
        [],
        ["20.70.0.0/16"],
        UNVERIFIED,
        "ilb-nva",
    ),
]


@pytest.mark.parametrize("shape", ["az", "rest"])
@pytest.mark.parametrize(
    "case,front,extra,ranges,raised,text", LB_CASES, ids=[c[0] for c in LB_CASES]
)
def test_appliances_behind_a_load_balancer(
    tmp_path, case, front, extra, ranges, raised, text, shape
):
    r = report(snap(tmp_path, nva_arm(shape, front, extra), c=udr(ranges), shape=shape))
    assert codes(r) & {EXCLUDED, UNVERIFIED} == ({raised} if raised else set()), case
    assert "nodeapi.firewall-egress" in codes(r)  # its rules stay unverifiable
    if raised == EXCLUDED:
        f = the(r, EXCLUDED)
        fix = next(s.command or "" for s in f.remediation if "update" in (s.command or ""))
        assert text in fix and "load balancer lb-nva-out" in "\n".join(f.evidence)
    if raised == UNVERIFIED:
        (u,) = [u for u in r.unavailable if u.source.startswith("network path: egress IP")]
        assert text in u.source and EXCLUDED in u.checks
