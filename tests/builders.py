"""Builders for kubectl-shaped and az-shaped JSON, to make snapshot folders in tests.

Objects carry the fields real `kubectl get X -A -o json` output carries (metadata with uid,
resourceVersion, creationTimestamp; status blocks), so checks are tested against real shapes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

T0 = "2026-11-20T08:00:00Z"
SUB = "00000000-0000-0000-0000-000000000000"


def meta(
    name: str,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    created: str = T0,
    **extra: Any,
) -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{name}")),
        "resourceVersion": "1000",
        "creationTimestamp": created,
    }
    if namespace is not None:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    m.update(extra)
    return m


def klist(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def pod(
    name: str,
    namespace: str = "default",
    node: str = "aks-nodepool1-12345678-vmss000000",
    ip: str = "10.244.0.10",
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    ready: bool = True,
    ports: list[tuple[str, int]] | None = None,
    host_network: bool = False,
    waiting: str | None = None,
    restarts: int = 0,
    created: str = T0,
    finished: str | None = None,
    owner: tuple[str, str] | None = None,
    service_account: str = "default",
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "mcr.microsoft.com/example/app:1.0"}
    if ports:
        container["ports"] = [
            {"name": pname, "containerPort": p, "protocol": "TCP"}
            if pname
            else {"containerPort": p, "protocol": "TCP"}
            for pname, p in ports
        ]
    state: dict[str, Any]
    if waiting:
        state = {"waiting": {"reason": waiting, "message": f"back-off ({waiting})"}}
    elif phase in ("Succeeded", "Failed"):
        state = {
            "terminated": {
                "exitCode": 0 if phase == "Succeeded" else 1,
                "reason": "Completed" if phase == "Succeeded" else "Error",
                "startedAt": created,
                "finishedAt": finished or created,
            }
        }
    elif phase == "Running":
        state = {"running": {"startedAt": created}}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    m = meta(name, namespace, labels, created)
    if owner:
        m["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": str(uuid.uuid4()),
                "controller": True,
            }
        ]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Ready", "status": "True" if ready and phase == "Running" else "False"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [
            {
                "name": "app",
                "ready": ready and phase == "Running",
                "restartCount": restarts,
                "state": state,
                "image": container["image"],
            }
        ],
        "hostIP": "10.224.0.4",
        "startTime": created,
        "qosClass": "BestEffort",
    }
    if ip and phase in ("Running", "Pending") and (phase == "Running" or waiting):
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    spec: dict[str, Any] = {
        "containers": [container],
        "nodeName": node,
        "serviceAccountName": service_account,
        "restartPolicy": "Always",
    }
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": spec, "status": status}


def node(
    name: str = "aks-nodepool1-12345678-vmss000000",
    pool: str = "nodepool1",
    pod_cidr: str | None = None,
    max_pods: int = 30,
    ready: bool = True,
    ip: str = "10.224.0.4",
    os: str = "linux",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    lab = {
        "agentpool": pool,
        "kubernetes.azure.com/agentpool": pool,
        "kubernetes.io/os": os,
        "kubernetes.io/hostname": name,
        "kubernetes.azure.com/mode": "system",
    }
    lab.update(labels or {})
    spec: dict[str, Any] = {
        "providerID": f"azure:///subscriptions/{SUB}/resourceGroups/mc_rg/providers/Microsoft.Compute/virtualMachineScaleSets/aks-{pool}/virtualMachines/0"
    }
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(name, None, lab),
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "allocatable": {"cpu": "3860m", "memory": "12000000Ki", "pods": str(max_pods)},
            "capacity": {"cpu": "4", "memory": "16000000Ki", "pods": str(max_pods)},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                }
            ],
            "nodeInfo": {"kubeletVersion": "v1.35.2", "osImage": "Ubuntu 22.04.5 LTS"},
        },
    }


def service(
    name: str,
    namespace: str = "default",
    selector: dict[str, str] | None = None,
    ports: list[tuple[str, int, int | str]] | None = None,
    cluster_ip: str = "10.0.120.15",
    type: str = "ClusterIP",
    publish_not_ready: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": type,
        "clusterIP": cluster_ip,
        "clusterIPs": [cluster_ip],
        "ports": [
            {"name": n, "port": p, "targetPort": t, "protocol": "TCP"}
            for n, p, t in (ports or [("http", 80, 8080)])
        ],
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
    }
    if selector is not None:
        spec["selector"] = selector
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, namespace),
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def endpointslice(
    service_name: str,
    namespace: str = "default",
    endpoints: list[tuple[str, bool, str]] | None = None,
    ports: list[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """endpoints: (ip, ready, pod name)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "metadata": meta(
            f"{service_name}-abcde",
            namespace,
            {
                "kubernetes.io/service-name": service_name,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        ),
        "endpoints": [
            {
                "addresses": [ip],
                "conditions": {"ready": r, "serving": r, "terminating": False},
                "nodeName": "aks-nodepool1-12345678-vmss000000",
                "targetRef": {"kind": "Pod", "name": pname, "namespace": namespace},
            }
            for ip, r, pname in (endpoints or [])
        ],
        "ports": [
            {"name": n, "port": p, "protocol": "TCP"} for n, p in (ports or [("http", 8080)])
        ],
    }


