"""The snapshot: plain, projected data about one cluster, and the indexes checks use.

Collectors (live or from a folder) build it; checks only read it. Records keep just the fields
the checks use, so that a 150,000-pod cluster fits in a few hundred MB. Times are epoch seconds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from diagnostics.controlplane import AuditLog, DiagnosticSetting
from diagnostics.netpath.model import AzureNetwork, EgressEndpoint

Labels = Mapping[str, str]


# ---------------------------------------------------------------- label selectors
@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()

    def matches(self, labels: Labels) -> bool:
        has = self.key in labels
        if self.operator == "In":
            return has and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not has or labels[self.key] not in self.values
        if self.operator == "Exists":
            return has
        if self.operator == "DoesNotExist":
            return not has
        return False


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A metav1.LabelSelector. The empty selector matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Labels) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.expressions
        )

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.expressions

    def __str__(self) -> str:
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for r in self.expressions:
            if r.operator in ("In", "NotIn"):
                parts.append(f"{r.key} {r.operator.lower()} ({','.join(r.values)})")
            elif r.operator == "Exists":
                parts.append(r.key)
            else:
                parts.append(f"!{r.key}")
        return ",".join(parts)


# ---------------------------------------------------------------- Kubernetes records
@dataclass(slots=True)
class ContainerPort:
    container: str
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(slots=True)
class Pod:
    namespace: str
    name: str
    node: str
    phase: str
    ip: str
    host_network: bool
    labels: dict[str, str]
    ports: tuple[ContainerPort, ...] = ()
    ready: bool = False
    waiting_reasons: tuple[str, ...] = ()  # e.g. CrashLoopBackOff, ImagePullBackOff
    restarts: int = 0
    created: float | None = None
    finished: float | None = None  # latest container termination, for Succeeded/Failed pods
    owner_kind: str = ""
    owner_name: str = ""
    service_account: str = "default"
    deleting: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminated(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(slots=True)
class Event:
    namespace: str
    kind: str  # involvedObject / regarding kind
    name: str
    reason: str
    message: str
    type: str  # Normal or Warning
    count: int
    first: float | None
    last: float | None
    node: str  # source.host / reportingInstance, when given


@dataclass(slots=True)
class Node:
    name: str
    labels: dict[str, str]
    pod_cidrs: tuple[str, ...] = ()
    max_pods: int = 0  # status.allocatable.pods
    ready: bool = False
    internal_ip: str = ""
    unschedulable: bool = False
    created: float | None = None
    provider_id: str = (
        ""  # azure:///subscriptions/.../virtualMachineScaleSets/VMSS/virtualMachines/N
    )

    @property
    def os(self) -> str:
        return self.labels.get("kubernetes.io/os", "linux")

    @property
    def agent_pool(self) -> str:
        return self.labels.get("kubernetes.azure.com/agentpool") or self.labels.get("agentpool", "")

    @property
    def virtual(self) -> bool:
        return self.labels.get("type") == "virtual-kubelet" or "virtual-kubelet" in self.name


@dataclass(slots=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str
    protocol: str = "TCP"


@dataclass(slots=True)
class Service:
    namespace: str
    name: str
    type: str
    cluster_ip: str
    selector: dict[str, str] | None
    ports: tuple[ServicePort, ...] = ()
    publish_not_ready: bool = False
    external_name: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"


@dataclass(slots=True)
class SliceEndpoint:
    addresses: tuple[str, ...]
    ready: bool
    serving: bool
    terminating: bool
    node: str = ""
    target_kind: str = ""
    target_name: str = ""


@dataclass(slots=True)
class EndpointSlice:
    namespace: str
    name: str
    service: str
    address_type: str
    endpoints: tuple[SliceEndpoint, ...]
    ports: tuple[tuple[str, int, str], ...]  # (name, port, protocol)


@dataclass(slots=True)
class EndpointAddress:
    ip: str
    target_name: str = ""
    node: str = ""


@dataclass(slots=True)
class Endpoints:
    namespace: str
    name: str
    ready: tuple[EndpointAddress, ...]
    not_ready: tuple[EndpointAddress, ...]
    ports: tuple[tuple[str, int, str], ...]
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def leader_election(self) -> bool:
        return "control-plane.alpha.kubernetes.io/leader" in self.annotations


@dataclass(frozen=True, slots=True)
class PolicyPort:
    protocol: str
    port: int | str | None  # None: every port
    end_port: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyPeer:
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: str | None = None
    ip_except: tuple[str, ...] = ()
    # Cilium: entities (kube-apiserver, world, cluster, all...) and FQDN names or patterns
    entities: tuple[str, ...] = ()
    fqdns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyRule:
    peers: tuple[PolicyPeer, ...]  # empty: from/to everywhere
    ports: tuple[PolicyPort, ...]  # empty: every port


@dataclass(slots=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    policy_types: tuple[str, ...]
    ingress: tuple[PolicyRule, ...]
    egress: tuple[PolicyRule, ...]
    # NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy (namespace ""), or a
    # Calico kind (read, not evaluated)
    kind: str = "NetworkPolicy"
    ingress_deny: tuple[PolicyRule, ...] = ()  # Cilium ingressDeny / egressDeny: win over allows
    egress_deny: tuple[PolicyRule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def label(self) -> str:
        """`CiliumNetworkPolicy ns/name`; plain `name` for a NetworkPolicy."""
        if self.kind == "NetworkPolicy":
            return self.name
        return f"{self.kind} {self.key if self.namespace else self.name}"


@dataclass(slots=True)
class DaemonSet:
    namespace: str
    name: str
    labels: dict[str, str]
    desired: int
    current: int
    ready: int
    available: int
    node_selector: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class NetworkContainer:
    id: str
    assignment_mode: str
    type: str
    subnet_name: str
    subnet_cidr: str
    ip_count: int
    status: str = ""
    primary_ip: str = ""


@dataclass(slots=True)
class NodeNetworkConfig:
    name: str  # the node's name
    requested: int
    assigned: int
    batch_size: int = 16
    release_threshold_percent: int = 150
    request_threshold_percent: int = 50
    max_ip_count: int = 0
    status: str = ""
    containers: tuple[NetworkContainer, ...] = ()

    @property
    def release_threshold(self) -> int:
        return self.batch_size * self.release_threshold_percent // 100


@dataclass(slots=True)
class Namespace:
    name: str
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A service account's name only (whether `--as NAMESPACE/SA` exists)."""

    namespace: str
    name: str


