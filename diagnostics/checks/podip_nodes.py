"""What the pod-ip checks share: allocation failures read from events, per-node IP facts (which
IPAM the node uses, how many IPs it may hold, how many pods hold one), and the commands that
read a node's IPAM store on AKS (run-command, read-only; or a node debug pod).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from diagnostics.checks.base import CheckContext, q
from diagnostics.checks.nodecmd import debug_pod_command, is_windows, run_on_node
from diagnostics.model import Step
from diagnostics.snapshot import AgentPool, Event, Node, NodeNetworkConfig, Pod, Snapshot

SCENARIO = "pod-ip"

# Messages that say the address could not be allocated (SPEC §2), from Azure CNI v1
# ("Failed to allocate address: ... No available addresses"), Azure CNI with CNS
# ("not enough IPs available"), host-local IPAM under kubenet / overlay ("no IP addresses
# available in range set") and Cilium's cluster-pool IPAM ("range is full").
ALLOCATION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(rx, re.IGNORECASE))
    for label, rx in (
        ("Failed to allocate address", r"failed to allocate address"),
        ("No available addresses", r"no available addresses"),
        ("not enough IPs available", r"not enough ips available"),
        ("no IP addresses available in range set", r"no ip addresses available in range set"),
        ("range set is full", r"range (set )?is full"),
    )
)

# Waiting reasons of pods whose sandbox exists: they hold an IP although they do not run.
HOLDING_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "InvalidImageName",
        "PodInitializing",
    }
)

MAX_LISTED = 8
_SANDBOX_PREFIX = re.compile(
    r"^failed (to )?create pod sandbox: rpc error: code = \w+ desc = ", re.IGNORECASE
)


def listing(items: Iterable[str], limit: int = MAX_LISTED) -> str:
    """'a, b, c' or 'a, b, c … and 12 more'."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return f"{shown} … and {len(items) - limit} more" if len(items) > limit else shown


def when(ts: float | None) -> str:
    if ts is None:
        return "unknown time"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def allocation_pattern(message: str) -> str | None:
    for label, rx in ALLOCATION_PATTERNS:
        if rx.search(message):
            return label
    return None


# ---------------------------------------------------------------- allocation failures
@dataclass
class NodeFailures:
    """The allocation failures seen for pods on one node."""

    node: str
    events: list[Event] = field(default_factory=list)
    pods: dict[str, int] = field(default_factory=dict)  # pod key -> occurrences
    patterns: set[str] = field(default_factory=set)

    @property
    def occurrences(self) -> int:
        return sum(e.count for e in self.events)

    @property
    def first(self) -> float | None:
        times = [t for e in self.events if (t := e.first or e.last) is not None]
        return min(times) if times else None

    @property
    def last(self) -> float | None:
        times = [t for e in self.events if (t := e.last or e.first) is not None]
        return max(times) if times else None

    @property
    def sample(self) -> str:
        newest = max(self.events, key=lambda e: e.last or e.first or 0.0)
        text = _SANDBOX_PREFIX.sub("", " ".join(newest.message.split()))
        return text if len(text) <= 400 else text[:399] + "…"


def allocation_failures(
    snapshot: Snapshot, only_node: str | None = None
) -> dict[str, NodeFailures]:
    """Warning events about pods whose message says no address could be allocated, by node
    (the event's reporting host, else the pod's node; "" when neither is known)."""
    out: dict[str, NodeFailures] = {}
    for ev in snapshot.events:
        if ev.type != "Warning" or ev.kind != "Pod":
            continue
        label = allocation_pattern(ev.message)
        if label is None:
            continue
        key = f"{ev.namespace}/{ev.name}"
        pod = snapshot.pods_by_key.get(key)
        node = ev.node or (pod.node if pod else "")
        if only_node is not None and node != only_node:
            continue
        nf = out.setdefault(node, NodeFailures(node))
        nf.events.append(ev)
        nf.pods[key] = nf.pods.get(key, 0) + ev.count
        nf.patterns.add(label)
    return out


# ---------------------------------------------------------------- per-node IP facts
def holds_ip(pod: Pod) -> bool:
    """A pod that holds an address from the node's IPAM: it has a sandbox on the pod network
    (running, or stuck in ImagePullBackOff / CrashLoopBackOff after the sandbox was made)."""
    if pod.host_network or pod.terminated:
        return False
    return bool(pod.ip) or any(r in HOLDING_REASONS for r in pod.waiting_reasons)


