"""Synthetic big clusters for the benchmarks, in the real kubectl / az shapes.

`write_cluster(folder, nodes, pods_per_node)` writes a snapshot folder; `objects(...)` yields
the same objects for the Kubernetes API emulator. Deterministic: the same arguments give the
same cluster, byte for byte.

Pods carry what pods of a real cluster carry besides the fields the checks read: the projected
service account volume, resources, env, tolerations, every condition with its transition time,
container and image ids (not managed fields, which `kubectl -o json` does not print either). A
pod is ~3 KB of compact JSON (30,000 pods: 93 MB; the lists behind the reference figures in the
benchmark issue had 81 MB), so parsing costs about what it costs on a real cluster.
"""

from __future__ import annotations

import functools
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from builders import (
    SUB,
    az_cluster,
    daemonset,
    endpointslice,
    event,
    kubernetes_api,
    nnc,
    node,
    pod,
    service,
)

NAMESPACES = 50
APPS = 20  # per namespace, each with a service
CREATED = "2026-11-19T22:14:07Z"
STARTED = "2026-11-19T22:14:12Z"
IMAGE = "mcr.microsoft.com/example/app:1.0"
IMAGE_ID = "mcr.microsoft.com/example/app@sha256:" + "4f0c" * 16

# Shared, never mutated: the parts every pod of a ReplicaSet has in common.
_TOLERATIONS = [
    {
        "effect": "NoExecute",
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "tolerationSeconds": 300,
    },
    {
        "effect": "NoExecute",
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "tolerationSeconds": 300,
    },
]
_RESOURCES = {
    "limits": {"cpu": "500m", "memory": "512Mi"},
    "requests": {"cpu": "100m", "memory": "128Mi"},
}
_ENV = [
    {"name": "ASPNETCORE_URLS", "value": "http://+:8080"},
]


def _node_name(i: int) -> str:
    return f"aks-pool{i // 1000:02d}-38214757-vmss{i % 1000:06x}"


def _node_ip(i: int) -> str:
    return f"10.{224 + i // 65536}.{(i // 256) % 256}.{i % 256}"


def _uid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


@functools.lru_cache(maxsize=NAMESPACES * APPS + 8)
def _rs_uid(namespace: str, app: str) -> str:
    return _uid(namespace, app, "rs")