@dataclass(slots=True)
class ConfigMap:
    namespace: str
    name: str
    data: dict[str, str]


@dataclass(frozen=True, slots=True)
class RbacRule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


@dataclass(slots=True)
class Role:
    namespace: str  # "" for a ClusterRole
    name: str
    rules: tuple[RbacRule, ...]
    labels: dict[str, str] = field(default_factory=dict)
    aggregation: tuple[LabelSelector, ...] = ()  # aggregationRule.clusterRoleSelectors


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    name: str
    namespace: str = ""


@dataclass(slots=True)
class RoleBinding:
    namespace: str  # "" for a ClusterRoleBinding
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]


# ---------------------------------------------------------------- Azure records
@dataclass(slots=True)
class AgentPool:
    name: str
    count: int
    min_count: int | None
    max_count: int | None
    autoscaling: bool
    max_pods: int
    vnet_subnet_id: str
    pod_subnet_id: str
    os_type: str
    mode: str
    vm_size: str
    max_surge: str
    power_state: str
    provisioning_state: str
    pod_ip_allocation_mode: str = ""  # DynamicIndividual / StaticBlock, dynamic pod subnet
    provisioning_error: str = ""  # status.provisioningError: "code: message"
    node_public_ip: bool = False  # enableNodePublicIP: nodes leave from their own public IPs
    node_public_ip_prefix_id: str = ""

    @property
    def max_nodes(self) -> int:
        return max(self.count, self.max_count or 0) if self.autoscaling else self.count

    def surge_nodes(self, nodes: int) -> int:
        """Extra nodes an upgrade adds: maxSurge as a count or a percentage (AKS default: 1)."""
        text = (self.max_surge or "").strip()
        if not text:
            return 1
        if text.endswith("%"):
            pct = int(text[:-1] or 0)
            return max(1, -(-nodes * pct // 100))
        return max(0, int(text))


@dataclass(slots=True)
class ClusterInfo:
    """The projection of the ARM ManagedCluster that checks use."""

    id: str
    name: str
    resource_group: str
    subscription: str
    location: str
    provisioning_state: str
    power_state: str | None
    kubernetes_version: str
    fqdn: str
    private_fqdn: str
    authorized_ip_ranges: tuple[str, ...]
    private_cluster: bool
    private_dns_zone: str
    private_public_fqdn: bool
    run_command_disabled: bool
    vnet_integration: bool
    network_plugin: str
    network_plugin_mode: str
    network_policy: str
    network_dataplane: str
    pod_cidrs: tuple[str, ...]
    service_cidrs: tuple[str, ...]
    dns_service_ip: str
    outbound_type: str
    lb_outbound_ip_ids: tuple[str, ...]
    nat_outbound_ip_ids: tuple[str, ...]
    agent_pools: tuple[AgentPool, ...]
    aad: bool
    local_accounts_disabled: bool
    node_resource_group: str
    provisioning_error: str = ""  # status.provisioningError: "code: message (details)"
    support_plan: str = ""  # KubernetesOfficial or AKSLongTermSupport
    last_modified: float | None = None  # systemData.lastModifiedAt: when the last operation began
    lb_outbound_prefix_ids: tuple[str, ...] = ()  # loadBalancerProfile.outboundIPPrefixes


@dataclass(frozen=True, slots=True)
class KubernetesVersion:
    """One minor version AKS offers in the cluster's region (`az aks get-versions`)."""

    minor: str  # "1.32"
    support_plans: tuple[str, ...] = ()  # KubernetesOfficial, AKSLongTermSupport
    preview: bool = False


# ---------------------------------------------------------------- live-only results
@dataclass(slots=True)
class ProbeResult:
    """What an active probe from where aksdiag runs saw of the API server endpoint."""

    host: str
    port: int
    outcome: str  # ok, dns-failed, tcp-timeout, tcp-refused, tls-failed, http-error
    detail: str
    addresses: tuple[str, ...] = ()
    stages_ms: dict[str, float] = field(default_factory=dict)
    http_status: int | None = None


@dataclass(slots=True)
class AccessReview:
    """One SubjectAccessReview answer for a service account."""

    namespace: str
    service_account: str
    verb: str
    resource: str
    target_namespace: str
    allowed: bool
    reason: str = ""


# ---------------------------------------------------------------- the snapshot
@dataclass
class Snapshot:
    """Everything collected about one cluster, plus what could not be read and why."""

    label: str
    cluster: ClusterInfo | None = None
    pods: list[Pod] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    endpoints: list[Endpoints] = field(default_factory=list)
    endpointslices: list[EndpointSlice] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    networkpolicies: list[NetworkPolicy] = field(default_factory=list)
    ciliumnetworkpolicies: list[NetworkPolicy] = field(default_factory=list)
    ciliumclusterwidenetworkpolicies: list[NetworkPolicy] = field(default_factory=list)
    calico_networkpolicies: list[NetworkPolicy] = field(default_factory=list)
    globalnetworkpolicies: list[NetworkPolicy] = field(default_factory=list)
    daemonsets: list[DaemonSet] = field(default_factory=list)
    nodenetworkconfigs: list[NodeNetworkConfig] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    serviceaccounts: list[ServiceAccount] = field(default_factory=list)
    configmaps: list[ConfigMap] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    rolebindings: list[RoleBinding] = field(default_factory=list)
    clusterroles: list[Role] = field(default_factory=list)
    clusterrolebindings: list[RoleBinding] = field(default_factory=list)
    public_ips: dict[str, str] = field(default_factory=dict)  # lowercased resource id -> IP
    probe: ProbeResult | None = None
    access_reviews: list[AccessReview] = field(default_factory=list)
    # `az aks get-versions --location LOC -o json` (versions.json), None when not read
    kubernetes_versions: list[KubernetesVersion] | None = None
    diagnostic_settings: list[DiagnosticSetting] = field(default_factory=list)
    audit: AuditLog | None = None  # 403/429 rows of the API server's audit log
    network: AzureNetwork | None = None  # arm/: the Azure network path (diagnostics.netpath)
    egress_endpoints: list[EgressEndpoint] | None = None  # egress-endpoints.json
    captured_at: float | None = None  # from snapshot.json, or when a live read finished
    read: list[str] = field(default_factory=list)  # sources that were read
    missing: dict[str, str] = field(default_factory=dict)  # source -> why it could not be read
    path: str = ""  # how it was read: "snapshot DIR", "kubeconfig", "run-command" ...

    def has(self, source: str) -> bool:
        return source in self.read

    # ------------------------------------------------------------ time
    @cached_property
    def now(self) -> float:
        """'Now' for ages and rates: the capture time, else the newest timestamp in the data,
        else the wall clock."""
        if self.data_time is not None:
            return self.data_time
        return time.time()

    @cached_property
    def data_time(self) -> float | None:
        """When the data was true: the capture time, else the newest timestamp in it."""
        if self.captured_at is not None:
            return self.captured_at
        newest = 0.0
        for ev in self.events:
            for t in (ev.last, ev.first):
                if t and t > newest:
                    newest = t
        for pod in self.pods:
            for t in (pod.finished, pod.created):
                if t and t > newest:
                    newest = t
        return newest or None

    # ------------------------------------------------------------ indexes (built once)
    @cached_property
    def nodes_by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def pods_by_node(self) -> dict[str, list[Pod]]:
        out: dict[str, list[Pod]] = defaultdict(list)
        for p in self.pods:
            out[p.node].append(p)
        return dict(out)

    @cached_property
    def pods_by_namespace(self) -> dict[str, list[Pod]]:
        out: dict[str, list[Pod]] = defaultdict(list)
        for p in self.pods:
            out[p.namespace].append(p)
        return dict(out)

    @cached_property
    def pods_by_key(self) -> dict[str, Pod]:
        return {p.key: p for p in self.pods}

    @cached_property
    def _label_index(self) -> dict[str, dict[tuple[str, str], list[int]]]:
        """namespace -> (label key, value) -> positions in pods_by_namespace[namespace]."""
        out: dict[str, dict[tuple[str, str], list[int]]] = {}
        for ns, pods in self.pods_by_namespace.items():
            idx: dict[tuple[str, str], list[int]] = defaultdict(list)
            for i, p in enumerate(pods):
                for kv in p.labels.items():
                    idx[kv].append(i)
            out[ns] = dict(idx)
        return out

    def pods_matching(self, namespace: str, selector: Mapping[str, str]) -> list[Pod]:
        """Pods in `namespace` whose labels include every pair of `selector` (an equality
        selector, as services use). An empty selector matches nothing, as for services."""
        if not selector:
            return []
        pods = self.pods_by_namespace.get(namespace, [])
        idx = self._label_index.get(namespace, {})
        hits: set[int] | None = None
        for kv in sorted(selector.items(), key=lambda kv: len(idx.get(kv, ()))):
            positions = idx.get(kv)
            if not positions:
                return []
            hits = set(positions) if hits is None else hits & set(positions)
            if not hits:
                return []
        return [pods[i] for i in sorted(hits or ())]

    def pods_selected(self, namespace: str, selector: LabelSelector) -> list[Pod]:
        """Pods in `namespace` a full LabelSelector selects (the empty one selects all)."""
        candidates = (
            self.pods_matching(namespace, dict(selector.match_labels))
            if selector.match_labels
            else self.pods_by_namespace.get(namespace, [])
        )
        return [p for p in candidates if selector.matches(p.labels)]

    @cached_property
    def services_by_key(self) -> dict[str, Service]:
        return {s.key: s for s in self.services}

    @cached_property
    def slices_by_service(self) -> dict[str, list[EndpointSlice]]:
        out: dict[str, list[EndpointSlice]] = defaultdict(list)
        for s in self.endpointslices:
            if s.service:
                out[f"{s.namespace}/{s.service}"].append(s)
        return dict(out)

    @cached_property
    def endpoints_by_key(self) -> dict[str, Endpoints]:
        return {f"{e.namespace}/{e.name}": e for e in self.endpoints}

    @cached_property
    def events_by_object(self) -> dict[tuple[str, str, str], list[Event]]:
        """(kind, namespace, name) -> events about that object."""
        out: dict[tuple[str, str, str], list[Event]] = defaultdict(list)
        for e in self.events:
            out[(e.kind, e.namespace if e.kind != "Node" else "", e.name)].append(e)
        return dict(out)

    @cached_property
    def nnc_by_node(self) -> dict[str, NodeNetworkConfig]:
        return {n.name: n for n in self.nodenetworkconfigs}

    @cached_property
    def namespaces_by_name(self) -> dict[str, Namespace]:
        return {n.name: n for n in self.namespaces}

    @cached_property
    def policies_by_namespace(self) -> dict[str, list[NetworkPolicy]]:
        out: dict[str, list[NetworkPolicy]] = defaultdict(list)
        for p in self.networkpolicies:
            out[p.namespace].append(p)
        return dict(out)

    def note_unevaluated(self) -> None:
        """Name Calico policies in `missing` (they were read, not evaluated): checks run, and
        the report says their verdict leaves those policies out."""
        for source, items in (
            ("networkpolicies.crd.projectcalico.org", self.calico_networkpolicies),
            ("globalnetworkpolicies", self.globalnetworkpolicies),
        ):
            if items:
                names = ", ".join(p.key if p.namespace else p.name for p in items[:5])
                self.missing[source] = (
                    f"{len(items)} Calico {items[0].kind}(s) present ({names}"
                    + (" ..." if len(items) > 5 else "")
                    + "): aksdiag does not evaluate Calico policy order and actions, so the "
                    "network-policy verdicts leave them out; check them with `kubectl get "
                    f"{source} -A -o yaml`"
                )

    def events_for(self, kind: str, namespace: str, name: str) -> list[Event]:
        return self.events_by_object.get((kind, namespace if kind != "Node" else "", name), [])