@dataclass
class NodeIps:
    """How one node gets pod IPs and how many it holds."""

    name: str
    mode: str  # kubenet, overlay, dynamic (CNS + NNC), node-subnet (Azure CNI v1), unknown
    holding: list[Pod]
    running: int  # holding pods in phase Running
    stuck: list[Pod]  # holding pods that are not running (ImagePullBackOff, CrashLoopBackOff...)
    max_pods: int
    pod_cidr: str = ""
    cidr_size: int = 0  # usable addresses in the node's pod CIDR
    nnc: NodeNetworkConfig | None = None
    pool: AgentPool | None = None

    @property
    def held(self) -> int:
        return len(self.holding)

    @property
    def capacity(self) -> int:
        """How many pod IPs the node may hold now (0: unknown)."""
        if self.mode == "dynamic" and self.nnc is not None:
            return self.nnc.assigned
        if self.mode in ("kubenet", "overlay") and self.cidr_size:
            return self.cidr_size
        if self.mode == "node-subnet":
            return self.max_pods
        return 0

    def count_text(self) -> str:
        text = f"{self.held} non-hostNetwork pods hold an IP ({self.running} running"
        if self.stuck:
            reasons = sorted({r for p in self.stuck for r in p.waiting_reasons})
            text += f", {len(self.stuck)} in {'/'.join(reasons) or 'other states'} hold one too"
        return text + ")"


def cidr_size(cidr: str) -> int:
    """Usable addresses of a pod CIDR: all but the network and broadcast addresses."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return 0
    return max(0, net.num_addresses - 2) if net.version == 4 else net.num_addresses


def pool_of(snapshot: Snapshot, node: Node | None, name: str) -> AgentPool | None:
    c = snapshot.cluster
    if c is None:
        return None
    pool_name = node.agent_pool if node else pool_name_from_node(name)
    return next((p for p in c.agent_pools if p.name == pool_name), None)


_VMSS = re.compile(r"^(aks-([a-z0-9]+)-\d+-vmss)([0-9a-z]{6})$")
_VMAS = re.compile(r"^aks-([a-z0-9]+)-\d+-\d+$")


def pool_name_from_node(name: str) -> str:
    """The agent pool in an AKS node name (scale set or availability set), else ""."""
    m = _VMSS.match(name)
    if m:
        return m.group(2)
    m = _VMAS.match(name)
    return m.group(1) if m else ""


def node_mode(
    snapshot: Snapshot, node: Node | None, nnc: NodeNetworkConfig | None, pool: AgentPool | None
) -> str:
    types = {nc.type.lower() for nc in nnc.containers} if nnc else set()
    if "overlay" in types:
        return "overlay"
    if nnc is not None and ("vnet" in types or "vnetblock" in types or nnc.requested):
        return "dynamic"
    c = snapshot.cluster
    if c is not None and c.network_plugin:
        plugin, mode = c.network_plugin.lower(), c.network_plugin_mode.lower()
        if plugin == "kubenet":
            return "kubenet"
        if plugin == "azure" and mode == "overlay":
            return "overlay"
        if plugin == "azure":
            return "dynamic" if pool is not None and pool.pod_subnet_id else "node-subnet"
        return "unknown"
    if node is not None:
        if node.labels.get("kubernetes.azure.com/podnetwork-type") == "overlay":
            return "overlay"
        if node.pod_cidrs:
            return "kubenet"
    return "unknown"


def node_ips(snapshot: Snapshot, name: str) -> NodeIps:
    node = snapshot.nodes_by_name.get(name)
    nnc = snapshot.nnc_by_node.get(name)
    pool = pool_of(snapshot, node, name)
    holding = [p for p in snapshot.pods_by_node.get(name, ()) if holds_ip(p)]
    running = sum(1 for p in holding if p.phase == "Running" and not p.waiting_reasons)
    stuck = [p for p in holding if p.waiting_reasons]
    v4 = [c for c in (node.pod_cidrs if node else ()) if ":" not in c]
    if not v4 and nnc is not None:  # an overlay network container carries the node's block
        v4 = [
            nc.primary_ip
            for nc in nnc.containers
            if nc.type.lower() == "overlay" and "/" in nc.primary_ip and ":" not in nc.primary_ip
        ]
    max_pods = (node.max_pods if node else 0) or (pool.max_pods if pool else 0)
    return NodeIps(
        name=name,
        mode=node_mode(snapshot, node, nnc, pool),
        holding=holding,
        running=running,
        stuck=stuck,
        max_pods=max_pods,
        pod_cidr=v4[0] if v4 else "",
        cidr_size=cidr_size(v4[0]) if v4 else 0,
        nnc=nnc,
        pool=pool,
    )


MODE_TEXT = {
    "kubenet": "kubenet (host-local IPAM over the node's pod CIDR)",
    "overlay": "Azure CNI Overlay (a /24 of the pod CIDR per node)",
    "dynamic": "Azure CNI with dynamic IP allocation (CNS, NodeNetworkConfig)",
    "node-subnet": "Azure CNI, pod IPs from the node subnet (maxPods IPs reserved per node)",
    "unknown": "unknown network plugin",
}


# ---------------------------------------------------------------- commands
def debug_pod_step(node: str, script: str) -> Step:
    return Step(
        "Or open a debug pod on the node (this creates a privileged pod object that stays until "
        "you delete it), then run `chroot /host` and the same script inside it.",
        debug_pod_command(node),
    )


KUBENET_STORE = (
    "d=/var/lib/cni/networks/$(ls /var/lib/cni/networks | grep -e k8s-pod-network -e kubenet "
    '| head -n 1); ls "$d" | grep -v -e lock -e last_reserved_ip | wc -l'
)
AZURE_CNI_STORE = "grep -o '\"InUse\":true' /var/run/azure-vnet-ipam.json | wc -l"
# Windows nodes keep the Azure CNI store under C:\k and run PowerShell, not a shell.
AZURE_CNI_STORE_WINDOWS = (
    "(Select-String -Path C:\\k\\azure-vnet-ipam.json -Pattern '\"InUse\":true' -AllMatches)"
    ".Matches.Count"
)


def running_pod_ips(node: str) -> str:
    """The article's count of pod IPs on a node, with the jq filter written so it works."""
    selector = q(f"spec.nodeName={node},status.phase=Running")
    return (
        f"kubectl get pods -A --field-selector {selector} -o json | "
        "jq -r '.items[] | select(.spec.hostNetwork != true) | .status.podIP' | wc -l"
    )


