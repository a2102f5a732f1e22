"""pod-ip: whether the subnet or pod CIDR can hold what the node pools may scale to (SPEC §2's
formulas per network mode), and subnets that are already full according to NodeNetworkConfigs.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator, Sequence

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.nodecmd import add_pool_command
from diagnostics.checks.podip_nodes import SCENARIO, listing, node_ips
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER
from diagnostics.snapshot import AgentPool, ClusterInfo

AZURE_RESERVED = 5  # Azure keeps the first four and the last address of every subnet
MANAGED_SUBNET = "10.224.0.0/16"  # the node subnet of an AKS-managed virtual network
SUBNET_FULL = "NCUpdateSubnetFullError"
AKS = "https://learn.microsoft.com/en-us/azure/aks/"
AZURE_CNI_DOCS = AKS + "configure-azure-cni#plan-ip-addressing-for-your-cluster"
STATIC_BLOCK_DOCS = AKS + "configure-azure-cni-static-block-allocation"
KUBENET_DOCS = AKS + "configure-kubenet"


def _usable(cidr: str) -> int:
    try:
        return max(0, ipaddress.ip_network(cidr, strict=False).num_addresses - AZURE_RESERVED)
    except ValueError:
        return 0


def _subnet_name(subnet_id: str) -> str:
    return subnet_id.rstrip("/").rsplit("/", 1)[-1] if subnet_id else ""


def _nodes_text(pools: Sequence[AgentPool]) -> tuple[int, int, str]:
    """(max nodes, surge nodes, 'pool: max + surge' per pool)."""
    total = surge = 0
    parts = []
    for p in pools:
        s = p.surge_nodes(p.max_nodes)
        total += p.max_nodes
        surge += s
        how = f"autoscaler max {p.max_nodes}" if p.autoscaling else f"{p.max_nodes} nodes"
        parts.append(f"{p.name}: {how} + {s} surge")
    return total, surge, "; ".join(parts)


def _pools_cmd(ctx: CheckContext) -> Step:
    return Step(
        "Compare with the pools' sizes, autoscaler limits and surge settings.",
        f"az aks nodepool list --resource-group {ctx.rg} --cluster-name {ctx.name} --query "
        + q(
            "[].{name:name,count:count,maxCount:maxCount,maxPods:maxPods,"
            "maxSurge:upgradeSettings.maxSurge}"
        )
        + " -o table",
    )


def _subnet_cidr_from_nnc(ctx: CheckContext, subnet_id: str, pools: Sequence[AgentPool]) -> str:
    """The subnet's range as NodeNetworkConfigs report it: a network container on that subnet
    by name, else one on a node of these pools."""
    snap = ctx.snapshot
    name = _subnet_name(subnet_id).lower()
    by_pool = ""
    for nnc in snap.nodenetworkconfigs:
        for nc in nnc.containers:
            if not nc.subnet_cidr:
                continue
            if name and nc.subnet_name.lower() == name:
                return nc.subnet_cidr
            if not by_pool and node_ips(snap, nnc.name).pool in pools:
                by_pool = nc.subnet_cidr
    return by_pool


# ---------------------------------------------------------------- kubenet and CNI Overlay
def _node_cidr(ctx: CheckContext, node: str, spec_cidrs: Sequence[str]) -> str:
    """A node's IPv4 pod CIDR: spec.podCIDR(s), else what its NodeNetworkConfig's overlay
    network container records (where Azure CNI Overlay keeps the node's /24)."""
    for cidr in spec_cidrs:
        if ":" not in cidr:
            return cidr
    nnc = ctx.snapshot.nnc_by_node.get(node)
    for nc in nnc.containers if nnc else ():
        if nc.type.lower() == "overlay" and (nc.primary_ip or nc.subnet_cidr):
            return nc.primary_ip or nc.subnet_cidr
    return ""


def _wider(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """The range twice the size that contains `net`."""
    return str(net.supernet()) if net.prefixlen > 8 else str(net)


def _pod_cidr_capacity(ctx: CheckContext, c: ClusterInfo) -> Iterator[Finding]:
    nets = []
    for text in c.pod_cidrs:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if net.version == 4:
            nets.append(net)
    if not nets or not c.agent_pools:
        return
    blocks = sum(2 ** (24 - n.prefixlen) for n in nets if n.prefixlen <= 24)
    max_nodes, surge, per_pool = _nodes_text(c.agent_pools)
    need = max_nodes + surge
    snap = ctx.snapshot
    nodes = [n for n in snap.nodes if not n.virtual]
    with_cidr = [n.name for n in nodes if _node_cidr(ctx, n.name, n.pod_cidrs)]
    no_cidr_events = {
        e.name for e in snap.events if e.kind == "Node" and e.reason == "CIDRNotAvailable"
    }
    # kubenet: spec.podCIDR is the node's /24. Overlay: AKS may record it in the node's
    # NodeNetworkConfig instead; a node counts as lacking one only when neither shows it while
    # other nodes do (or the controller said CIDRNotAvailable).
    overlay = c.network_plugin.lower() != "kubenet"
    if overlay:
        with_cidr += [
            n.name
            for n in nodes
            if n.name not in with_cidr
            and (nnc := snap.nnc_by_node.get(n.name)) is not None
            and nnc.containers
        ]
    without = [
        n.name
        for n in nodes
        if n.name not in with_cidr and (not overlay or with_cidr or n.name in no_cidr_events)
    ]
    if need <= blocks and not without:
        return
    cidrs = ", ".join(str(n) for n in nets)
    mode = "kubenet" if c.network_plugin.lower() == "kubenet" else "Azure CNI Overlay"
    evidence = [
        f"{mode}: every node takes a /24 of the pod CIDR {cidrs}, which holds {blocks} of them",
        f"the pools may reach {max_nodes} nodes plus {surge} surge nodes during upgrades = "
        f"{need} /24s ({per_pool})",
    ]
    if snap.has("nodes"):
        evidence.append(
            f"{len(with_cidr)} nodes hold a /24 now (node spec.podCIDR"
            + (", or their NodeNetworkConfig)" if snap.has("nodenetworkconfigs") else ")")
        )
    if without:
        evidence.append(f"nodes that got no pod CIDR (already full): {listing(without)}")
    steps = [
        Step("Confirm the pod CIDR.", ctx.az_aks("show", "--query networkProfile.podCidrs -o tsv")),
        _pools_cmd(ctx),
        Step(
            "Keep the pools within what the pod CIDR holds: lower autoscaler maximums or "
            "maxSurge (an upgrade adds the surge nodes to every pool it upgrades).",
            f"az aks nodepool update --resource-group {ctx.rg} --cluster-name {ctx.name} "
            "--name POOL --max-surge 1",
        ),
        Step(
            "The lasting fix is a larger pod CIDR: kubenet cannot change it in place (migrate to "
            "Azure CNI Overlay or rebuild the cluster with a wider --pod-cidr)."
            if mode == "kubenet"
            else "The lasting fix is a larger pod CIDR: Azure CNI Overlay can expand it in place "
            "to a range that contains the current one (pod CIDR expansion; check its "
            "availability for your cluster in the Overlay docs).",
            None if mode == "kubenet" else ctx.az_aks("update", f"--pod-cidr {q(_wider(nets[0]))}"),
        ),
    ]
    yield Finding(
        code="podip.subnet-capacity",
        severity=Severity.WARNING,
        title=(
            f"The pod CIDR {cidrs} is full: {len(without)} node(s) got no /24"
            if without
            else f"The pod CIDR {cidrs} holds {blocks} nodes; the pools may need {need}"
        ),
        subject=f"podcidr/{cidrs}",
        scope=tuple(f"node/{n}" for n in without),  # the nodes it left without a /24
        evidence=tuple(evidence),
        cause="A node whose /24 cannot be carved from the pod CIDR gets no pod CIDR: its pods "
        "never get an address and scale-outs or upgrades stall.",
        remediation=tuple(steps),
        docs=DOCS["ip-planning"] if mode != "kubenet" else KUBENET_DOCS,
    )


# ---------------------------------------------------------------- Azure CNI subnets
def _more_room_steps(ctx: CheckContext, like: AgentPool | None, which: str) -> list[Step]:
    """How to get more addresses: a pool on a new subnet of the same VNet (custom VNet), or,
    on the AKS-managed VNet (which takes no subnet of yours), fewer IPs per node / Overlay."""
    cmd = add_pool_command(ctx, like, new_subnet=which)
    if like is None:
        return [
            Step(
                f"Add a pool on a new, larger {which} subnet of the cluster's virtual network "
                f"(`az aks nodepool add ... --{'pod' if which == 'pod' else 'vnet'}-subnet-id "
                "NEW_SUBNET_ID`; without the flag the pool lands on the same full subnet), or "
                "lower maxPods / autoscaler maximums."
            )
        ]
    if cmd is not None:
        return [
            Step(
                f"A {which} subnet that holds addresses cannot be resized while in use: create a "
                "larger subnet in the same virtual network (NEW_"
                + ("POD" if which == "pod" else "NODE")
                + "_SUBNET below), add a pool on it, move workloads, then remove the old pool; "
                "or lower maxPods / autoscaler maximums.",
                cmd,
            )
        ]
    return [
        Step(
            "The AKS-managed virtual network takes no subnet of yours, so a new pool would land "
            "on the same subnet: lower maxPods or autoscaler maximums, or migrate the cluster to "
            "Azure CNI Overlay, where pod IPs no longer come from the subnet (an in-place "
            "migration that reimages every node; pick a pod CIDR that overlaps nothing you "
            "route to).",
            ctx.az_aks("update", "--network-plugin-mode overlay --pod-cidr 192.168.0.0/16"),
        )
    ]


def _subnet_capacity(
    ctx: CheckContext,
    subnet_id: str,
    pools: list[AgentPool],
    per_node: dict[str, int],
    kind: str,
    formula: str,
) -> Iterator[Finding]:
    per_pool = _nodes_text(pools)[2]
    need = sum((p.max_nodes + p.surge_nodes(p.max_nodes)) * per_node[p.name] for p in pools)
    cidr = _subnet_cidr_from_nnc(ctx, subnet_id, pools) if subnet_id else MANAGED_SUBNET
    usable = _usable(cidr) if cidr else 0
    label = _subnet_name(subnet_id) or "the AKS-managed subnet"
    evidence = [
        f"{kind} {label}: pools {', '.join(p.name for p in pools)} need {formula} = {need} IPs "
        f"at most ({per_pool})",
    ]
    if usable and need <= usable:
        return
    if usable:
        evidence.append(f"the subnet {cidr} has {usable} usable addresses (Azure reserves 5)")
    else:
        evidence.append(
            "the subnet's size is not part of the cluster resource: compare it with "
            "the command below"
        )
    steps = []
    if subnet_id:
        steps.append(
            Step(
                "Read the subnet's address range.",
                f"az network vnet subnet show --ids {q(subnet_id)} --query addressPrefix -o tsv",
            )
        )
    steps.append(_pools_cmd(ctx))
    steps += _more_room_steps(ctx, pools[0], "pod" if kind == "pod subnet" else "node")
    yield Finding(
        code="podip.subnet-capacity",
        severity=Severity.WARNING if usable else Severity.INFO,
        title=(
            f"{kind.capitalize()} {label} ({cidr}) cannot hold what the pools may scale to: "
            f"{need} IPs needed, {usable} usable"
            if usable
            else f"{kind.capitalize()} {label} must hold {need} IPs for the pools' maximum "
            "(size not verified)"
        ),
        subject=f"subnet/{subnet_id or label}",
        evidence=tuple(evidence),
        cause="Every node reserves its pod addresses from this subnet; when it runs out, new "
        "nodes fail to join and pods on existing nodes cannot get an address.",
        remediation=tuple(steps),
        docs=(STATIC_BLOCK_DOCS if "/28 blocks" in formula else DOCS["dynamic-ip"])
        if kind == "pod subnet"
        else AZURE_CNI_DOCS,
    )


def _azure_cni_capacity(ctx: CheckContext, pools: Sequence[AgentPool]) -> Iterator[Finding]:
    by_pod_subnet: dict[str, list[AgentPool]] = defaultdict(list)
    by_node_subnet: dict[str, list[AgentPool]] = defaultdict(list)
    for p in pools:
        if p.pod_subnet_id:
            by_pod_subnet[p.pod_subnet_id].append(p)
        else:
            by_node_subnet[p.vnet_subnet_id].append(p)
    for subnet, group in sorted(by_node_subnet.items()):
        per_node = {p.name: (p.max_pods or 30) + 1 for p in group}
        yield from _subnet_capacity(
            ctx, subnet, group, per_node, "node subnet", "(nodes + surge) × (maxPods + 1)"
        )
    for subnet, group in sorted(by_pod_subnet.items()):
        static = [p for p in group if p.pod_ip_allocation_mode.lower() == "staticblock"]
        # StaticBlock: each node holds /28 blocks for maxPods plus its own address, for life.
        # DynamicIndividual (the default): CNS takes 16-IP batches by demand, so the subnet
        # must hold the pods that can run, not whole batches per node.
        per_node = {
            p.name: (-(-((p.max_pods or 30) + 1) // 16) * 16 if p in static else (p.max_pods or 30))
            for p in group
        }
        formula = (
            "(nodes + surge) × (maxPods + 1, in /28 blocks)"
            if len(static) == len(group)
            else "(nodes + surge) × maxPods (16-IP batches by demand)"
            if not static
            else "(nodes + surge) × maxPods (StaticBlock pools: maxPods + 1 in /28 blocks)"
        )
        yield from _subnet_capacity(ctx, subnet, group, per_node, "pod subnet", formula)


# ---------------------------------------------------------------- already full
def _already_full(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    full: dict[tuple[str, str], list[str]] = defaultdict(list)
    starved: dict[tuple[str, str], list[str]] = defaultdict(list)
    cidrs = {nc.subnet_name: nc.subnet_cidr for n in snap.nodenetworkconfigs for nc in n.containers}
    for nnc in snap.nodenetworkconfigs:
        if ctx.args.node and nnc.name != ctx.args.node:
            continue
        subnet = next(((nc.subnet_name, nc.subnet_cidr) for nc in nnc.containers), None)
        if subnet is None:  # no network container yet: the subnet its pool draws from
            pool = node_ips(snap, nnc.name).pool
            name = _subnet_name(pool.pod_subnet_id or pool.vnet_subnet_id) if pool else ""
            subnet = (name, cidrs.get(name, ""))
        if any(nc.status == SUBNET_FULL for nc in nnc.containers) or nnc.status == SUBNET_FULL:
            full[subnet].append(nnc.name)
        elif nnc.requested > 0 and nnc.assigned == 0:
            starved[subnet].append(f"{nnc.name} (requested {nnc.requested})")
    for subnet in sorted(set(full) | set(starved)):
        name, cidr = subnet
        label = f"{name or 'the pod subnet'}" + (f" ({cidr})" if cidr else "")
        evidence = []
        if full[subnet]:
            evidence.append(f"NodeNetworkConfigs reporting {SUBNET_FULL}: {listing(full[subnet])}")
        if starved[subnet]:
            evidence.append(
                f"NodeNetworkConfigs that got no IPs at all: {listing(starved[subnet])}"
            )
        first = (full[subnet] or [s.split(" ")[0] for s in starved[subnet]])[0]
        pool = node_ips(snap, first).pool
        subnet_id = (pool.pod_subnet_id or pool.vnet_subnet_id) if pool else ""
        steps = [
            Step(
                "See requested and allocated IPs per node.",
                "kubectl get nnc -n kube-system -o wide",
            ),
            Step(
                f"Read the full status of {first}'s NodeNetworkConfig.",
                f"kubectl get nnc -n kube-system {q(first)} -o yaml",
            ),
        ]
        if subnet_id:
            steps.append(
                Step(
                    "Check the subnet's range.",
                    f"az network vnet subnet show --ids {q(subnet_id)} --query addressPrefix -o tsv",
                )
            )
        steps.append(
            Step(
                "Free addresses: scale down pools on this subnet or delete finished pods "
                "(dynamic allocation returns unused batches)."
            )
        )
        steps += _more_room_steps(ctx, pool, "pod" if pool and pool.pod_subnet_id else "node")
        nodes = len(full[subnet]) + len(starved[subnet])
        behind = [*full[subnet], *(s.split(" ")[0] for s in starved[subnet])]
        yield Finding(
            code="podip.subnet-capacity",
            severity=Severity.WARNING,
            title=f"Subnet {label} is full: {nodes} node(s) cannot get more pod IPs",
            subject=f"subnet/{name or cidr or 'unknown'}",
            # the nodes it starves, and the subnet under its id (the capacity finding's subject)
            scope=(
                *(f"node/{n}" for n in behind),
                *((f"subnet/{subnet_id}",) if subnet_id else ()),
            ),
            evidence=tuple(evidence),
            cause="The subnet has no addresses left for the batches CNS requests, so pods on "
            "these nodes cannot get an IP.",
            remediation=tuple(steps),
            docs=DOCS["dynamic-ip"],
        )


def subnet_capacity(ctx: CheckContext) -> Iterator[Finding]:
    c = ctx.snapshot.cluster
    assert c is not None  # guaranteed by needs=(CLUSTER,)
    pools: Sequence[AgentPool] = c.agent_pools
    snap = ctx.snapshot
    if ctx.args.node and snap.has("nodes") and ctx.args.node not in snap.nodes_by_name:
        return  # podip.node-not-found says so
    if ctx.args.node:
        pool = node_ips(ctx.snapshot, ctx.args.node).pool
        pools = [pool] if pool else pools
    plugin, mode = c.network_plugin.lower(), c.network_plugin_mode.lower()
    if plugin == "kubenet" or (plugin == "azure" and mode == "overlay"):
        yield from _pod_cidr_capacity(ctx, c)
    elif plugin == "azure":
        if ctx.args.node and pools is not c.agent_pools:  # only the node's pool and its subnet
            subnet = pools[0].pod_subnet_id or pools[0].vnet_subnet_id
            pools = [p for p in c.agent_pools if (p.pod_subnet_id or p.vnet_subnet_id) == subnet]
        yield from _azure_cni_capacity(ctx, pools)
    yield from _already_full(ctx)


CHECKS: tuple[Check, ...] = (
    Check(
        name="podip.subnet_capacity",
        scenario=SCENARIO,
        codes=("podip.subnet-capacity",),
        fn=subnet_capacity,
        needs=(CLUSTER,),
        uses=("nodes", "nodenetworkconfigs"),
    ),
)
