"""The Azure network path as plain data: VNets and subnets, NSGs, NICs, route tables, Azure
Firewalls and firewall policies, private DNS zones and their links, and the cluster's egress
endpoints. `diagnostics.netpath.parse` builds these from ARM JSON (live or `arm/*.json`);
the evaluators in this package and the checks only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class NsgRule:
    name: str
    priority: int
    direction: str  # Inbound / Outbound
    access: str  # Allow / Deny
    protocol: str  # Tcp, Udp, Icmp, *, ...
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    destination_ports: tuple[str, ...]
    default: bool = False  # one of Azure's default rules (65000-65500)


@dataclass(frozen=True, slots=True)
class Nsg:
    id: str
    name: str
    rules: tuple[NsgRule, ...]
    nic_ids: tuple[str, ...] = ()  # network interfaces it is attached to (ARM lists them)


@dataclass(frozen=True, slots=True)
class Subnet:
    id: str
    name: str
    prefixes: tuple[str, ...]
    nsg_id: str = ""
    route_table_id: str = ""
    nat_gateway_id: str = ""


@dataclass(frozen=True, slots=True)
class VirtualNetwork:
    id: str
    name: str
    address_space: tuple[str, ...]
    dns_servers: tuple[str, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    peerings: tuple[str, ...] = ()  # remote VNet ids


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    prefix: str  # a CIDR or a service tag
    next_hop_type: str  # VirtualAppliance, Internet, None, VnetLocal, VirtualNetworkGateway
    next_hop_ip: str = ""


@dataclass(frozen=True, slots=True)
class RouteTable:
    id: str
    name: str
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class Nic:
    id: str
    name: str
    nsg_id: str
    subnet_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FwRule:
    kind: str  # application / network
    name: str
    sources: tuple[str, ...]  # addresses; "ipgroup:ID" for IP groups
    protocols: tuple[str, ...]  # application: "Https:443"; network: "TCP", "UDP", "Any"
    destinations: tuple[str, ...] = ()  # network: addresses, CIDRs, service tags
    ports: tuple[str, ...] = ()  # network: destination ports
    fqdns: tuple[str, ...] = ()  # application: target FQDNs; network: destination FQDNs
    fqdn_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FwCollection:
    name: str
    priority: int
    action: str  # Allow / Deny
    kind: str  # application / network / nat
    rules: tuple[FwRule, ...]
    group: str = ""  # rule collection group name ("" for classic rules)
    group_priority: int = 0
    policy: str = ""  # the firewall policy's name ("" for classic rules)


@dataclass(frozen=True, slots=True)
class Firewall:
    id: str
    name: str
    private_ips: tuple[str, ...]
    policy_id: str = ""
    collections: tuple[FwCollection, ...] = ()  # classic rule collections
    hub_id: str = ""  # Virtual WAN hub, for secured hubs
    public_ip_ids: tuple[str, ...] = ()  # public IP resources of its IP configurations
    public_ips: tuple[str, ...] = ()  # addresses given inline (a Virtual WAN hub firewall)
    subnet_ids: tuple[str, ...] = ()  # AzureFirewallSubnet (a NAT gateway there takes egress)


@dataclass(frozen=True, slots=True)
class NatGateway:
    id: str
    name: str
    public_ip_ids: tuple[str, ...] = ()
    prefix_ids: tuple[str, ...] = ()  # public IP prefixes: egress from any address in them


@dataclass(frozen=True, slots=True)
class LbFrontend:
    id: str
    private_ip: str = ""
    public_ip_id: str = ""
    prefix_id: str = ""


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    """A load balancer: an internal one in front of appliances (its frontend private IP is a
    `VirtualAppliance` next hop), or a public one whose outbound rules SNAT their traffic."""

    id: str
    name: str
    frontends: tuple[LbFrontend, ...] = ()
    backend_nics: tuple[str, ...] = ()  # NIC ids behind its backend pools
    outbound_frontends: tuple[str, ...] = ()  # frontend ids its outbound rules send from


@dataclass(frozen=True, slots=True)
class FirewallPolicy:
    id: str
    name: str
    base_policy_id: str = ""
    group_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleCollectionGroup:
    id: str
    name: str
    priority: int
    collections: tuple[FwCollection, ...]

    @property
    def policy_id(self) -> str:
        return self.id.lower().split("/rulecollectiongroups/")[0]


@dataclass(frozen=True, slots=True)
class DnsZone:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class VnetLink:
    id: str
    name: str
    vnet_id: str
    state: str = ""

    @property
    def zone_id(self) -> str:
        return self.id.lower().split("/virtualnetworklinks/")[0]


@dataclass(frozen=True, slots=True)
class EgressEndpoint:
    """One destination from `az aks egress-endpoints list` (outboundNetworkDependenciesEndpoints)."""

    category: str
    fqdn: str
    port: int
    protocol: str  # Https, Http, TCP, UDP
    description: str = ""


def _k(rid: str) -> str:
    return rid.lower().rstrip("/")


@dataclass
class AzureNetwork:
    """Every network resource read, by lowercased id, and what could not be read (id or what
    -> why). A path element missing here is unknown, never assumed."""

    vnets: dict[str, VirtualNetwork] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    nsgs: dict[str, Nsg] = field(default_factory=dict)
    nics: dict[str, Nic] = field(default_factory=dict)
    route_tables: dict[str, RouteTable] = field(default_factory=dict)
    firewalls: dict[str, Firewall] = field(default_factory=dict)
    policies: dict[str, FirewallPolicy] = field(default_factory=dict)
    groups: dict[str, RuleCollectionGroup] = field(default_factory=dict)
    zones: dict[str, DnsZone] = field(default_factory=dict)
    links: dict[str, VnetLink] = field(default_factory=dict)
    public_ips: dict[str, str] = field(default_factory=dict)  # public IP id -> address
    ip_prefix_of: dict[str, str] = field(default_factory=dict)  # public IP id -> its prefix id
    ip_prefixes: dict[str, str] = field(default_factory=dict)  # public IP prefix id -> CIDR
    nat_gateways: dict[str, NatGateway] = field(default_factory=dict)
    balancers: dict[str, LoadBalancer] = field(default_factory=dict)
    a_records: dict[str, dict[str, tuple[str, ...]]] = field(
        default_factory=dict
    )  # zone -> name -> IPs
    unreadable: dict[str, str] = field(default_factory=dict)

    def add_vnet(self, vnet: VirtualNetwork) -> None:
        self.vnets[_k(vnet.id)] = vnet
        for s in vnet.subnets:
            if _k(s.id) not in self.subnets:  # a subnet read on its own wins
                self.subnets[_k(s.id)] = s

    def subnet(self, rid: str) -> Subnet | None:
        return self.subnets.get(_k(rid))

    def vnet(self, rid: str) -> VirtualNetwork | None:
        return self.vnets.get(_k(rid))

    def nsg(self, rid: str) -> Nsg | None:
        return self.nsgs.get(_k(rid))

    def route_table(self, rid: str) -> RouteTable | None:
        return self.route_tables.get(_k(rid))

    def why_missing(self, rid: str) -> str:
        """Why `rid` is not here: the read error (of it, or of the list it comes from), or
        'not in the data'."""
        key = _k(rid)
        return (
            self.unreadable.get(key)
            or self.unreadable.get(key.rsplit("/", 1)[0])
            or "not in the data read (arm/ holds no such resource)"
        )

    def firewall_at(self, ip: str) -> Firewall | None:
        """The Azure Firewall whose private IP (or Virtual WAN hub private IP) is `ip`."""
        return next((f for f in self.firewalls.values() if ip in f.private_ips), None)

    def policy_chain(self, policy_id: str) -> list[FirewallPolicy] | str:
        """The policy and its parents, base first; or why one of them is unknown."""
        chain: list[FirewallPolicy] = []
        rid = policy_id
        while rid:
            policy = self.policies.get(_k(rid))
            if policy is None:
                return f"firewall policy {rid.rsplit('/', 1)[-1]}: {self.why_missing(rid)}"
            if policy in chain:
                break
            chain.insert(0, policy)
            rid = policy.base_policy_id
        return chain

    def records_of(self, zone_id: str) -> dict[str, tuple[str, ...]] | None:
        """The zone's A records (relative name -> addresses), None when they were not read."""
        return self.a_records.get(_k(zone_id))

    def links_of(self, zone_id: str) -> list[VnetLink]:
        z = _k(zone_id)
        return [link for link in self.links.values() if link.zone_id == z]