def holding_pods_cmd(node: str) -> str:
    """Every pod on the node that is not finished (ImagePullBackOff pods hold an IP too)."""
    selector = q(f"spec.nodeName={node},status.phase!=Succeeded,status.phase!=Failed")
    return f"kubectl get pods -A -o wide --field-selector {selector}"


def nnc_cmd(node: str | None = None) -> str:
    return (
        f"kubectl get nnc -n kube-system {q(node)} -o wide"
        if node
        else ("kubectl get nnc -n kube-system -o wide")
    )


def cns_assigned_cmd(node: str) -> str:
    """CNS's own list of the IPs it considers assigned on the node (kubectl exec, read-only)."""
    pod = (
        "$(kubectl get pods -n kube-system -l k8s-app=azure-cns "
        f"--field-selector {q('spec.nodeName=' + node)} -o name)"
    )
    body = q('{"IPConfigStateFilter":["Assigned"]}')
    return f'kubectl exec -n kube-system "{pod}" -- curl -s localhost:10090/debug/ipaddresses -d {body}'


def ipam_store_steps(ctx: CheckContext, ips: NodeIps) -> list[Step]:
    """The article's comparison for the node's IPAM, with the node filled in and corrected."""
    node = ips.name
    steps: list[Step] = []
    if ips.mode in ("dynamic", "overlay") or ips.nnc is not None:
        steps.append(
            Step("Compare the IPs CNS holds for the node (ALLOCATED IPS) ...", nnc_cmd(node))
        )
        steps.append(
            Step(
                "... with the IPs CNS itself considers assigned to pods on that node.",
                cns_assigned_cmd(node),
            )
        )
    else:
        script = KUBENET_STORE if ips.mode == "kubenet" else AZURE_CNI_STORE
        where = (
            "files under /var/lib/cni/networks/kubenet, or k8s-pod-network with Calico"
            if ips.mode == "kubenet"
            else "/var/run/azure-vnet-ipam.json"
        )
        steps.append(
            Step(
                f"Count the IPs the node's IPAM store holds ({where}); run-command is read-only.",
                run_on_node(
                    ctx, node, script, AZURE_CNI_STORE_WINDOWS if ips.mode != "kubenet" else None
                ),
            )
        )
        if not is_windows(ctx, node):
            steps.append(debug_pod_step(node, script))
    steps.append(
        Step(
            "Count the running pods' IPs on the node (non-hostNetwork) to compare.",
            running_pod_ips(node),
        )
    )
    steps.append(
        Step(
            "Pods in ImagePullBackOff or CrashLoopBackOff hold an IP too: list every unfinished "
            "pod on the node.",
            holding_pods_cmd(node),
        )
    )
    return steps
