"""service: is the data plane that implements services running on every node — kube-proxy, or
Cilium where it replaces kube-proxy. Windows nodes run kube-proxy as a host service and virtual
nodes run none, so only the DaemonSets' own desired counts are compared with what is ready."""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.service_common import SCENARIO, listing
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER
from diagnostics.snapshot import DaemonSet, Node, Snapshot

SYSTEM = "kube-system"


def _is_kube_proxy(ds: DaemonSet) -> bool:
    return ds.namespace == SYSTEM and ds.name.startswith("kube-proxy")


def _is_cilium(ds: DaemonSet) -> bool:
    return ds.namespace == SYSTEM and ds.name == "cilium"


def cilium_dataplane(snap: Snapshot) -> bool:
    c = snap.cluster
    if c is not None and c.network_dataplane.lower() == "cilium":
        return True
    return any(n.labels.get("kubernetes.azure.com/ebpf-dataplane") == "cilium" for n in snap.nodes)


def _eligible(node: Node, ds: DaemonSet) -> bool:
    """A node the DaemonSet should run on: Linux (unless it selects otherwise), not virtual."""
    if node.virtual:
        return False
    if ds.node_selector:
        return all(node.labels.get(k) == v for k, v in ds.node_selector.items())
    return node.os == "linux"


def _gaps(snap: Snapshot, ds: DaemonSet) -> tuple[list[tuple[str, str]], str]:
    """([(node, why)] for nodes without a ready pod of the DaemonSet, the pods' label selector
    for kubectl)."""
    pods = [
        p
        for p in snap.pods_by_namespace.get(ds.namespace, ())
        if p.owner_kind == "DaemonSet" and p.owner_name == ds.name
    ]
    ready_on = {p.node for p in pods if p.ready}
    label = ""
    for key in ("component", "k8s-app", "app.kubernetes.io/name"):
        if pods and key in pods[0].labels:
            label = f"{key}={pods[0].labels[key]}"
            break
    down = {n.name for n in snap.nodes if not n.ready}
    out = []
    for p in pods:
        if not p.ready and p.node not in ready_on:
            why = p.waiting_reasons[0] if p.waiting_reasons else p.phase
            where = " on a NotReady node" if p.node in down else ""
            out.append((p.node, f"{p.node or 'unscheduled'} ({p.name}: {why}{where})"))
    if snap.has("nodes") and snap.has("pods"):
        have = {p.node for p in pods}
        out += [
            (n.name, f"{n.name} (no pod)")
            for n in snap.nodes
            if _eligible(n, ds) and n.name not in have
        ]
    return out, label


def _alarm(snap: Snapshot, ds: DaemonSet) -> bool:
    """Fewer ready than desired, unless every gap is on a NotReady node: then the node is the
    problem (node-api reports it), not the service proxy."""
    if ds.ready >= ds.desired:
        return False
    gaps, _ = _gaps(snap, ds)
    if not snap.has("nodes") or not gaps:
        return True
    down = {n.name for n in snap.nodes if not n.ready}
    return any(node not in down for node, _ in gaps)


def _nodes(n: int) -> str:
    return f"{n} node{'s' if n != 1 else ''}"


