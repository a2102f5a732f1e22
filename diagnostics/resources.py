"""The Kubernetes resources aksdiag reads: one table shared by the collectors, the snapshot
reader, `capture`, and the least-privilege ClusterRole in deploy/ (a test keeps them in step).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiResource:
    name: str  # snapshot file name: k8s/<name>.json
    group: str  # "" for the core group
    version: str
    kind: str
    namespaced: bool
    namespace: str | None = None  # read only in this namespace (None: all namespaces)
    plural: str = ""  # the API's plural when `name` must differ (two kinds share a plural)
    attr: str = ""  # the Snapshot field, when `name` is not an identifier
    engine: str = ""  # a policy engine's kind: absent unless the cluster runs that engine

    @property
    def resource(self) -> str:
        """The plural in API paths and RBAC rules."""
        return self.plural or self.name

    @property
    def field(self) -> str:
        """The Snapshot attribute that holds the projected records."""
        return self.attr or self.name

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_path(self) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespace:
            return f"{base}/namespaces/{self.namespace}/{self.resource}"
        return f"{base}/{self.resource}"


_TABLE = (
    ApiResource("pods", "", "v1", "Pod", True),
    ApiResource("services", "", "v1", "Service", True),
    ApiResource("endpoints", "", "v1", "Endpoints", True),
    ApiResource("endpointslices", "discovery.k8s.io", "v1", "EndpointSlice", True),
    ApiResource("events", "", "v1", "Event", True),
    ApiResource("nodes", "", "v1", "Node", False),
    ApiResource("networkpolicies", "networking.k8s.io", "v1", "NetworkPolicy", True),
    ApiResource("daemonsets", "apps", "v1", "DaemonSet", True),
    ApiResource(
        "nodenetworkconfigs", "acn.azure.com", "v1alpha", "NodeNetworkConfig", True, "kube-system"
    ),
    ApiResource("namespaces", "", "v1", "Namespace", False),
    ApiResource("serviceaccounts", "", "v1", "ServiceAccount", True),  # names only (--as)
    ApiResource("configmaps", "", "v1", "ConfigMap", True, "kube-system"),
    ApiResource("roles", "rbac.authorization.k8s.io", "v1", "Role", True),
    ApiResource("rolebindings", "rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    ApiResource("clusterroles", "rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    ApiResource(
        "clusterrolebindings", "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False
    ),
    # Policy kinds of the engines AKS offers besides NetworkPolicy: Cilium (Azure CNI powered
    # by Cilium) and Calico. A cluster without the engine does not serve them.
    ApiResource(
        "ciliumnetworkpolicies", "cilium.io", "v2", "CiliumNetworkPolicy", True, engine="cilium"
    ),
    ApiResource(
        "ciliumclusterwidenetworkpolicies",
        "cilium.io",
        "v2",
        "CiliumClusterwideNetworkPolicy",
        False,
        engine="cilium",
    ),
    ApiResource(
        "networkpolicies.crd.projectcalico.org",
        "crd.projectcalico.org",
        "v1",
        "NetworkPolicy",
        True,
        plural="networkpolicies",
        attr="calico_networkpolicies",
        engine="calico",
    ),
    ApiResource(
        "globalnetworkpolicies",
        "crd.projectcalico.org",
        "v1",
        "GlobalNetworkPolicy",
        False,
        engine="calico",
    ),
)

K8S_RESOURCES: dict[str, ApiResource] = {r.name: r for r in _TABLE}
POLICY_KINDS = tuple(r.name for r in _TABLE if r.engine)  # read when present, else empty

# Sources that are not Kubernetes lists.
CLUSTER = "cluster"  # the ManagedCluster from Azure Resource Manager (cluster.json)
PUBLIC_IPS = "publicips"  # egress public IP resource id -> address
PROBE = "probe"  # the live probe of the API server endpoint
ACCESS_REVIEW = "accessreview"  # SubjectAccessReview answers for --as
DIAGNOSTIC_SETTINGS = "diagnosticsettings"  # where the cluster's control-plane logs go (ARM)
AUDIT_LOG = "kube-audit"  # 403/429 answers in the API server's audit log (Log Analytics)

NETWORK = "network"  # the Azure network path: VNets, NSGs, routes, firewalls, DNS (arm/)
EGRESS_ENDPOINTS = "egressendpoints"  # the cluster's outbound dependencies (egress-endpoints.json)
PRIVATE_DNS = "privatedns"  # the private DNS part of the network path only (arm/), for apiserver
VERSIONS = "versions"  # the Kubernetes versions AKS offers in the region (versions.json)

ALL_SOURCES: tuple[str, ...] = (CLUSTER, PUBLIC_IPS, *K8S_RESOURCES, PROBE, ACCESS_REVIEW)
ALL_SOURCES += (DIAGNOSTIC_SETTINGS, AUDIT_LOG, NETWORK, EGRESS_ENDPOINTS, PRIVATE_DNS, VERSIONS)
