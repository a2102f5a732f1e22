"""pod-ip: pods that cannot get an address, and why on each node — leaked IPs (the article's
cause 1) or a node that genuinely uses every IP it may have."""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.nodecmd import add_pool_command, replace_node_steps
from diagnostics.checks.podip_nodes import (
    MODE_TEXT,
    SCENARIO,
    NodeFailures,
    NodeIps,
    allocation_failures,
    holding_pods_cmd,
    holds_ip,
    ipam_store_steps,
    listing,
    node_ips,
    when,
)
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER
from diagnostics.snapshot import Snapshot


def _pod_state(snapshot: Snapshot, key: str) -> str:
    pod = snapshot.pods_by_key.get(key)
    if pod is None:
        return "gone" if snapshot.has("pods") else "state not collected"
    if pod.terminated:
        return pod.phase
    state = pod.waiting_reasons[0] if pod.waiting_reasons else pod.phase
    return f"{state}, IP {pod.ip}" if pod.ip else f"{state}, no IP"


def _still_failing(snapshot: Snapshot, nf: NodeFailures) -> list[str]:
    """Affected pods that still have no address (all of them when pods were not collected)."""
    if not snapshot.has("pods"):
        return list(nf.pods)
    out = []
    for key in nf.pods:
        pod = snapshot.pods_by_key.get(key)
        if pod is not None and not pod.terminated and not holds_ip(pod):
            out.append(key)
    return out


def _ip_facts(ips: NodeIps) -> str:
    parts = [MODE_TEXT[ips.mode]]
    if ips.nnc is not None:
        parts.append(
            f"NodeNetworkConfig requested {ips.nnc.requested}, allocated {ips.nnc.assigned}"
        )
    if ips.pod_cidr:
        parts.append(f"pod CIDR {ips.pod_cidr} ({ips.cidr_size} addresses)")
    if ips.max_pods:
        parts.append(f"maxPods {ips.max_pods}")
    return "; ".join(parts)


def _failure_evidence(snapshot: Snapshot, nf: NodeFailures) -> list[str]:
    ranked = sorted(nf.pods.items(), key=lambda kv: (-kv[1], kv[0]))
    pods = [f"{key} (x{count}, {_pod_state(snapshot, key)})" for key, count in ranked]
    reasons = sorted({e.reason for e in nf.events})
    return [
        f"{nf.occurrences} {'/'.join(reasons)} warnings in {len(nf.events)} "
        f"event{'s' if len(nf.events) != 1 else ''} "
        + (
            f"between {when(nf.first)} and {when(nf.last)}"
            if when(nf.first) != when(nf.last)
            else f"at {when(nf.last)}"
        ),
        f"messages say: {', '.join(sorted(nf.patterns))}",
        f"pods affected ({len(pods)}): {listing(pods)}",
        f"latest message: {nf.sample}",
    ]