def endpoints(
    name: str,
    namespace: str = "default",
    ready: list[str] | None = None,
    not_ready: list[str] | None = None,
    port: int = 443,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    subset: dict[str, Any] = {"ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = [{"ip": ip} for ip in ready]
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    m = meta(name, namespace)
    if annotations:
        m["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": m,
        "subsets": [subset] if (ready or not_ready) else [],
    }


def event(
    reason: str,
    message: str,
    kind: str = "Pod",
    name: str = "web-0",
    namespace: str = "default",
    count: int = 1,
    type: str = "Warning",
    first: str = T0,
    last: str | None = None,
    host: str = "",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta(f"{name}.{uuid.uuid4().hex[:16]}", namespace, created=first),
        "involvedObject": {"apiVersion": "v1", "kind": kind, "name": name, "namespace": namespace},
        "reason": reason,
        "message": message,
        "type": type,
        "count": count,
        "firstTimestamp": first,
        "lastTimestamp": last or first,
        "source": {"component": "kubelet", "host": host} if host else {"component": "kubelet"},
        "reportingComponent": "kubelet",
        "reportingInstance": host,
    }


def nnc(
    node_name: str,
    requested: int = 32,
    assigned: int = 32,
    ips: int | None = None,
    subnet: str = "10.240.0.0/16",
    nc_status: str = "",
    batch: int = 16,
) -> dict[str, Any]:
    count = assigned if ips is None else ips
    return {
        "apiVersion": "acn.azure.com/v1alpha",
        "kind": "NodeNetworkConfig",
        "metadata": meta(node_name, "kube-system"),
        "spec": {"requestedIPCount": requested},
        "status": {
            "assignedIPCount": assigned,
            "scaler": {
                "batchSize": batch,
                "releaseThresholdPercent": 150,
                "requestThresholdPercent": 50,
                "maxIPCount": 250,
            },
            "networkContainers": [
                {
                    "id": "559e239d-f744-4f84-bbe0-c7c6fd12ec17",
                    "assignmentMode": "dynamic",
                    "type": "vnet",
                    "subnetName": "podsubnet",
                    "subnetAddressSpace": subnet,
                    "version": 1,
                    "primaryIP": "10.240.0.4",
                    "status": nc_status,
                    "ipAssignments": [
                        {"name": str(uuid.uuid4()), "ip": f"10.240.1.{i % 250}"}
                        for i in range(count)
                    ],
                }
            ],
        },
    }


def agent_pool(**overrides: Any) -> dict[str, Any]:
    """One agent pool profile as `az aks show` prints it: a 3-node Linux system pool."""
    base: dict[str, Any] = {
        "name": "nodepool1",
        "count": 3,
        "vmSize": "Standard_D4ds_v5",
        "maxPods": 30,
        "osType": "Linux",
        "mode": "System",
        "enableAutoScaling": False,
        "type": "VirtualMachineScaleSets",
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
    }
    return base | overrides


def az_cluster(name: str = "prod", rg: str = "rg-prod", **overrides: Any) -> dict[str, Any]:
    """`az aks show -o json` shape (flattened, az spellings)."""
    body: dict[str, Any] = {
        "id": f"/subscriptions/{SUB}/resourcegroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}",
        "name": name,
        "location": "westeurope",
        "resourceGroup": rg,
        "type": "Microsoft.ContainerService/ManagedClusters",
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
        "kubernetesVersion": "1.35.2",
        "currentKubernetesVersion": "1.35.2",
        "dnsPrefix": f"{name}-dns",
        "fqdn": f"{name}-dns-abc123.hcp.westeurope.azmk8s.io",
        "azurePortalFqdn": f"{name}-dns-abc123.portal.hcp.westeurope.azmk8s.io",
        "nodeResourceGroup": f"MC_{rg}_{name}_westeurope",
        "apiServerAccessProfile": None,
        "networkProfile": {
            "networkPlugin": "azure",
            "networkPluginMode": "overlay",
            "networkPolicy": None,
            "networkDataplane": "azure",
            "podCidr": "10.244.0.0/16",
            "serviceCidr": "10.0.0.0/16",
            "dnsServiceIp": "10.0.0.10",
            "outboundType": "loadBalancer",
            "loadBalancerSku": "standard",
            "loadBalancerProfile": {
                "managedOutboundIPs": {"count": 1},
                "effectiveOutboundIPs": [
                    {
                        "id": f"/subscriptions/{SUB}/resourceGroups/MC_{rg}_{name}_westeurope/providers/Microsoft.Network/publicIPAddresses/egress-1",
                        "resourceGroup": f"MC_{rg}_{name}_westeurope",
                    }
                ],
            },
            "podCidrs": ["10.244.0.0/16"],
            "serviceCidrs": ["10.0.0.0/16"],
            "ipFamilies": ["IPv4"],
        },
        "agentPoolProfiles": [agent_pool(vnetSubnetId=None, upgradeSettings={"maxSurge": "10%"})],
        "aadProfile": None,
        "disableLocalAccounts": False,
    }
    body.update(overrides)
    return body


def write_snapshot(
    folder: Path,
    cluster: dict[str, Any] | None = None,
    public_ips: dict[str, str] | None = None,
    captured_at: str | None = None,
    **resources: list[dict[str, Any]],
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if cluster is not None:
        (folder / "cluster.json").write_text(json.dumps(cluster, indent=2))
    if public_ips is not None:
        (folder / "publicips.json").write_text(json.dumps(public_ips, indent=2))
    if captured_at:
        (folder / "snapshot.json").write_text(
            json.dumps({"capturedAt": captured_at, "source": "test"})
        )
    if resources:
        (folder / "k8s").mkdir(exist_ok=True)
        for name, items in resources.items():
            (folder / "k8s" / f"{name}.json").write_text(json.dumps(klist(items), indent=2))
    return folder


# ---------------------------------------------------------------- node-api builders
def kubernetes_api(
    address: str = "203.0.113.10", port: int = 443, cluster_ip: str = "10.0.0.1", ready: bool = True
) -> dict[str, Any]:
    """default/kubernetes as the API server writes it: the Service, its EndpointSlice named
    `kubernetes` and the v1 Endpoints. Pass as `write_snapshot(..., **kubernetes_api())`."""
    svc = service("kubernetes", "default", None, [("https", 443, 443)], cluster_ip)
    svc["metadata"]["labels"] = {"component": "apiserver", "provider": "kubernetes"}
    eps_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "addressType": "IPv4",
        "metadata": meta("kubernetes", "default", {"kubernetes.io/service-name": "kubernetes"}),
        "endpoints": [{"addresses": [address], "conditions": {"ready": ready}}]
        if address
        else None,
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    eps = endpoints(
        "kubernetes",
        "default",
        ready=[address] if address and ready else None,
        not_ready=[address] if address and not ready else None,
        port=port,
    )
    return {"services": [svc], "endpointslices": [eps_slice], "endpoints": [eps]}


def networkpolicy(
    name: str,
    namespace: str = "default",
    pod_selector: dict[str, Any] | None = None,
    egress: list[dict[str, Any]] | None = None,
    ingress: list[dict[str, Any]] | None = None,
    policy_types: list[str] | None = None,
) -> dict[str, Any]:
    """Rules are given in their Kubernetes shape, e.g. {"to": [{"ipBlock": {"cidr": ...}}],
    "ports": [{"protocol": "TCP", "port": 443}]}."""
    spec: dict[str, Any] = {"podSelector": pod_selector or {}}
    if policy_types is not None:
        spec["policyTypes"] = policy_types
    if egress is not None:
        spec["egress"] = egress
    if ingress is not None:
        spec["ingress"] = ingress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name, namespace),
        "spec": spec,
    }


def serviceaccount(name: str, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name, namespace)}


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    lab = {"kubernetes.io/metadata.name": name, **(labels or {})}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta(name, None, lab),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def configmap(name: str, data: dict[str, str], namespace: str = "kube-system") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(name, namespace),
        "data": data,
    }


