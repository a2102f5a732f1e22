"""Live reads of the Azure network path (SPEC "The Azure network path") with azure-mgmt-network
and azure-mgmt-privatedns: the node subnets' VNets (or the AKS-managed VNet in the node resource
group), the NSGs in the node resource group (the one AKS puts on the VMSS NICs lists them), the
subnets' NSGs and route tables, peered VNets, Azure Firewalls (cluster subscription, then the
peers' subscriptions), their policies with rule collection groups and base policies, a private
cluster's DNS zone and its VNet links, the firewall's egress addresses (its public IPs, the
public IP prefixes they come from, a NAT gateway on its subnet with that gateway's public IPs
and prefixes; with authorized IP ranges on a public API server, the load balancers listed per
subscription, for appliances behind an internal one that leave through a public one's outbound
rules), and the cluster's outbound dependency endpoints.

Reads run in parallel in rounds; each round reads what the previous one revealed: three rounds
for a hub firewall in another subscription with a parent policy (VNet; route table, peers and
the peer subscription's firewalls and policies; rule collection groups), a fourth only for a
policy outside the listed subscriptions or for the last egress read (a hub firewall's public IP
prefix, a NAT gateway's public IPs on its subnet: `MAX_ROUNDS`). Every failure is kept as a reason for that resource (`AzureNetwork.unreadable`),
never raised. Bodies are kept projected onto `diagnostics.netpath.parse.FIELDS`, which is also
what `aksdiag capture` writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.mgmt.core.tools import parse_resource_id

from diagnostics.collectors.arm import ArmClient, arm_error
from diagnostics.collectors.armnet_egress import egress_tasks, lb_egress_tasks
from diagnostics.netpath.analysis import node_subnet_ids, vnet_id_of
from diagnostics.netpath.match import contains
from diagnostics.netpath.model import AzureNetwork, EgressEndpoint
from diagnostics.netpath.parse import add_resource, parse_egress_endpoints, project
from diagnostics.snapshot import ClusterInfo


def _parts(resource_id: str) -> dict[str, str]:
    """An ARM id as lowercased segment type -> name (`subscriptions`, `resourcegroups`,
    `firewallpolicies`, `privatednszones`, ...), through azure-mgmt-core's parse_resource_id."""
    p = {k: str(v) for k, v in parse_resource_id(resource_id).items() if v}
    out = {
        "subscriptions": p.get("subscription", ""),
        "resourcegroups": p.get("resource_group", ""),
    }
    if p.get("type") and p.get("name"):
        out[p["type"].lower()] = p["name"]
    for n in range(1, 1 + int(p.get("last_child_num", "0") or 0)):
        if p.get(f"child_type_{n}") and p.get(f"child_name_{n}"):
            out[p[f"child_type_{n}"].lower()] = p[f"child_name_{n}"]
    return {k: v for k, v in out.items() if v}


log = logging.getLogger(__name__)
MAX_ROUNDS = 4
MAX_FIREWALLS = 8  # firewalls whose policies are read before the route tables say which one


@dataclass
class NetworkRead:
    network: AzureNetwork
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> projected body
    rounds: int = 0


def _body(model: Any) -> dict[str, Any]:
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


