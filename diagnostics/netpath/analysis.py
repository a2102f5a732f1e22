"""The path from the node subnets to each destination nodes need, evaluated hop by hop: the
subnet's NSG and the node NICs' NSGs (both must allow), the route the subnet's table (or the
system routes) picks, and behind a `VirtualAppliance` next hop the Azure Firewall with that
private IP. Whatever could not be read is carried as a reason: no verdict guesses past it."""

from __future__ import annotations

from dataclasses import dataclass, field

from diagnostics.netpath import firewall as fwl
from diagnostics.netpath import nsg as nsgs
from diagnostics.netpath.match import Endpoint
from diagnostics.netpath.model import AzureNetwork, Firewall, Nsg, Subnet, VirtualNetwork
from diagnostics.netpath.routes import RouteChoice, choose
from diagnostics.netpath.targets import Target, required_targets
from diagnostics.snapshot import ClusterInfo, Snapshot


@dataclass
class Flow:
    """One destination from one node subnet, and what each hop made of it."""

    target: Target
    nsg: list[nsgs.NsgVerdict] = field(default_factory=list)
    route: RouteChoice | None = None
    firewall: Firewall | None = None
    fw_verdict: fwl.FwVerdict | None = None
    unknown: list[str] = field(default_factory=list)  # hops that could not be evaluated

    @property
    def nsg_block(self) -> nsgs.NsgVerdict | None:
        return next((v for v in self.nsg if not v.allowed), None)

    @property
    def appliance_ip(self) -> str:
        r = self.route
        return r.route.next_hop_ip if r and r.hop.lower() == "virtualappliance" else ""


@dataclass
class SubnetPath:
    subnet_id: str
    subnet: Subnet | None
    vnet: VirtualNetwork | None
    nsgs: list[Nsg]
    flows: list[Flow]
    unknown: list[str]  # path elements that could not be read, as sentences

    @property
    def name(self) -> str:
        return self.subnet.name if self.subnet else self.subnet_id.rsplit("/", 1)[-1]


def vnet_id_of(subnet_id: str) -> str:
    return subnet_id.split("/subnets/")[0] if "/subnets/" in subnet_id.lower() else ""


def _short(rid: str) -> str:
    return rid.rstrip("/").rsplit("/", 1)[-1]


def node_subnet_ids(c: ClusterInfo, net: AzureNetwork) -> list[str]:
    """The node subnets: from the agent pools, or the AKS-managed VNet in the node RG."""
    ids = list(dict.fromkeys(p.vnet_subnet_id for p in c.agent_pools if p.vnet_subnet_id))
    if ids:
        return ids
    rg = f"/resourcegroups/{c.node_resource_group.lower()}/"
    return [s.id for v in net.vnets.values() if rg in v.id.lower() for s in v.subnets]


def nic_nsgs(c: ClusterInfo, net: AzureNetwork, subnet_id: str, subnet_nsg: str) -> list[Nsg]:
    """NSGs on the node NICs: from NICs read in the subnet, or NSGs ARM says are attached to
    scale set NICs in the node resource group."""
    ids = [
        n.nsg_id
        for n in net.nics.values()
        if n.nsg_id and subnet_id.lower() in (s.lower() for s in n.subnet_ids)
    ]
    rg = f"/resourcegroups/{c.node_resource_group.lower()}/"
    ids += [
        g.id
        for g in net.nsgs.values()
        if any(rg in n.lower() and "/virtualmachinescalesets/" in n.lower() for n in g.nic_ids)
    ]
    out = []
    for rid in dict.fromkeys(i.lower() for i in ids):
        g = net.nsg(rid)
        if g is not None and rid != subnet_nsg.lower():
            out.append(g)
    return out


def peered_space(
    net: AzureNetwork, vnet: VirtualNetwork | None, unknown: list[str]
) -> tuple[str, ...]:
    out: list[str] = []
    for rid in vnet.peerings if vnet else ():
        peer = net.vnet(rid)
        if peer is None:
            unknown.append(f"peered VNet {_short(rid)}: {net.why_missing(rid)}")
            continue
        out += peer.address_space
    return tuple(out)