def _finding(ctx: CheckContext, ds: DaemonSet, what: str, replaces: bool) -> Finding:
    snap = ctx.snapshot
    found, label = _gaps(snap, ds)
    gaps = [text for _, text in found]
    evidence = [
        f"DaemonSet {ds.namespace}/{ds.name}: desired {ds.desired}, current {ds.current}, "
        f"ready {ds.ready}, available {ds.available}"
    ]
    if gaps:
        evidence.append(f"nodes without a ready {ds.name} pod: {listing(gaps)}")
    windows = [n.name for n in snap.nodes if n.os == "windows"]
    virtual = [n.name for n in snap.nodes if n.virtual]
    skipped = []
    if windows:
        skipped.append(f"{_nodes(len(windows))} Windows (kube-proxy runs there as a host service)")
    if virtual:
        skipped.append(f"{_nodes(len(virtual))} virtual (they run no kube-proxy)")
    if skipped:
        evidence.append("not counted: " + "; ".join(skipped))
    select = f"-l {q(label)}" if label else f"| grep {q(ds.name)}"
    steps = [
        Step(
            "Compare desired and ready.", f"kubectl get daemonset -n {SYSTEM} {q(ds.name)} -o wide"
        ),
        Step(
            "Find the pods that are not ready and their nodes.",
            f"kubectl get pods -n {SYSTEM} -o wide {select}",
        ),
    ]
    first_node = gaps[0].split(" ", 1)[0] if gaps else ""
    if first_node and first_node != "unscheduled":
        steps.append(
            Step(
                f"Check the node {first_node} itself (conditions, pressure, taints).",
                f"kubectl describe node {q(first_node)}",
            )
        )
    steps.append(
        Step(
            f"{ds.name} is managed by AKS: if its pods stay unready, reconcile the cluster "
            "(an update with no change redeploys the managed components).",
            ctx.az_aks("update", "--yes"),
        )
    )
    return Finding(
        code="service.kube-proxy-unhealthy",
        severity=Severity.WARNING,
        title=f"{what} is not ready on {ds.desired - ds.ready} of {ds.desired} nodes",
        subject=f"daemonset/{ds.namespace}/{ds.name}",
        evidence=tuple(evidence),
        cause=(
            "Cilium replaces kube-proxy here: on a node without a ready agent, service IPs are "
            "not translated and pods there cannot reach services."
            if replaces
            else "kube-proxy programs the iptables/IPVS rules that turn a service IP into pod "
            "IPs; on a node where it does not run, service traffic from that node fails or "
            "goes to stale endpoints."
        ),
        remediation=tuple(steps),
        docs=DOCS["service"],
    )


def kube_proxy(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    proxies = [d for d in snap.daemonsets if _is_kube_proxy(d)]
    for ds in proxies:
        if _alarm(snap, ds):
            what = "kube-proxy" if ds.name == "kube-proxy" else f"kube-proxy ({ds.name})"
            yield _finding(ctx, ds, what, replaces=False)
    if proxies:
        return
    cilium = [d for d in snap.daemonsets if _is_cilium(d)]
    if cilium or cilium_dataplane(snap):
        for ds in cilium:
            if _alarm(snap, ds):
                yield _finding(ctx, ds, "Cilium (which replaces kube-proxy)", replaces=True)
        return
    c = snap.cluster
    if c is not None and c.network_plugin.lower() == "none":
        return  # bring-your-own CNI: it may bring its own service proxy
    linux = [n.name for n in snap.nodes if n.os == "linux" and not n.virtual]
    if not linux:
        return
    yield Finding(
        code="service.kube-proxy-unhealthy",
        severity=Severity.WARNING,
        title="No kube-proxy DaemonSet in kube-system, and no Cilium to replace it",
        subject=f"daemonset/{SYSTEM}/kube-proxy",
        evidence=(
            f"{len(snap.daemonsets)} DaemonSets read; none named kube-proxy* or cilium in {SYSTEM}",
            f"{len(linux)} Linux nodes need a service proxy: {listing(linux)}",
        ),
        cause="Without kube-proxy (or a replacement) service IPs are not translated to pod IPs "
        "and every connection to a ClusterIP service fails.",
        remediation=(
            Step(
                "List the DaemonSets that run on every node.", f"kubectl get daemonsets -n {SYSTEM}"
            ),
            Step(
                "Reconcile the cluster so AKS redeploys its managed components.",
                ctx.az_aks("update", "--yes"),
            ),
        ),
        docs=DOCS["service"],
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="service.kube_proxy",
        scenario=SCENARIO,
        codes=("service.kube-proxy-unhealthy",),
        fn=kube_proxy,
        needs=("daemonsets",),
        uses=("pods", "nodes", CLUSTER),
    ),
)
