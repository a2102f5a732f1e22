"""Private DNS for a private cluster: which zone holds the API server's name, which VNets must
be linked to it, and whether they are. With Azure DNS (no `dhcpOptions.dnsServers`) the node
VNet resolves through its own links; with custom DNS servers, the VNet that hosts each server
(found by address space: the node VNet, its peers, any VNet read) must be linked, and the
servers must forward to 168.63.129.16 (not visible in ARM). `privateDNSZone: none` needs no
link (the name is in public DNS)."""

from __future__ import annotations

from dataclasses import dataclass, field

from diagnostics.netpath.analysis import node_subnet_ids, vnet_id_of
from diagnostics.netpath.match import contains
from diagnostics.netpath.model import AzureNetwork, DnsZone, VirtualNetwork
from diagnostics.snapshot import ClusterInfo


@dataclass
class Need:
    vnet_id: str
    why: str
    linked: bool


@dataclass
class DnsLinks:
    zone_id: str
    zone_name: str
    zone: DnsZone | None
    needs: list[Need] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    dns_servers: tuple[str, ...] = ()
    missing_record: str = (
        ""  # the API server's name in the zone, when the zone has no A record for it
    )

    @property
    def unlinked(self) -> list[Need]:
        return [n for n in self.needs if not n.linked]


def _zone(c: ClusterInfo, net: AzureNetwork) -> tuple[str, str, DnsZone | None]:
    """(zone id or '', zone name, the zone if read)."""
    setting = c.private_dns_zone.strip()
    if "/privatednszones/" in setting.lower():
        return setting, setting.rsplit("/", 1)[-1], net.zones.get(setting.lower())
    name = c.private_fqdn.split(".", 1)[1] if "." in c.private_fqdn else ""
    rg = f"/resourcegroups/{c.node_resource_group.lower()}/"
    fqdn = c.private_fqdn.lower()
    # system zone: AKS keeps it in the node resource group; its name ends the private FQDN
    found = [
        z for z in net.zones.values() if rg in z.id.lower() and fqdn.endswith("." + z.name.lower())
    ]
    if found:
        z = max(found, key=lambda z: len(z.name))
        return z.id, z.name, z
    return "", name, None


def host_vnet(ip: str, net: AzureNetwork, near: list[VirtualNetwork]) -> VirtualNetwork | None:
    for v in [*near, *net.vnets.values()]:
        if contains(v.address_space, ip):
            return v
    return None


def evaluate(c: ClusterInfo, net: AzureNetwork) -> DnsLinks | None:
    """None when no link is needed: a public cluster, or `privateDNSZone: none`."""
    if not c.private_cluster or c.private_dns_zone.strip().lower() == "none":
        return None
    zone_id, zone_name, zone = _zone(c, net)
    out = DnsLinks(zone_id, zone_name, zone)
    if zone is None:
        why = net.why_missing(zone_id) if zone_id else "not in the data read"
        out.unknown.append(f"private DNS zone {zone_name or '(system)'}: {why}")
        return out
    records = net.records_of(zone.id)
    fqdn = c.private_fqdn.lower().rstrip(".")
    if records is not None and fqdn.endswith("." + zone.name.lower()):
        label = fqdn[: -len(zone.name) - 1]
        if label not in records:
            out.missing_record = label
    linked = {link.vnet_id.lower() for link in net.links_of(zone.id)}
    for sid in node_subnet_ids(c, net):
        vid = vnet_id_of(sid)
        vnet = net.vnet(vid)
        if vnet is None:
            out.unknown.append(f"node VNet {vid.rsplit('/', 1)[-1]}: {net.why_missing(vid)}")
            continue
        if not vnet.dns_servers:
            if all(n.vnet_id.lower() != vnet.id.lower() for n in out.needs):
                out.needs.append(
                    Need(
                        vnet.id, f"node VNet {vnet.name} uses Azure DNS", vnet.id.lower() in linked
                    )
                )
            continue
        out.dns_servers += vnet.dns_servers
        peers = [p for r in vnet.peerings if (p := net.vnet(r)) is not None]
        for ip in vnet.dns_servers:
            host = host_vnet(ip, net, [vnet, *peers])
            if host is None:
                out.unknown.append(f"the VNet hosting DNS server {ip} (not among the VNets read)")
                continue
            if all(n.vnet_id.lower() != host.id.lower() for n in out.needs):
                out.needs.append(
                    Need(
                        host.id,
                        f"VNet {host.name} hosts custom DNS server {ip}",
                        host.id.lower() in linked,
                    )
                )
    return out