class _Reader:
    def __init__(self, arm: ArmClient, cluster: ClusterInfo, pool: ThreadPoolExecutor) -> None:
        self.arm, self.c, self.pool = arm, cluster, pool
        self.out = NetworkRead(AzureNetwork())
        self.done: set[str] = set()  # read keys already attempted
        self.lock = threading.Lock()

    # ------------------------------------------------------------ plumbing
    def _net(self, rid: str) -> Any:
        return self.arm.network(_parts(rid).get("subscriptions", self.c.subscription))

    def _keep(self, bodies: Iterable[Any]) -> None:
        with self.lock:
            for model in bodies:
                body = _body(model)
                projected = project(body)
                if projected is None:
                    continue
                add_resource(self.out.network, body)
                rid = str(projected[1].get("id", "")).lower()
                self.out.resources[rid] = {"type": projected[0], **projected[1]}

    def _fail(self, key: str, exc: Exception, what: str) -> None:
        reason = arm_error(exc, what).reason
        with self.lock:
            self.out.network.unreadable[key.lower()] = reason

    def _task(self, key: str, what: str, fn: Callable[[], Any]) -> Callable[[], None] | None:
        if key.lower() in self.done:
            return None
        self.done.add(key.lower())

        def run() -> None:
            try:
                result = fn()
                self._keep([result] if hasattr(result, "as_dict") else list(result))
            except Exception as exc:  # one resource's failure is a reason, not a crash
                self._fail(key, exc, what)

        return run

    # ------------------------------------------------------------ what to read next
    def _get(
        self, rid: str, what: str, op: Callable[[Any, str, str], Any]
    ) -> Callable[[], None] | None:
        """A GET by id: `op(network client of rid's subscription, resource group, name)`."""
        p = _parts(rid)
        rg = p.get("resourcegroups", "")
        name = rid.rstrip("/").rsplit("/", 1)[-1]
        net = self._net(rid)
        return self._task(rid, f"{what} {name}", lambda: op(net, rg, name))

    def _firewalls_in(self, sub: str) -> list[Callable[[], None] | None]:
        """The subscription's Azure Firewalls and firewall policies (listing the policies with
        the firewalls saves a round per parent policy), and its load balancers when the egress
        address matters (authorized IP ranges on a public API server)."""
        net = self.arm.network(sub)
        c = self.c
        lbs = (  # appliances behind an internal load balancer, SNAT by a public one
            self._task(
                f"loadbalancers:{sub}",
                f"load balancers in subscription {sub}",
                lambda: net.load_balancers.list_all(),
            )
            if c.authorized_ip_ranges and not c.private_cluster and not c.vnet_integration
            else None
        )
        return [
            lbs,
            self._task(
                f"firewalls:{sub}",
                f"Azure Firewalls in subscription {sub}",
                lambda: net.azure_firewalls.list_all(),
            ),
            self._task(
                f"policies:{sub}",
                f"firewall policies in subscription {sub}",
                lambda: net.firewall_policies.list_all(),
            ),
        ]

    def dns_tasks(self) -> list[Callable[[], None]]:
        """Only what the private DNS checks need: the node VNets, their peers, the zone, its
        links and records (nothing at all for a public cluster or `privateDNSZone: none`)."""
        c, net = self.c, self.out.network
        if not c.private_cluster or c.private_dns_zone.strip().lower() == "none":
            return []
        subnets = [p.vnet_subnet_id for p in c.agent_pools if p.vnet_subnet_id]
        out: list[Callable[[], None] | None] = []
        if not subnets and c.node_resource_group:
            main, nrg = self.arm.network(c.subscription), c.node_resource_group
            out.append(
                self._task(
                    f"vnets:{nrg}",
                    f"virtual networks in {nrg}",
                    lambda: main.virtual_networks.list(nrg),
                )
            )
        for vid in sorted({vnet_id_of(s) for s in subnets} - {""}):
            vnet = net.vnet(vid)
            for rid in [vid] if vnet is None else [p for p in vnet.peerings if net.vnet(p) is None]:
                out.append(
                    self._get(
                        rid, "virtual network", lambda n, rg, name: n.virtual_networks.get(rg, name)
                    )
                )
        out += self._dns_tasks() + self._dns_host_tasks(subnets)
        return [t for t in out if t is not None]

    def tasks(self) -> list[Callable[[], None]]:
        c, net = self.c, self.out.network
        out: list[Callable[[], None] | None] = []
        subnets = [p.vnet_subnet_id for p in c.agent_pools if p.vnet_subnet_id]
        subnets += [p.pod_subnet_id for p in c.agent_pools if p.pod_subnet_id]
        vnets = {vnet_id_of(s) for s in subnets if vnet_id_of(s)}
        main = self.arm.network(c.subscription)
        nrg = c.node_resource_group
        if not subnets and nrg:
            out.append(
                self._task(
                    f"vnets:{nrg}",
                    f"virtual networks in {nrg}",
                    lambda: main.virtual_networks.list(nrg),
                )
            )
        for v in sorted(vnets):
            out.append(
                self._get(
                    v, "virtual network", lambda n, rg, name: n.virtual_networks.get(rg, name)
                )
            )
        if nrg:
            out.append(
                self._task(
                    f"nsgs:{nrg}",
                    f"network security groups in {nrg}",
                    lambda: main.network_security_groups.list(nrg),
                )
            )
        out += self._firewalls_in(c.subscription)
        out += self._dns_tasks()
        hops: set[str] = set()
        for sid in node_subnet_ids(c, net) + subnets:
            s = net.subnet(sid)
            if s is None:
                continue
            if s.nsg_id and net.nsg(s.nsg_id) is None:
                out.append(
                    self._get(
                        s.nsg_id,
                        "network security group",
                        lambda n, rg, name: n.network_security_groups.get(rg, name),
                    )
                )
            if s.route_table_id:
                table = net.route_table(s.route_table_id)
                if table is None:
                    out.append(
                        self._get(
                            s.route_table_id,
                            "route table",
                            lambda n, rg, name: n.route_tables.get(rg, name),
                        )
                    )
                else:
                    hops |= {r.next_hop_ip for r in table.routes if r.next_hop_ip}
            vnet = net.vnet(vnet_id_of(sid))
            for peer in vnet.peerings if vnet else ():
                if net.vnet(peer) is None:
                    out.append(
                        self._get(
                            peer,
                            "virtual network",
                            lambda n, rg, name: n.virtual_networks.get(rg, name),
                        )
                    )
                sub = _parts(peer).get("subscriptions", "")
                if sub and sub.lower() != c.subscription.lower():
                    out += self._firewalls_in(sub)
        out += self._dns_host_tasks(subnets)
        firewalls = list(net.firewalls.values())
        if hops:
            firewalls = [f for f in firewalls if set(f.private_ips) & hops]
        for ip in sorted(hops):
            if net.firewall_at(ip) is None:
                out += lb_egress_tasks(self, ip)
        for fw in firewalls[:MAX_FIREWALLS]:
            out += egress_tasks(self, fw, bool(hops))
            policy, chain = fw.policy_id, 0
            while policy and chain < 8:  # the policies were listed with the firewalls
                known = net.policies.get(policy.lower())
                out += self._policy_tasks(policy, known is None)
                if known is None:
                    break
                policy, chain = known.base_policy_id, chain + 1
        return [t for t in out if t is not None]

    def _dns_host_tasks(self, subnets: list[str]) -> list[Callable[[], None] | None]:
        """Custom DNS servers in none of the VNets read: read the peers' peers (a shared
        services VNet behind the hub), one level further."""
        c, net = self.c, self.out.network
        out: list[Callable[[], None] | None] = []
        if not c.private_cluster:
            return out
        for vid in {vnet_id_of(s) for s in subnets}:
            vnet = net.vnet(vid)
            if vnet is None or all(
                any(contains(v.address_space, ip) for v in net.vnets.values())
                for ip in vnet.dns_servers
            ):
                continue
            for peer in vnet.peerings:
                for far in p.peerings if (p := net.vnet(peer)) else ():
                    if net.vnet(far) is None:
                        out.append(
                            self._get(
                                far,
                                "virtual network",
                                lambda n, rg, name: n.virtual_networks.get(rg, name),
                            )
                        )
        return out

    def _policy_tasks(self, policy_id: str, get: bool) -> list[Callable[[], None] | None]:
        """The policy's rule collection groups, and the policy itself when it was not listed."""
        p = _parts(policy_id)
        rg, name = p.get("resourcegroups", ""), p.get("firewallpolicies", "")
        ops = self._net(policy_id)
        policy = self._get(
            policy_id, "firewall policy", lambda n, rg, name: n.firewall_policies.get(rg, name)
        )
        return [
            policy if get else None,
            self._task(
                f"{policy_id}/ruleCollectionGroups",
                f"rule collection groups of {name}",
                lambda: ops.firewall_policy_rule_collection_groups.list(rg, name),
            ),
        ]

    def _dns_tasks(self) -> list[Callable[[], None] | None]:
        c, net = self.c, self.out.network
        if not c.private_cluster or c.private_dns_zone.strip().lower() == "none":
            return []
        out: list[Callable[[], None] | None] = []
        zone = c.private_dns_zone.strip()
        zones = [zone] if "/privatednszones/" in zone.lower() else []
        if not zones and c.node_resource_group:
            dns = self.arm.private_dns(c.subscription)
            nrg = c.node_resource_group
            out.append(
                self._task(
                    f"zones:{nrg}",
                    f"private DNS zones in {nrg}",
                    lambda: dns.private_zones.list_by_resource_group(nrg),
                )
            )
            zones = [z.id for z in net.zones.values()]
        for zid in zones:
            out += self._zone_tasks(zid)
        return out

    def _zone_tasks(self, zid: str) -> list[Callable[[], None] | None]:
        p = _parts(zid)
        rg, name = p.get("resourcegroups", ""), p.get("privatednszones", "")
        dns = self.arm.private_dns(p.get("subscriptions", self.c.subscription))
        out = []
        if zid.lower() not in self.out.network.zones:
            out.append(
                self._task(zid, f"private DNS zone {name}", lambda: dns.private_zones.get(rg, name))
            )
        out.append(
            self._task(
                f"{zid}/virtualNetworkLinks",
                f"virtual network links of {name}",
                lambda: dns.virtual_network_links.list(rg, name),
            )
        )

        def a_records() -> list[Any]:
            items = list(dns.record_sets.list_by_type(rg, name, "A"))
            with self.lock:  # read, even when empty: a missing record is then a fact
                self.out.network.a_records.setdefault(zid.lower(), {})
            return items

        out.append(self._task(f"{zid}/A", f"A records of {name}", a_records))
        return out


