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

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_path(self) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespace:
            return f"{base}/namespaces/{self.namespace}/{self.name}"
        return f"{base}/{self.name}"


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
    ApiResource("configmaps", "", "v1", "ConfigMap", True, "kube-system"),
    ApiResource("roles", "rbac.authorization.k8s.io", "v1", "Role", True),
    ApiResource("rolebindings", "rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    ApiResource("clusterroles", "rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    ApiResource(
        "clusterrolebindings", "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False
    ),
)

K8S_RESOURCES: dict[str, ApiResource] = {r.name: r for r in _TABLE}

# Sources that are not Kubernetes lists.
CLUSTER = "cluster"  # the ManagedCluster from Azure Resource Manager (cluster.json)
PUBLIC_IPS = "publicips"  # egress public IP resource id -> address
PROBE = "probe"  # the live probe of the API server endpoint
ACCESS_REVIEW = "accessreview"  # SubjectAccessReview answers for --as

NETWORK = "network"  # the Azure network path: VNets, NSGs, routes, firewalls, DNS (arm/)
EGRESS_ENDPOINTS = "egressendpoints"  # the cluster's outbound dependencies (egress-endpoints.json)
PRIVATE_DNS = "privatedns"  # the private DNS part of the network path only (arm/), for apiserver

ALL_SOURCES: tuple[str, ...] = (CLUSTER, PUBLIC_IPS, *K8S_RESOURCES, PROBE, ACCESS_REVIEW, NETWORK,
                                EGRESS_ENDPOINTS, PRIVATE_DNS)  # fmt: skip
