"""A small AKS cluster with a few real problems, in kubectl shapes, for the emulators:

`KubeEmulator(**sample_objects())`. Two nodes; a healthy `shop/web`, a `shop/api` whose pods
crash loop, a `shop/orphan` service that selects nothing, an IP allocation failure on node 1,
RBAC where `shop/web` may list pods and `shop/api` may not, and a Secret that no capture may
ever write. Builders come from tests/builders.py (on sys.path in the test suite).
"""

from __future__ import annotations

from typing import Any

import builders as b

NODE0 = "aks-nodepool1-12345678-vmss000000"
NODE1 = "aks-nodepool1-12345678-vmss000001"
ALLOWED_SA = ("shop", "web")
FORBIDDEN_SA = ("shop", "api")

DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]


def sample_objects() -> dict[str, Any]:
    web = {"app": "web"}
    api = {"app": "api"}
    k8s_api = b.kubernetes_api()
    pods = [
        b.pod(
            "web-0",
            "shop",
            NODE0,
            "10.244.0.10",
            web,
            ports=[("http", 8080)],
            service_account="web",
        ),
        b.pod(
            "web-1",
            "shop",
            NODE1,
            "10.244.1.11",
            web,
            ports=[("http", 8080)],
            service_account="web",
        ),
        b.pod(
            "api-0",
            "shop",
            NODE0,
            "10.244.0.12",
            api,
            ready=False,
            waiting="CrashLoopBackOff",
            restarts=14,
            ports=[("grpc", 9090)],
            service_account="api",
        ),
        b.pod("pending-0", "shop", NODE1, "", web, phase="Pending", ready=False),
        b.pod(
            "report-28512",
            "shop",
            NODE1,
            "",
            {"job": "report"},
            phase="Succeeded",
            ready=False,
            finished="2026-11-20T07:00:00Z",
        ),
        b.pod(
            "kube-proxy-aaaaa",
            "kube-system",
            NODE0,
            "10.224.0.4",
            {"k8s-app": "kube-proxy"},
            host_network=True,
        ),
        b.pod(
            "kube-proxy-bbbbb",
            "kube-system",
            NODE1,
            "10.224.0.5",
            {"k8s-app": "kube-proxy"},
            host_network=True,
        ),
        b.pod(
            "konnectivity-agent-1",
            "kube-system",
            NODE0,
            "10.244.0.20",
            {"app": "konnectivity-agent"},
        ),
        b.pod(
            "konnectivity-agent-2",
            "kube-system",
            NODE1,
            "10.244.1.21",
            {"app": "konnectivity-agent"},
        ),
        b.pod(
            "coredns-7d9-abcde",
            "kube-system",
            NODE0,
            "10.244.0.30",
            {"k8s-app": "kube-dns"},
            ports=[("dns", 53)],
        ),
    ]
    services = [
        b.service("web", "shop", web, [("http", 80, 8080)]),
        b.service("api", "shop", api, [("http", 80, "http")], cluster_ip="10.0.120.16"),
        b.service(
            "orphan", "shop", {"app": "gone"}, [("http", 80, 8080)], cluster_ip="10.0.120.17"
        ),
        b.service(
            "kube-dns",
            "kube-system",
            {"k8s-app": "kube-dns"},
            [("dns", 53, 53)],
            cluster_ip="10.0.0.10",
        ),
        *k8s_api["services"],
    ]
    slices = [
        b.endpointslice(
            "web", "shop", [("10.244.0.10", True, "web-0"), ("10.244.1.11", True, "web-1")]
        ),
        b.endpointslice("api", "shop", [("10.244.0.12", False, "api-0")]),
        *k8s_api["endpointslices"],
    ]
    events = [
        b.event(
            "FailedCreatePodSandBox",
            'Failed to create pod sandbox: plugin type="azure-vnet" failed (add): '
            "Failed to allocate address: no IP addresses available in range set: "
            "10.244.1.1-10.244.1.254",
            name="pending-0",
            namespace="shop",
            count=23,
            last="2026-11-20T07:55:00Z",
            host=NODE1,
        ),
        b.event(
            "BackOff",
            "Back-off restarting failed container api in pod api-0",
            name="api-0",
            namespace="shop",
            count=40,
        ),
        b.event(
            "Scheduled",
            "Successfully assigned shop/web-0",
            name="web-0",
            namespace="shop",
            type="Normal",
        ),
    ]
    rbac_discovery = b.role("system:discovery", [b.rbac_rule(["get"], urls=DISCOVERY_URLS)])
    return {
        "nodes": [b.node(NODE0, ip="10.224.0.4"), b.node(NODE1, ip="10.224.0.5")],
        "namespaces": [b.namespace("default"), b.namespace("kube-system"), b.namespace("shop")],
        "serviceaccounts": [
            *(b.serviceaccount("default", ns) for ns in ("default", "kube-system", "shop")),
            b.serviceaccount(ALLOWED_SA[1], ALLOWED_SA[0]),
            b.serviceaccount(FORBIDDEN_SA[1], FORBIDDEN_SA[0]),
        ],
        "pods": pods,
        "services": services,
        "endpointslices": slices,
        "endpoints": k8s_api["endpoints"],
        "events": events,
        "daemonsets": [b.daemonset("kube-proxy", desired=2, ready=2)],
        "networkpolicies": [
            b.networkpolicy(
                "deny-ingress", "shop", {"matchLabels": api}, ingress=[], policy_types=["Ingress"]
            ),
        ],
        "nodenetworkconfigs": [b.nnc(NODE0, 32, 32), b.nnc(NODE1, 32, 32)],
        "configmaps": [b.configmap("coredns-custom", {"log.override": "log"})],
        "clusterroles": [rbac_discovery],
        "clusterrolebindings": [
            b.binding(
                "system:discovery",
                "system:discovery",
                [{"kind": "Group", "name": "system:authenticated"}],
            ),
        ],
        "roles": [b.role("pod-reader", [b.rbac_rule(["get", "list", "watch"], ["pods"])], "shop")],
        "rolebindings": [
            b.binding(
                "web-pods",
                "pod-reader",
                [{"kind": "ServiceAccount", "name": "web", "namespace": "shop"}],
                "shop",
                "Role",
            ),
        ],
        "secrets": [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": b.meta("db-password", "shop"),
                "data": {"password": "RkFLRS1kYi1wYXNzd29yZC1uZXZlci1jYXB0dXJl"},
            },  # FAKE-db-password...
        ],
    }
