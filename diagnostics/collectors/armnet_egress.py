"""The live reads of where traffic leaves Azure through the appliance on the nodes' path (for
the API server's authorized IP ranges), as tasks of `armnet`'s reader: an Azure Firewall's public
IPs and the public IP prefixes they come from, a NAT gateway on its subnet with its public IPs and
prefixes, and the public load balancer's outbound frontends behind an internal one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from diagnostics.netpath.analysis import vnet_id_of
from diagnostics.netpath.egress import internal_lb_at
from diagnostics.netpath.model import Firewall

if TYPE_CHECKING:
    from diagnostics.collectors.armnet import _Reader


def egress_tasks(r: _Reader, fw: Firewall, on_path: bool) -> list[Callable[[], None] | None]:
    """What the firewall sends Internet traffic from: the public IP prefixes its public IPs
    come from, and a NAT gateway on its subnet with that gateway's public IPs and prefixes
    (the subnet is read on its own only for a firewall known to be on the path whose VNet
    was not read)."""
    net = r.out.network
    out: list[Callable[[], None] | None] = []
    pips = list(fw.public_ip_ids)
    prefixes: list[str] = []
    for sid in fw.subnet_ids:
        subnet = net.subnet(sid)
        if subnet is None:
            if on_path and net.vnet(vnet_id_of(sid)) is None:
                out.append(_subnet_task(r, sid))
            continue
        nat_id = subnet.nat_gateway_id
        nat = net.nat_gateways.get(nat_id.lower()) if nat_id else None
        if nat_id and nat is None:
            out.append(
                r._get(nat_id, "NAT gateway", lambda n, rg, name: n.nat_gateways.get(rg, name))
            )
        elif nat is not None:
            pips += nat.public_ip_ids
            prefixes += nat.prefix_ids
    for pip in pips:
        if pip.lower() not in net.public_ips:
            out.append(
                r._get(pip, "public IP", lambda n, rg, name: n.public_ip_addresses.get(rg, name))
            )
        elif prefix := net.ip_prefix_of.get(pip.lower()):
            prefixes.append(prefix)
    for prefix in prefixes:
        if prefix.lower() not in net.ip_prefixes:
            out.append(
                r._get(
                    prefix,
                    "public IP prefix",
                    lambda n, rg, name: n.public_ip_prefixes.get(rg, name),
                )
            )
    return out


def lb_egress_tasks(r: _Reader, ip: str) -> list[Callable[[], None] | None]:
    """The public IPs and prefixes that appliances behind the internal load balancer at `ip`
    leave from (the outbound rules of the public load balancer holding the same NICs)."""
    net = r.out.network
    ilb = internal_lb_at(net, ip)
    if ilb is None:
        return []
    out: list[Callable[[], None] | None] = []
    for lb in net.balancers.values():
        if (
            lb is ilb
            or not lb.outbound_frontends
            or not set(lb.backend_nics) & set(ilb.backend_nics)
        ):
            continue
        outbound = {f.lower() for f in lb.outbound_frontends}
        for front in lb.frontends:
            if front.id.lower() not in outbound:
                continue
            pip, prefix = front.public_ip_id, front.prefix_id
            if pip and pip.lower() not in net.public_ips:
                out.append(
                    r._get(
                        pip,
                        "public IP",
                        lambda n, rg, name: n.public_ip_addresses.get(rg, name),
                    )
                )
            elif pip:
                prefix = net.ip_prefix_of.get(pip.lower(), "")
            if prefix and prefix.lower() not in net.ip_prefixes:
                out.append(
                    r._get(
                        prefix,
                        "public IP prefix",
                        lambda n, rg, name: n.public_ip_prefixes.get(rg, name),
                    )
                )
    return out


def _subnet_task(r: _Reader, sid: str) -> Callable[[], None] | None:
    from diagnostics.collectors.armnet import _parts  # armnet imports this module

    p = _parts(sid)
    rg, vnet, name = (
        p.get("resourcegroups", ""),
        p.get("virtualnetworks", ""),
        p.get("subnets", ""),
    )
    net = r._net(sid)
    return r._task(sid, f"subnet {name}", lambda: net.subnets.get(rg, vnet, name))
