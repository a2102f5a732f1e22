"""`service`, in Azure networking: kubenet's route table (`service.kubenet-routes-missing`:
each node's pod CIDR must route to that node) and NSGs that drop traffic inside the VNet to the
backing pods' port (`service.nsg-blocks-pods`; blocking intra-cluster traffic is unsupported)."""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.base import Check, CheckContext, q
from diagnostics.checks.netpath_common import rg_of, sub_flag
from diagnostics.checks.service_common import (
    SCENARIO,
    backends,
    resolve_target,
    services_in_scope,
    subject,
)
from diagnostics.model import Finding, Severity, Step
from diagnostics.netpath.analysis import node_subnet_ids
from diagnostics.netpath.match import Endpoint, contains, network
from diagnostics.netpath.nsg import evaluate
from diagnostics.resources import CLUSTER, NETWORK

KUBENET_DOCS = "https://learn.microsoft.com/en-us/azure/aks/configure-kubenet#bring-your-own-subnet-and-route-table-with-kubenet"
NSG_DOCS = "https://learn.microsoft.com/en-us/azure/aks/concepts-network#network-security-groups"


def kubenet_routes(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    c, net = snap.cluster, snap.network
    if c is None or net is None or c.network_plugin.lower() != "kubenet":
        return
    nodes = [n for n in snap.nodes if n.pod_cidrs and n.internal_ip and not n.virtual]
    for sid in node_subnet_ids(c, net):
        subnet = net.subnet(sid)
        if subnet is None:
            continue
        here = [n for n in nodes if contains(subnet.prefixes, n.internal_ip)]
        if not here:
            continue
        table = net.route_table(subnet.route_table_id) if subnet.route_table_id else None
        if subnet.route_table_id and table is None:
            continue  # unreadable: reported as unavailable, no guess
        have = set()
        for r in table.routes if table else ():
            net_ = network(r.prefix)
            if net_ is not None and r.next_hop_type.lower() == "virtualappliance":
                have.add((str(net_), r.next_hop_ip))
        missing = [
            (n, cidr)
            for n in here
            for cidr in n.pod_cidrs
            if (str(network(cidr)), n.internal_ip) not in have
        ]
        if table is not None and not missing:
            continue
        evidence = [f"network plugin kubenet; node subnet {subnet.name}"]
        if table is None:
            evidence.append("the subnet has no route table: pods on other nodes are unreachable")
        else:
            evidence.append(f"route table {table.name} has {len(table.routes)} route(s)")
            evidence += [
                f"no route {cidr} -> {n.internal_ip} for node {n.name}" for n, cidr in missing
            ]
        steps = []
        if table is not None:
            rg, flag = q(rg_of(table.id)), sub_flag(table.id, ctx)
            for n, cidr in missing[:10]:
                steps.append(
                    Step(
                        f"Restore the route of node {n.name} (AKS recreates it on reconcile, if "
                        "its identity may write the table).",
                        f"az network route-table route create --resource-group {rg} --route-table-name "
                        f"{q(table.name)} --name {q(n.name + '____' + cidr.replace('/', '_'))} "
                        f"--address-prefix {q(cidr)} --next-hop-type VirtualAppliance "
                        f"--next-hop-ip-address {q(n.internal_ip)}{flag}",
                    )
                )
        else:
            steps.append(
                Step(
                    "Associate the AKS route table (in the node resource group) with the subnet.",
                    f"az network vnet subnet update --ids {q(sid)} --route-table "
                    f'"$(az network route-table list --resource-group '
                    f"{q(c.node_resource_group)} --query '[0].id' -o tsv)\"",
                )
            )
        steps.append(
            Step(
                "The cluster identity needs Network Contributor on a route table "
                "you bring, or AKS cannot write these routes."
            )
        )
        yield Finding(
            code="service.kubenet-routes-missing",
            severity=Severity.CRITICAL,
            title=(
                f"kubenet: route table {table.name} lacks the pod routes of {len(missing)} node(s)"
                if table
                else f"kubenet: node subnet {subnet.name} has no route table"
            ),
            subject=f"{(table.id if table else sid)}#kubenet-routes",
            evidence=tuple(evidence),
            cause="With kubenet, pod IPs are not VNet addresses: the subnet's route table must "
            "send each node's pod CIDR to that node. Without the route, pods on other nodes "
            "cannot reach the pods there (services time out for some backends).",
            remediation=tuple(steps),
            docs=KUBENET_DOCS,
        )


def nsg_blocks_pods(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    c, net = snap.cluster, snap.network
    if c is None or net is None:
        return
    subnets = [s for sid in node_subnet_ids(c, net) if (s := net.subnet(sid))]
    subnets += [s for p in c.agent_pools if p.pod_subnet_id if (s := net.subnet(p.pod_subnet_id))]
    prefixes = tuple(p for s in subnets for p in s.prefixes) + c.pod_cidrs
    src = Endpoint(
        "the cluster's nodes and pods", prefixes=prefixes, tags=frozenset({"virtualnetwork"})
    )
    for svc in services_in_scope(ctx):
        for pod in backends(snap, svc)[:50]:
            if not pod.ip:
                continue
            subnet = next((s for s in subnets if contains(s.prefixes, pod.ip)), None)
            if subnet is None or not subnet.nsg_id or (g := net.nsg(subnet.nsg_id)) is None:
                continue
            dst = Endpoint(f"pod {pod.key}", ip=pod.ip, tags=frozenset({"virtualnetwork"}))
            hit = None
            for port in svc.ports:
                numbers, _ = resolve_target(pod, port)
                for number in sorted(numbers):
                    v = evaluate(g, "Inbound", src, dst, port.protocol, number)
                    if not v.allowed:
                        hit = (v, number, port.protocol)
                        break
                if hit:
                    break
            if hit is None:
                continue
            v, number, proto = hit
            rg, flag = q(rg_of(g.id)), sub_flag(g.id, ctx)
            yield Finding(
                code="service.nsg-blocks-pods",
                severity=Severity.WARNING,
                title=f"NSG {g.name} denies {proto} {number} to the pods of {svc.key} inside the VNet",
                subject=f"{subject(svc)}#nsg:{g.id.lower()}",
                evidence=(
                    f"backing pod {pod.key} ({pod.ip}) is in subnet {subnet.name}",
                    f"inbound {proto} {number} from the VNet: {v.describe()}",
                ),
                cause="AKS does not support NSG rules that block traffic inside the cluster: "
                "pods on other nodes (and the nodes' kube-proxy) cannot reach these backends.",
                remediation=(
                    Step(
                        f"Remove rule {v.rule.name} (or narrow it so VNet traffic to the pods is "
                        "allowed).",
                        f"az network nsg rule delete --resource-group {rg} --nsg-name {q(g.name)} "
                        f"--name {q(v.rule.name)}{flag}"
                        if not v.rule.default
                        else None,
                    ),
                ),
                docs=NSG_DOCS,
            )
            break


# The service checks only use the network path: without arm/ the report lists `network` as not
# read, and the service's own checks stay unaffected.
CHECKS: tuple[Check, ...] = (
    Check(
        name="service.kubenet_routes",
        scenario=SCENARIO,
        codes=("service.kubenet-routes-missing",),
        fn=kubenet_routes,
        needs=(CLUSTER, "nodes"),
        uses=(NETWORK,),
    ),
    Check(
        name="service.nsg_pods",
        scenario=SCENARIO,
        codes=("service.nsg-blocks-pods",),
        fn=nsg_blocks_pods,
        needs=(CLUSTER, "services", "pods"),
        uses=(NETWORK,),
    ),
)
