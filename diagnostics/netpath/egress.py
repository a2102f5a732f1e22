"""Where traffic leaves Azure when it goes through an Azure Firewall: the source addresses the
public API server sees, for its authorized IP ranges.

A NAT gateway on the firewall's subnet (AzureFirewallSubnet) takes all of its outbound Internet
traffic: its public IPs and public IP prefixes are the sources. Otherwise the firewall's own
public IPs are (a Virtual WAN hub firewall lists them inline). A public IP created from a public
IP prefix carries the prefix's CIDR along, so a fix can allow the whole prefix. What cannot be
resolved is named in `unknown` (a sentence starting with "egress IP"), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from diagnostics.netpath.model import AzureNetwork, Firewall, LoadBalancer


@dataclass(frozen=True, slots=True)
class EgressSource:
    address: str  # an IP, or a CIDR when only the prefix is known (or it is a NAT gateway prefix)
    resource_id: str  # the public IP (or public IP prefix) resource, or a label
    prefix: str = ""  # the public IP prefix's CIDR it comes from, when known
    prefix_id: str = ""

    @property
    def name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class FirewallEgress:
    via: str  # "Azure Firewall NAME" or "NAT gateway NAME on Azure Firewall NAME's subnet"
    sources: list[EgressSource] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # ids of what to look up by hand


def _short(rid: str) -> str:
    return rid.rstrip("/").rsplit("/", 1)[-1]


def _pip(
    net: AzureNetwork, rid: str, known: dict[str, str], out: FirewallEgress, owner: str
) -> None:
    key = rid.lower()
    address = net.public_ips.get(key) or known.get(key, "")
    prefix_id = net.ip_prefix_of.get(key, "")
    cidr = net.ip_prefixes.get(prefix_id.lower(), "") if prefix_id else ""
    if address:
        out.sources.append(EgressSource(address, rid, cidr, prefix_id))
    elif cidr:  # no address allocated (yet): it will come from the prefix
        out.sources.append(EgressSource(cidr, rid, cidr, prefix_id))
    else:
        if prefix_id:
            why = f"its public IP prefix {_short(prefix_id)}: {net.why_missing(prefix_id)}"
        elif _read(net, rid):
            why = "no address allocated"
        else:
            why = net.why_missing(rid)
        out.unknown.append(f"egress IP {_short(rid)} of {owner}: {why}")
        out.unresolved.append(prefix_id or rid)


def _read(net: AzureNetwork, rid: str) -> bool:
    return rid.lower() in net.ip_prefix_of or rid.lower() in net.public_ips


def _prefix(net: AzureNetwork, rid: str, out: FirewallEgress, owner: str) -> None:
    cidr = net.ip_prefixes.get(rid.lower(), "")
    if cidr:
        out.sources.append(EgressSource(cidr, rid, cidr, rid))
    else:
        out.unknown.append(f"egress IP prefix {_short(rid)} of {owner}: {net.why_missing(rid)}")
        out.unresolved.append(rid)


def firewall_egress(
    net: AzureNetwork, fw: Firewall, known: dict[str, str] | None = None
) -> FirewallEgress:
    """The addresses `fw` sends Internet traffic from; `known`: public IP id (lowercased) ->
    address from elsewhere (publicips.json)."""
    known = known or {}
    for sid in fw.subnet_ids:
        subnet = net.subnet(sid)
        if subnet is None or not subnet.nat_gateway_id:
            continue  # an unread subnet: its firewall's own public IPs, as Azure shows them
        nat = net.nat_gateways.get(subnet.nat_gateway_id.lower())
        owner = f"NAT gateway {_short(subnet.nat_gateway_id)} on {fw.name}'s subnet"
        out = FirewallEgress(owner)
        if nat is None:
            out.unknown.append(f"egress IP of {owner}: {net.why_missing(subnet.nat_gateway_id)}")
            out.unresolved.append(subnet.nat_gateway_id)
            return out
        for rid in nat.public_ip_ids:
            _pip(net, rid, known, out, owner)
        for rid in nat.prefix_ids:
            _prefix(net, rid, out, owner)
        return out
    out = FirewallEgress(f"Azure Firewall {fw.name}")
    out.sources += [EgressSource(ip, f"{fw.name} (Virtual WAN hub)") for ip in fw.public_ips]
    for rid in fw.public_ip_ids:
        _pip(net, rid, known, out, f"Azure Firewall {fw.name}")
    return out


def internal_lb_at(net: AzureNetwork, ip: str) -> LoadBalancer | None:
    """The load balancer whose frontend private IP is `ip` (appliances behind it)."""
    return next(
        (lb for lb in net.balancers.values() if any(f.private_ip == ip for f in lb.frontends)),
        None,
    )


def appliance_egress(net: AzureNetwork, ip: str) -> FirewallEgress | None:
    """Where appliances behind an internal load balancer (its frontend private IP `ip` is the
    next hop) send from: the public load balancer whose backend pools hold the same NICs, through
    its outbound rules' frontends (public IPs or public IP prefixes). None when no load balancer
    read has `ip` as a frontend."""
    ilb = internal_lb_at(net, ip)
    if ilb is None:
        return None
    nics = set(ilb.backend_nics)
    public = next(
        (
            lb
            for lb in net.balancers.values()
            if lb.outbound_frontends and lb is not ilb and nics & set(lb.backend_nics)
        ),
        None,
    )
    if public is None:
        out = FirewallEgress(f"the appliances behind load balancer {ilb.name}")
        out.unknown.append(
            f"egress IP behind load balancer {ilb.name}: no public load balancer with "
            "outbound rules read holds its backend NICs (their own public IPs are not read)"
        )
        return out
    owner = f"load balancer {public.name} (outbound rules, for the appliances behind {ilb.name})"
    out = FirewallEgress(owner)
    by_id = {f.id.lower(): f for f in public.frontends}
    for fid in dict.fromkeys(x.lower() for x in public.outbound_frontends):
        front = by_id.get(fid)
        if front is None:
            out.unknown.append(f"egress IP {_short(fid)} of {owner}: not in its body")
        elif front.public_ip_id:
            _pip(net, front.public_ip_id, {}, out, owner)
        elif front.prefix_id:
            _prefix(net, front.prefix_id, out, owner)
    return out