def allocation_failed(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    for node, nf in sorted(allocation_failures(snap, ctx.args.node).items()):
        still = _still_failing(snap, nf)
        evidence = _failure_evidence(snap, nf)
        where = f"node {node}" if node else "an unknown node"
        if node:
            evidence.insert(1, f"{where}: {_ip_facts(node_ips(snap, node))}")
        if still:
            evidence.append(f"still without an IP now: {listing(still)}")
        else:
            evidence.append("every affected pod has an address now or is gone")
        top = max(nf.pods.items(), key=lambda kv: kv[1])[0]
        ns, name = top.split("/", 1)
        reasons = ",".join(sorted({e.reason for e in nf.events}))
        selector = f"type=Warning,reason={reasons}" if "," not in reasons else "type=Warning"
        steps = [
            Step(
                "List the failures across the cluster, newest last.",
                f"kubectl get events -A --field-selector {q(selector)} --sort-by=.lastTimestamp",
            ),
            Step(
                f"Read the full error on the pod hit most ({top}).",
                f"kubectl describe pod -n {q(ns)} {q(name)}",
            ),
        ]
        if node:
            steps += ipam_store_steps(ctx, node_ips(snap, node))
            steps.append(
                Step(
                    "The findings podip.ip-leak, podip.node-ip-exhausted, "
                    "podip.terminated-pods-backlog and podip.subnet-capacity say which cause "
                    "applies; run the scenario for this node alone to focus on it.",
                    f"aksdiag run pod-ip {q(snap.label)} --node {q(node)}",
                )
            )
        yield Finding(
            code="podip.allocation-failed",
            severity=Severity.CRITICAL if still else Severity.WARNING,
            title=(
                f"{len(still)} pod(s) on {where} cannot get an IP address"
                if still
                else f"Pods on {where} failed to get an IP address recently ({nf.occurrences} times)"
            ),
            subject=f"node/{node}" if node else "node/<unknown>",
            evidence=tuple(evidence),
            cause="The network plugin had no free address for new pod sandboxes on this node, so "
            "the pods stay in ContainerCreating. Either the node really uses every IP it may have, "
            "IPs leaked (held for pods that are gone), terminated pods pile up, or the subnet "
            "behind the node is full.",
            remediation=tuple(steps),
            docs=DOCS["pod-ip"],
        )


# ---------------------------------------------------------------- ip-leak
def _leak(ips: NodeIps) -> tuple[str, list[str]] | None:
    """('confirmed'|'suspected', evidence) when the node's IPAM holds far more IPs than pods."""
    if ips.mode == "dynamic" and ips.nnc is not None:
        nnc = ips.nnc
        free = nnc.assigned - ips.held
        threshold = nnc.release_threshold
        facts = [
            f"NodeNetworkConfig {ips.name}: requested {nnc.requested}, allocated {nnc.assigned} IPs "
            f"(batch {nnc.batch_size}, release threshold {nnc.release_threshold_percent}% = "
            f"{threshold} free IPs)",
            ips.count_text(),
        ]
        if free > threshold:
            facts.append(
                f"{free} allocated IPs are used by no pod: more than the {threshold} free IPs CNS "
                "keeps before it releases a batch, so CNS counts them as in use"
            )
            return "confirmed", facts
        if free >= max(4, nnc.batch_size // 2):
            facts.append(f"{free} allocated IPs are used by no pod, yet CNS reports none available")
            return "suspected", facts
        return None
    capacity = ips.capacity
    if not capacity:
        return None
    if ips.mode in ("kubenet", "overlay"):
        what = f"pod CIDR {ips.pod_cidr} holds {capacity} addresses"
        margin = max(8, capacity // 10)
    elif ips.mode == "node-subnet":
        what = f"the node reserves maxPods = {capacity} IPs"
        margin = max(2, capacity // 10)
    else:
        return None
    if ips.held + margin > capacity:
        return None
    return "suspected", [
        f"{what}, but the IPAM reports none free",
        ips.count_text(),
        f"{capacity - ips.held} addresses are not accounted for by any pod on the node",
    ]


def _leak_fix(ctx: CheckContext, ips: NodeIps) -> list[Step]:
    node = ips.name
    if ips.mode == "dynamic":
        return [
            Step(
                "Restart CNS on the node: on start it rebuilds its view from the pods that exist "
                "and frees what they do not use (this deletes the azure-cns pod; its DaemonSet "
                "recreates it).",
                "kubectl delete pod -n kube-system -l k8s-app=azure-cns "
                f"--field-selector {q('spec.nodeName=' + node)}",
            ),
            Step(
                "If IPs leak again, open a support request with these numbers (the article's "
                "solution 1: a plugin bug that Microsoft fixes or works around)."
            ),
        ]
    steps = [
        Step(
            "Move the workloads off the node.",
            f"kubectl drain {q(node)} --ignore-daemonsets --delete-emptydir-data",
        ),
        *replace_node_steps(ctx, node),
    ]
    steps.append(
        Step(
            "If IPs leak again, open a support request with the comparison above (the article's "
            "solution 1: a plugin bug that Microsoft fixes or works around)."
        )
    )
    return steps


def ip_leak(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    for node, nf in sorted(allocation_failures(snap, ctx.args.node).items()):
        if not node:
            continue
        ips = node_ips(snap, node)
        verdict = _leak(ips)
        if verdict is None:
            continue
        confidence, facts = verdict
        facts.append(
            f"meanwhile {nf.occurrences} allocation failures hit {len(nf.pods)} pod(s) on this "
            f"node (latest {when(nf.last)})"
        )
        if ips.mode != "dynamic":
            facts.append(
                "the IPAM store lives on the node and cannot be read through the API: "
                "the commands below confirm the leak"
            )
        yield Finding(
            code="podip.ip-leak",
            severity=Severity.WARNING,
            title=(
                f"IP leak {'on' if confidence == 'confirmed' else 'suspected on'} {node}: the IPAM "
                f"holds far more IPs than the {ips.held} pods that use one"
            ),
            subject=f"node/{node}",
            evidence=tuple(facts),
            cause="The article's cause 1: the network plugin did not release the addresses of "
            "pods that were deleted, so its IPAM store says the node is full while few pods run.",
            remediation=tuple(ipam_store_steps(ctx, ips) + _leak_fix(ctx, ips)),
            docs=DOCS["pod-ip"],
        )


# ---------------------------------------------------------------- node-ip-exhausted
def node_ip_exhausted(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    failures = allocation_failures(snap, ctx.args.node) if snap.has("events") else {}
    candidates = {n for n in failures if n}
    candidates |= {n.name for n in snap.nodenetworkconfigs if n.requested > n.assigned > 0}
    if ctx.args.node:
        candidates &= {ctx.args.node}
    for node in sorted(candidates):
        ips = node_ips(snap, node)
        limits = [c for c in (ips.capacity, ips.max_pods) if c]
        if not limits:
            continue
        limit = min(limits)
        if ips.held < limit - max(1, limit // 32):
            continue
        nf = failures.get(node)
        evidence = [ips.count_text(), _ip_facts(ips)]
        nnc = ips.nnc
        if nnc is not None and nnc.requested > nnc.assigned:
            evidence.append(
                f"CNS asked for {nnc.requested - nnc.assigned} more IPs than it got: the pod "
                "subnet may be out of addresses"
            )
        if nf is not None:
            evidence.append(
                f"{nf.occurrences} allocation failures for {len(nf.pods)} pod(s), "
                f"latest {when(nf.last)}"
            )
        yield Finding(
            code="podip.node-ip-exhausted",
            severity=Severity.WARNING,
            title=f"{node} uses every pod IP it may have ({ips.held} of {limit})",
            subject=f"node/{node}",
            evidence=tuple(evidence),
            cause="The node genuinely runs as many pods as it has addresses for: new pods "
            "scheduled there cannot get an IP until others finish or the pool grows.",
            remediation=tuple(_capacity_steps(ctx, ips)),
            docs=DOCS["dynamic-ip"] if ips.mode == "dynamic" else DOCS["ip-planning"],
        )


def _capacity_steps(ctx: CheckContext, ips: NodeIps) -> list[Step]:
    pool = ips.pool
    steps: list[Step] = [Step("See what runs on the node.", holding_pods_cmd(ips.name))]
    base = f"--resource-group {ctx.rg} --cluster-name {ctx.name}"
    nnc = ips.nnc
    starved = nnc is not None and nnc.requested > nnc.assigned
    if starved:  # more nodes would draw on the same starved subnet: never advise growing it
        steps.append(
            Step(
                "Do not add nodes: CNS could not get the IPs it asked for, so the pod subnet is "
                "out of addresses and new nodes would not get any either (podip.subnet-capacity "
                "says how to free addresses or add a subnet)."
            )
        )
    elif pool is not None and pool.autoscaling:
        steps.append(
            Step(
                f"Let the autoscaler add nodes to {pool.name} (max now {pool.max_count}).",
                f"az aks nodepool update {base} --name {q(pool.name)} --update-cluster-autoscaler "
                f"--min-count {pool.min_count or 1} --max-count {(pool.max_count or pool.count) + 2}",
            )
        )
    elif pool is not None:
        steps.append(
            Step(
                f"Add a node to {pool.name} so pods spread out.",
                f"az aks nodepool scale {base} --name {q(pool.name)} --node-count {pool.count + 1}",
            )
        )
    steps.append(
        Step(
            "maxPods cannot change on an existing pool: for denser nodes add a pool with a "
            "higher --max-pods on the same subnets (name it as you like: lowercase letters and "
            "digits) and move workloads to it. Each node then takes more addresses"
            + (" of the pod CIDR." if ips.mode in ("overlay", "kubenet") else " from its subnet."),
            add_pool_command(ctx, pool, "--max-pods 60"),
        )
    )
    if starved and pool is not None:
        subnet = pool.pod_subnet_id or pool.vnet_subnet_id
        if subnet:
            steps.append(
                Step(
                    "Check how many addresses the pod subnet has left.",
                    f"az network vnet subnet show --ids {q(subnet)} --query addressPrefix -o tsv",
                )
            )
    return steps


CHECKS: tuple[Check, ...] = (
    Check(
        name="podip.allocation_failed",
        scenario=SCENARIO,
        codes=("podip.allocation-failed",),
        fn=allocation_failed,
        needs=("events",),
        uses=("pods", "nodes", "nodenetworkconfigs", CLUSTER),
    ),
    Check(
        name="podip.ip_leak",
        scenario=SCENARIO,
        codes=("podip.ip-leak",),
        fn=ip_leak,
        needs=("events", "pods"),
        uses=("nodenetworkconfigs", "nodes", CLUSTER),
    ),
    Check(
        name="podip.node_ip_exhausted",
        scenario=SCENARIO,
        codes=("podip.node-ip-exhausted",),
        fn=node_ip_exhausted,
        needs=("pods",),
        uses=("events", "nodenetworkconfigs", "nodes", CLUSTER),
    ),
)
