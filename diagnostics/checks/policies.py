"""Which policies select a pod, across the kinds aksdiag evaluates: `networking.k8s.io`
NetworkPolicy and Cilium's CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy (projected to
the same record by diagnostics.policy_projection). Calico policies are read but not evaluated;
the snapshot names them in `missing`, so every report that uses policies says so."""

from __future__ import annotations

from diagnostics.checks.base import q
from diagnostics.snapshot import NetworkPolicy, Pod, Snapshot

NS_LABEL = "io.kubernetes.pod.namespace"
CILIUM_KINDS = {
    "CiliumNetworkPolicy": "ciliumnetworkpolicies",
    "CiliumClusterwideNetworkPolicy": "ciliumclusterwidenetworkpolicies",
}


def evaluated(snap: Snapshot) -> list[NetworkPolicy]:
    return [
        *snap.networkpolicies,
        *snap.ciliumnetworkpolicies,
        *snap.ciliumclusterwidenetworkpolicies,
    ]


def for_namespace(snap: Snapshot, namespace: str) -> list[NetworkPolicy]:
    """Policies that may select pods in `namespace`: its own, and the clusterwide ones."""
    return [p for p in evaluated(snap) if p.namespace in (namespace, "")]


def namespaces_with_policies(snap: Snapshot) -> list[str]:
    pols = evaluated(snap)
    if any(not p.namespace for p in pols):
        return sorted(snap.pods_by_namespace)
    return sorted({p.namespace for p in pols})


def selects(policy: NetworkPolicy, pod: Pod) -> bool:
    if policy.namespace and policy.namespace != pod.namespace:
        return False
    if policy.kind == "NetworkPolicy":
        return policy.pod_selector.matches(pod.labels)
    return policy.pod_selector.matches({**pod.labels, NS_LABEL: pod.namespace})


def policy_docs(policies: list[NetworkPolicy]) -> str:
    """The AKS page the verdict rests on: Cilium's when Cilium policies take part."""
    if any(p.kind in CILIUM_KINDS for p in policies):
        return "https://learn.microsoft.com/en-us/azure/aks/azure-cni-powered-by-cilium"
    return "https://learn.microsoft.com/en-us/azure/aks/use-network-policies"


def read_commands(policies: list[NetworkPolicy], namespace: str) -> list[str]:
    """`kubectl get ... -o yaml` for each kind among `policies`."""
    out = []
    kinds = {p.kind for p in policies}
    if "NetworkPolicy" in kinds:
        out.append(f"kubectl get networkpolicies --namespace {q(namespace)} -o yaml")
    if "CiliumNetworkPolicy" in kinds:
        out.append(f"kubectl get ciliumnetworkpolicies --namespace {q(namespace)} -o yaml")
    if "CiliumClusterwideNetworkPolicy" in kinds:
        out.append("kubectl get ciliumclusterwidenetworkpolicies -o yaml")
    return out