def daemonset(
    name: str,
    namespace: str = "kube-system",
    desired: int = 3,
    ready: int | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    ready = desired if ready is None else ready
    sel = labels or {"k8s-app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta(name, namespace, sel),
        "spec": {
            "selector": {"matchLabels": sel},
            "template": {"metadata": {"labels": sel}, "spec": {"containers": [{"name": name}]}},
        },
        "status": {
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": desired,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": desired,
            "numberMisscheduled": 0,
            "observedGeneration": 1,
        },
    }


def rbac_rule(
    verbs: list[str],
    resources: list[str] | None = None,
    groups: list[str] | None = None,
    urls: list[str] | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    if urls:
        return {"verbs": verbs, "nonResourceURLs": urls}
    rule: dict[str, Any] = {
        "apiGroups": groups if groups is not None else [""],
        "resources": resources or [],
        "verbs": verbs,
    }
    if names:
        rule["resourceNames"] = names
    return rule


def role(
    name: str,
    rules: list[dict[str, Any]],
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    aggregate: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A Role (with namespace) or a ClusterRole; `aggregate`: matchLabels of an aggregationRule."""
    body: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role" if namespace else "ClusterRole",
        "metadata": meta(name, namespace, labels),
        "rules": rules,
    }
    if aggregate is not None:
        body["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": m} for m in aggregate]}
    return body


def binding(
    name: str,
    role_name: str,
    subjects: list[dict[str, str]],
    namespace: str | None = None,
    role_kind: str = "ClusterRole",
) -> dict[str, Any]:
    """A RoleBinding (with namespace) or a ClusterRoleBinding. Subjects in their Kubernetes
    shape: {"kind": "ServiceAccount", "name": "x", "namespace": "y"} or {"kind": "Group", ...}."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": meta(name, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [
            dict(s, apiGroup="rbac.authorization.k8s.io")
            if s["kind"] != "ServiceAccount"
            else dict(s)
            for s in subjects
        ],
    }


# ---------------------------------------------------------------- pod-ip / service builders
def event_v1(
    reason: str,
    message: str,
    kind: str = "Pod",
    name: str = "web-0",
    namespace: str = "default",
    count: int = 1,
    type: str = "Warning",
    first: str = T0,
    last: str | None = None,
    host: str = "",
) -> dict[str, Any]:
    """An events.k8s.io/v1 Event (regarding, note, series, reportingInstance), as
    `kubectl get events.v1.events.k8s.io -A -o json` writes it."""
    body: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": meta(f"{name}.{uuid.uuid4().hex[:16]}", namespace, created=first),
        "eventTime": first.replace("Z", ".000000Z"),
        "action": "None",
        "regarding": {"apiVersion": "v1", "kind": kind, "name": name, "namespace": namespace},
        "reason": reason,
        "note": message,
        "type": type,
        "reportingController": "kubelet",
        "reportingInstance": host,
    }
    if count > 1:
        body["series"] = {
            "count": count,
            "lastObservedTime": (last or first).replace("Z", ".000000Z"),
        }
    return body


def cilium_policy(
    name: str,
    namespace: str | None = "default",
    endpoint_selector: dict[str, Any] | None = None,
    **rules: Any,
) -> dict[str, Any]:
    """A CiliumNetworkPolicy (namespace None: a CiliumClusterwideNetworkPolicy); `rules` are
    spec keys in Cilium's shape: ingress, egress, ingressDeny, egressDeny, enableDefaultDeny."""
    kind = "CiliumNetworkPolicy" if namespace else "CiliumClusterwideNetworkPolicy"
    spec = {"endpointSelector": endpoint_selector or {}, **rules}
    return {
        "apiVersion": "cilium.io/v2",
        "kind": kind,
        "metadata": meta(name, namespace),
        "spec": spec,
    }


def calico_policy(name: str, namespace: str | None = "default") -> dict[str, Any]:
    """A Calico NetworkPolicy (namespace None: a GlobalNetworkPolicy), crd.projectcalico.org."""
    kind = "NetworkPolicy" if namespace else "GlobalNetworkPolicy"
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": kind,
        "metadata": meta(name, namespace),
        "spec": {
            "selector": "app == 'web'",
            "types": ["Egress"],
            "order": 100,
            "egress": [{"action": "Deny"}],
        },
    }