def dns_servers(snap: Snapshot) -> tuple[str, ...]:
    net, c = snap.network, snap.cluster
    if net is None or c is None:
        return ()
    out: list[str] = []
    for sid in node_subnet_ids(c, net):
        vnet = net.vnet(vnet_id_of(sid))
        out += vnet.dns_servers if vnet else ()
    return tuple(dict.fromkeys(out))


def subnet_paths(snap: Snapshot, api_ips: tuple[str, ...]) -> list[SubnetPath]:
    """Every node subnet's path to every required destination; `api_ips` are the addresses
    `default/kubernetes` points at."""
    c, net = snap.cluster, snap.network
    if c is None or net is None:
        return []
    targets = required_targets(c, api_ips, snap.egress_endpoints, dns_servers(snap))
    pod_subnets = [p.pod_subnet_id for p in c.agent_pools if p.pod_subnet_id]
    ids = dict.fromkeys([*node_subnet_ids(c, net), *pod_subnets])  # pods leave from their own
    return [_subnet_path(c, net, sid, targets) for sid in ids]


def _subnet_path(c: ClusterInfo, net: AzureNetwork, sid: str, targets: list[Target]) -> SubnetPath:
    unknown: list[str] = []
    subnet = net.subnet(sid)
    vnet = net.vnet(vnet_id_of(sid))
    if subnet is None:
        unknown.append(f"node subnet {_short(sid)}: {net.why_missing(sid)}")
        return SubnetPath(sid, None, vnet, [], [], unknown)
    path_nsgs: list[Nsg] = []
    if subnet.nsg_id:
        g = net.nsg(subnet.nsg_id)
        if g is None:
            unknown.append(
                f"NSG {_short(subnet.nsg_id)} on subnet {subnet.name}: "
                f"{net.why_missing(subnet.nsg_id)}"
            )
        else:
            path_nsgs.append(g)
    path_nsgs += nic_nsgs(c, net, sid, subnet.nsg_id)
    table = None
    if subnet.route_table_id:
        table = net.route_table(subnet.route_table_id)
        if table is None:
            unknown.append(
                f"route table {_short(subnet.route_table_id)} on subnet {subnet.name}: "
                f"{net.why_missing(subnet.route_table_id)}"
            )
    own = vnet.address_space if vnet else subnet.prefixes
    peered = peered_space(net, vnet, unknown)
    src = Endpoint(
        f"subnet {subnet.name}", prefixes=subnet.prefixes, tags=frozenset({"virtualnetwork"})
    )
    flows = []
    for t in targets:
        flow = Flow(t)
        if t.api_server and not t.dst.ip and (c.private_cluster or c.vnet_integration):
            # its private address comes from default/kubernetes, which was not read: no guess
            flow.unknown.append("route")
            flows.append(flow)
            continue
        flow.nsg = [nsgs.evaluate(g, "Outbound", src, t.dst, t.protocol, t.port) for g in path_nsgs]
        if subnet.route_table_id and table is None:
            flow.unknown.append("route")
        else:
            flow.route = choose(table, own, peered, t.dst)
        ip = flow.appliance_ip
        if ip:
            fw = net.firewall_at(ip)
            flow.firewall = fw
            if fw is None:
                flow.unknown.append(f"appliance {ip}")
            else:
                colls = fwl.ordered_collections(net, fw)
                if isinstance(colls, str):
                    flow.unknown.append(
                        colls
                    )  # "firewall policy P: why" / "rule collection group G: why"
                else:
                    flow.fw_verdict = fwl.evaluate(colls, src, t.dst, t.protocol, t.port)
        out_unknown = [u for u in flow.unknown if u.startswith(("firewall ", "rule collection"))]
        for u in out_unknown:
            if u not in unknown:
                unknown.append(u)
        flows.append(flow)
    return SubnetPath(sid, subnet, vnet, path_nsgs, flows, unknown)