def read_network(
    arm: ArmClient, cluster: ClusterInfo, workers: int = 8, dns_only: bool = False
) -> NetworkRead:
    """Read the network path of `cluster` (or only its private DNS part), in parallel rounds."""
    with ThreadPoolExecutor(workers, thread_name_prefix="aksdiag-net") as pool:
        reader = _Reader(arm, cluster, pool)
        for n in range(1, MAX_ROUNDS + 1):
            tasks = reader.dns_tasks() if dns_only else reader.tasks()
            if not tasks:
                break
            reader.out.rounds = n
            list(pool.map(lambda t: t(), tasks))
    return reader.out


def read_private_dns(arm: ArmClient, cluster: ClusterInfo) -> NetworkRead:
    return read_network(arm, cluster, dns_only=True)


def read_egress_endpoints(
    arm: ArmClient, cluster: ClusterInfo
) -> tuple[list[EgressEndpoint], list[dict[str, Any]]]:
    """The cluster's outbound dependencies: (parsed, raw REST items)."""
    what = f"outbound network dependencies of {cluster.resource_group}/{cluster.name}"
    try:
        items = [
            _body(m)
            for m in arm.aks.managed_clusters.list_outbound_network_dependencies_endpoints(
                cluster.resource_group, cluster.name
            )
        ]
    except Exception as exc:
        raise arm_error(exc, what) from None
    return parse_egress_endpoints(items), items