def _realistic(p: dict[str, Any], k: int, host_ip: str, rs_uid: str) -> dict[str, Any]:
    """Give a builder's pod the bulk a real one has (fields the checks do not read)."""
    meta, spec, status = p["metadata"], p["spec"], p["status"]
    meta["creationTimestamp"] = CREATED
    meta["generateName"] = meta["name"].rsplit("-", 1)[0] + "-"
    meta["ownerReferences"][0].update(uid=rs_uid, blockOwnerDeletion=True)
    vol = f"kube-api-access-{k % 100000:05x}"
    container = spec["containers"][0]
    container.update(
        env=_ENV,
        resources=_RESOURCES,
        imagePullPolicy="IfNotPresent",
        terminationMessagePath="/dev/termination-log",
        terminationMessagePolicy="File",
        volumeMounts=[
            {
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "name": vol,
                "readOnly": True,
            }
        ],
    )
    spec.update(
        dnsPolicy="ClusterFirst",
        enableServiceLinks=True,
        preemptionPolicy="PreemptLowerPriority",
        priority=0,
        schedulerName="default-scheduler",
        securityContext={},
        serviceAccount="default",
        terminationGracePeriodSeconds=30,
        tolerations=_TOLERATIONS,
        volumes=[
            {
                "name": vol,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                "name": "kube-root-ca.crt",
                            }
                        },
                    ],
                },
            }
        ],
    )
    status["conditions"] = [
        {"lastProbeTime": None, "lastTransitionTime": STARTED, "status": "True", "type": t}
        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    cs = status["containerStatuses"][0]
    cs.update(
        containerID=f"containerd://{uuid.UUID(int=k * 7919 + 1).hex}{k:032x}",
        imageID=IMAGE_ID,
        lastState={},
        started=True,
        state={"running": {"startedAt": STARTED}},
    )
    status.update(hostIP=host_ip, hostIPs=[{"ip": host_ip}], startTime=CREATED)
    return p


def _namespaces(nodes: int) -> int:
    """One team namespace per 20 nodes, at most NAMESPACES."""
    return max(1, min(NAMESPACES, nodes // 20))


def _app_pod(k: int, per_node: int, namespaces: int) -> tuple[str, str, str, int]:
    """The k-th application pod: (namespace, app, pod IP, node index). Apps are spread over
    the namespaces so that every service selects pods of its own namespace."""
    return (
        f"team-{k % namespaces:02d}",
        f"app-{(k // namespaces) % APPS:02d}",
        f"10.{(k >> 16) % 256 + 16}.{(k >> 8) % 256}.{k % 256}",
        k // per_node,
    )


def pod_count(nodes: int, pods_per_node: int = 30) -> int:
    """How many pods `objects` yields: kube-proxy and the application pods on every node, plus
    the two tunnel agents."""
    return nodes * (1 + max(1, pods_per_node - 1)) + min(2, nodes)


def objects(nodes: int, pods_per_node: int = 30) -> dict[str, Iterator[dict[str, Any]]]:
    """Generators of objects per resource name: a mostly healthy cluster where IP allocation
    fails on every 50th node (the Warning events an incident leaves). Every node runs
    kube-proxy and `pods_per_node - 1` application pods, the first two also the API server
    tunnel's agents; a team namespace per 20 nodes (at most 50) with 20 services, each
    selecting its own app's pods, with endpoint slices of up to 100 endpoints; dynamic pod IP
    allocation with a NodeNetworkConfig per node."""
    per_node = max(1, pods_per_node - 1)  # application pods per node, besides kube-proxy
    app_pods = nodes * per_node
    spaces = _namespaces(nodes)

    def gen_nodes() -> Iterator[dict[str, Any]]:
        for i in range(nodes):
            yield node(
                _node_name(i),
                pool=f"pool{i // 1000:02d}",
                max_pods=pods_per_node + 10,
                ip=_node_ip(i),
            )

    def gen_pods() -> Iterator[dict[str, Any]]:
        ds_uid = _uid("kube-system", "kube-proxy", "ds")
        for i in range(nodes):
            n, host_ip = _node_name(i), _node_ip(i)
            proxy = pod(
                f"kube-proxy-{i:05x}",
                "kube-system",
                node=n,
                ip=host_ip,
                labels={"k8s-app": "kube-proxy", "controller-revision-hash": "5c8f7b9d6"},
                host_network=True,
                owner=("DaemonSet", "kube-proxy"),
            )
            yield _realistic(proxy, app_pods + i, host_ip, ds_uid)
            if i < 2:  # the API server tunnel's agents run on the first two nodes
                agent = pod(
                    f"konnectivity-agent-6b9c4d7f58-{i:05x}",
                    "kube-system",
                    node=n,
                    ip=f"10.15.0.{i + 10}",
                    labels={"app": "konnectivity-agent"},
                    owner=("ReplicaSet", "konnectivity-agent-6b9c4d7f58"),
                )
                yield _realistic(
                    agent, app_pods + nodes + i, host_ip, _rs_uid("kube-system", "konnectivity")
                )
            for k in range(i * per_node, (i + 1) * per_node):
                ns, app, ip, _ = _app_pod(k, per_node, spaces)
                p = pod(
                    f"{app}-7d9f8b6c4-{k:06x}",
                    ns,
                    node=n,
                    ip=ip,
                    labels={"app": app, "pod-template-hash": "7d9f8b6c4", "tier": "web"},
                    ports=[("http", 8080)],
                    owner=("ReplicaSet", f"{app}-7d9f8b6c4"),
                )
                yield _realistic(p, k, host_ip, _rs_uid(ns, app))

    def gen_services() -> Iterator[dict[str, Any]]:
        yield from kubernetes_api()["services"]
        for ns_i in range(spaces):
            for a in range(APPS):
                yield service(
                    f"app-{a:02d}",
                    f"team-{ns_i:02d}",
                    selector={"app": f"app-{a:02d}"},
                    ports=[("http", 80, "http")],
                    cluster_ip=f"10.0.{ns_i}.{a + 10}",
                )

    def gen_slices() -> Iterator[dict[str, Any]]:
        yield from kubernetes_api()["endpointslices"]
        for ns_i in range(spaces):
            for a in range(APPS):
                ks = range(ns_i + spaces * a, app_pods, spaces * APPS)
                for chunk in range(0, max(len(ks), 1), 100):  # 100 endpoints per slice at most
                    s = endpointslice(
                        f"app-{a:02d}",
                        f"team-{ns_i:02d}",
                        endpoints=[
                            (
                                _app_pod(k, per_node, spaces)[2],
                                True,
                                f"app-{a:02d}-7d9f8b6c4-{k:06x}",
                            )
                            for k in ks[chunk : chunk + 100]
                        ],
                    )
                    s["metadata"]["name"] = f"app-{a:02d}-{chunk // 100:05x}"
                    for e, k in zip(s["endpoints"], ks[chunk : chunk + 100], strict=True):
                        e["nodeName"] = _node_name(k // per_node)
                    yield s

    def gen_events() -> Iterator[dict[str, Any]]:
        for i in range(0, nodes, 50):
            e = event(
                "FailedCreatePodSandBox",
                "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network "
                'for sandbox: plugin type="azure-vnet" failed (add): IPAM Invoker Add failed with error: '
                "Failed to get IP address from CNS with error: %w: AllocateIPConfig failed: not enough IPs "
                "available, waiting on Azure CNS to allocate more",
                name=f"app-01-7d9f8b6c4-{i:06x}",
                namespace="team-01",
                count=12,
                host=_node_name(i),
                first="2026-11-20T07:00:00Z",
                last="2026-11-20T07:59:00Z",
            )
            e["metadata"]["name"] = f"app-01-7d9f8b6c4-{i:06x}.{i:016x}"
            yield e
        for i in range(nodes * 2):
            e = event(
                "Scheduled",
                "Successfully assigned pod",
                type="Normal",
                name=f"p{i}",
                namespace="team-02",
            )
            e["metadata"]["name"] = f"p{i}.{i:016x}"
            yield e

    def gen_daemonsets() -> Iterator[dict[str, Any]]:
        yield daemonset("kube-proxy", desired=nodes)
        yield daemonset("azure-cns", desired=nodes)

    def gen_nncs() -> Iterator[dict[str, Any]]:
        for i in range(nodes):
            count = per_node + 16  # the pods' IPs and one batch more
            n = nnc(_node_name(i), requested=count, assigned=count, ips=0)
            n["status"]["networkContainers"][0]["ipAssignments"] = [
                {"name": _uid(i, a), "ip": f"10.240.{(i * count + a) // 250 % 256}.{a % 250}"}
                for a in range(count)
            ]
            yield n

    return {
        "nodes": gen_nodes(),
        "pods": gen_pods(),
        "services": gen_services(),
        "endpointslices": gen_slices(),
        "endpoints": iter(kubernetes_api()["endpoints"]),
        "events": gen_events(),
        "daemonsets": gen_daemonsets(),
        "nodenetworkconfigs": gen_nncs(),
    }


def big_cluster(nodes: int, pods_per_node: int = 30) -> dict[str, Any]:
    """`az aks show` of the generated cluster: Azure CNI with dynamic pod IP allocation (a pod
    subnet), one pool per 1,000 nodes."""
    vnet = f"/subscriptions/{SUB}/resourceGroups/rg-big-net/providers/Microsoft.Network/virtualNetworks/vnet-big"
    doc = az_cluster(name="big", rg="rg-big")
    net = doc["networkProfile"]
    net.update(networkPluginMode=None, podCidr=None, podCidrs=None)
    doc["agentPoolProfiles"] = [
        {
            **doc["agentPoolProfiles"][0],
            "name": f"pool{p:02d}",
            "count": min(1000, nodes - p * 1000),
            "maxPods": pods_per_node + 10,
            "mode": "System" if p == 0 else "User",
            "vnetSubnetId": f"{vnet}/subnets/nodes",
            "podSubnetId": f"{vnet}/subnets/pods",
        }
        for p in range(max(1, -(-nodes // 1000)))
    ]
    return doc


def write_cluster(folder: Path, nodes: int, pods_per_node: int = 30) -> Path:
    """Write a snapshot folder as `kubectl get X -A -o json` prints it (indented, without
    managed fields), streaming each list so memory stays flat."""
    (folder / "k8s").mkdir(parents=True, exist_ok=True)
    (folder / "cluster.json").write_text(json.dumps(big_cluster(nodes, pods_per_node), indent=2))
    (folder / "snapshot.json").write_text(json.dumps({"capturedAt": "2026-11-20T08:00:00Z"}))
    for name, items in objects(nodes, pods_per_node).items():
        with (folder / "k8s" / f"{name}.json").open("w") as fh:
            fh.write('{\n    "apiVersion": "v1",\n    "items": [\n')
            first = True
            for item in items:
                item["metadata"].pop("managedFields", None)
                if not first:
                    fh.write(",\n")
                fh.write(json.dumps(item, indent=4))
                first = False
            fh.write(
                '\n    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n'
            )
    return folder


if __name__ == "__main__":
    write_cluster(
        Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 30
    )
