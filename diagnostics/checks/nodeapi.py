"""`node-api`: why nodes and pods cannot reach the API server (the article's last section).

This module holds the checks on the in-cluster path itself — the `default/kubernetes` service
and its endpoints, and the API server tunnel — and the scenario's causal links. Egress
(authorized ranges, firewall, private DNS), network policies and RBAC live in the sibling
`nodeapi_*` modules, each declaring its own `CHECKS`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.nodeapi_common import (
    API_PORT,
    SCENARIO,
    api_endpoints,
    api_host,
    apiserver_logs_steps,
    in_pod_test_step,
    node_command,
    pod_state,
    tunnel_app,
    tunnel_pods,
)
from diagnostics.diagnosis import Link
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER
from diagnostics.snapshot import ClusterInfo, Service


def expected_cluster_ip(cluster: ClusterInfo | None, current: str) -> str | None:
    """The first address of the service CIDR of `current`'s family: the kubernetes service's
    clusterIP. None when the cluster's service CIDRs are unknown."""
    if cluster is None or not cluster.service_cidrs:
        return None
    try:
        family = ipaddress.ip_address(current).version if current else 4
    except ValueError:
        family = 4
    for cidr in cluster.service_cidrs:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if net.version == family:
            return str(net.network_address + 1)
    return None


def _service_problems(svc: Service, cluster: ClusterInfo | None) -> list[tuple[Severity, str]]:
    problems: list[tuple[Severity, str]] = []
    if not any(p.port == API_PORT and p.protocol == "TCP" for p in svc.ports):
        ports = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports) or "none"
        problems.append(
            (Severity.CRITICAL, f"the service has no TCP {API_PORT} port (ports: {ports})")
        )
    if svc.type != "ClusterIP":
        problems.append((Severity.WARNING, f"the service is of type {svc.type}, not ClusterIP"))
    expected = expected_cluster_ip(cluster, svc.cluster_ip)
    if expected and svc.cluster_ip != expected:
        cidrs = ", ".join(cluster.service_cidrs) if cluster else ""
        problems.append(
            (
                Severity.WARNING,
                f"clusterIP is {svc.cluster_ip or 'empty'}, but the first address of the service "
                f"CIDR ({cidrs}) is {expected}: the API server certificate names {expected}, "
                "so clients that verify TLS against the service IP fail",
            )
        )
    return problems


def kubernetes_service(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    svc = snap.services_by_key.get("default/kubernetes")
    eps = api_endpoints(snap)
    problems: list[tuple[Severity, str]] = []
    evidence: list[str] = []
    if svc is None:
        problems.append(
            (
                Severity.CRITICAL,
                f"service default/kubernetes does not exist ({len(snap.services)} services read); "
                "on AKS this is the in-cluster name of the API server (the article calls it "
                "`kubernetes-internal`)",
            )
        )
    else:
        ports = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports) or "no ports"
        evidence.append(f"service default/kubernetes: {svc.type} {svc.cluster_ip}, {ports}")
        problems += _service_problems(svc, snap.cluster)
    if eps is None:
        evidence.append(
            "its endpoints could not be checked: neither endpointslices nor endpoints were read"
        )
    elif not eps.ready:
        detail = f"; not ready: {', '.join(eps.not_ready)}" if eps.not_ready else ""
        problems.append(
            (
                Severity.CRITICAL,
                f"default/kubernetes has no ready endpoint address ({eps.source}){detail}",
            )
        )
    else:
        evidence.append(f"endpoints: {eps.described()}")
        if API_PORT not in eps.ports:
            problems.append(
                (
                    Severity.CRITICAL,
                    f"the endpoints point at port {', '.join(map(str, eps.ports)) or 'none'}; the "
                    f"AKS API server listens on {API_PORT}",
                )
            )
    logs = apiserver_logs_steps(ctx)
    if not problems:
        yield Finding(
            code="nodeapi.kubernetes-service.ok",
            severity=Severity.OK,
            title=f"default/kubernetes leads to the API server at {', '.join(eps.ready) if eps else '?'}",
            subject="Service/default/kubernetes",
            evidence=tuple(evidence),
            cause="The in-cluster route to the API server is in place. If pods still cannot reach "
            "it, test from inside a pod and read the kube-apiserver logs.",
            remediation=(in_pod_test_step(), *logs),
            docs=DOCS["node-api"],
        )
        return
    severity = min((s for s, _ in problems), key=lambda s: s.rank)
    yield Finding(
        code="nodeapi.kubernetes-service",
        severity=severity,
        title="The kubernetes service in default "
        + ("is missing" if svc is None else "or its endpoints are wrong"),
        subject="Service/default/kubernetes",
        evidence=tuple([text for _, text in problems] + evidence),
        cause="Pods reach the API server through the `kubernetes` service in `default` "
        "(KUBERNETES_SERVICE_HOST); the API server itself maintains that service and its "
        f"endpoints (its own address, port {API_PORT} on AKS). When they are missing or wrong, "
        "the control plane is not reconciling them: it is down or unhealthy.",
        remediation=(
            Step(
                "Look at the service and its endpoints (EndpointSlices; `kubectl get endpoints` "
                "is deprecated since 1.33).",
                "kubectl get service kubernetes --namespace default -o wide && "
                "kubectl get endpointslices --namespace default "
                "-l kubernetes.io/service-name=kubernetes -o wide",
            ),
            Step(
                "Compare with the service CIDR the cluster was created with.",
                ctx.az_aks("show", "--query networkProfile.serviceCidrs"),
            ),
            *logs,
            Step(
                "If the API server does not restore them within minutes, reconcile the cluster "
                "(an update with no change); if that fails, open a support request with these findings.",
                ctx.az_aks("update", "--yes"),
            ),
        ),
        docs=DOCS["node-api"],
    )


def tunnel(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    c = snap.cluster
    if c is not None and c.vnet_integration:
        return  # API Server VNet Integration: the API server reaches nodes directly, no tunnel
    pods = tunnel_pods(snap)
    kube_system = snap.pods_by_namespace.get("kube-system", [])
    failing = [p for p in pods if not p.ready]
    host = api_host(ctx)
    if not pods:
        if c is None or not kube_system:
            return  # no cluster facts or no kube-system pods read: nothing to compare against
        yield Finding(
            code="nodeapi.tunnel-unhealthy",
            severity=Severity.WARNING,
            title="No API server tunnel pods (konnectivity-agent) in kube-system",
            subject="Deployment/kube-system/konnectivity-agent",
            evidence=(
                f"none of the {len(kube_system)} kube-system pods is a konnectivity-agent, "
                "tunnelfront or aks-link pod",
                "apiServerAccessProfile.enableVnetIntegration is off, so the cluster needs a tunnel",
            ),
            cause="Without the tunnel the API server cannot reach kubelets: `kubectl logs`, "
            "`exec`, `port-forward` and webhooks served by pods fail, while nodes may look fine.",
            remediation=(
                Step(
                    "Check the deployment AKS manages for the tunnel.",
                    "kubectl get deployment konnectivity-agent --namespace kube-system -o wide",
                ),
                Step(
                    "Reconcile the cluster so AKS redeploys its add-ons.",
                    ctx.az_aks("update", "--yes"),
                ),
            ),
            docs=DOCS["node-api"],
        )
        return
    if not failing:
        return
    app = tunnel_app(failing[0]) or "konnectivity-agent"
    none_ready = len(failing) == len(pods)
    first = failing[0]
    evidence = [f"{len(pods) - len(failing)} of {len(pods)} {app} pods are ready"]
    evidence += [pod_state(p, snap) for p in failing]
    steps = [
        Step(
            "See the tunnel pods and why they fail (describe and events come from the API "
            "server, not through the tunnel).",
            f"kubectl get pods --namespace kube-system -l app={q(app)} -o wide && "
            f"kubectl describe pod --namespace kube-system {q(first.name)}",
        ),
    ]
    if first.node:
        steps.append(
            Step(
                "`kubectl logs` itself goes through the tunnel, so read the agent's log on its "
                "node through Azure instead (read-only).",
                node_command(
                    ctx,
                    first.node,
                    f"crictl logs --tail 50 $(crictl ps -a --name {app} -q | head -n 1) 2>&1",
                ),
            )
        )
        if host:
            steps.append(
                Step(
                    f"The agents dial the API server ({host}) on TCP 443 from the node: test "
                    "that path from the same node.",
                    node_command(ctx, first.node, f"nc -vz -w 5 {host} 443"),
                )
            )
    steps.append(
        Step(
            "Usual causes: an egress firewall without `*.hcp.<region>.azmk8s.io:443` (or one "
            "that strips TLS ALPN), a NAT gateway IP missing from the authorized IP ranges, or a "
            "private DNS zone the nodes cannot resolve — see the other node-api findings."
        )
    )
    steps += apiserver_logs_steps(ctx)
    yield Finding(
        code="nodeapi.tunnel-unhealthy",
        severity=Severity.CRITICAL if none_ready else Severity.WARNING,
        title=f"{len(failing)} of {len(pods)} {app} pods (the API server tunnel) are not ready",
        subject=f"Deployment/kube-system/{app}",
        evidence=tuple(evidence),
        cause="The API server reaches kubelets (logs, exec, port-forward, webhooks served by "
        "pods, metrics) through these agents. "
        + (
            "None is ready, so that path is down."
            if none_ready
            else "At least one is ready and carries the traffic, with less redundancy; the "
            "failing ones usually fail for a reason (egress, DNS) the others share."
        ),
        remediation=tuple(steps),
        docs=DOCS["node-api"],
    )


# What explains what (diagnostics.diagnosis): whatever keeps the nodes' egress from the API
# server (its authorized ranges, a firewall, an NSG, a route) keeps the tunnel pods down (and a
# dead tunnel is what makes `kubectl logs/exec` and webhooks time out). The NSG, route and
# firewall-rule codes come with the Azure network path checks.
EXPLAINS = (
    Link(
        "nodeapi.authorized-ip.egress-excluded",
        "nodeapi.tunnel-unhealthy",
        effect="the API server tunnel is down",
    ),
    Link(
        "nodeapi.firewall-egress",
        "nodeapi.tunnel-unhealthy",
        effect="the API server tunnel may be blocked",
    ),
    Link(
        "nodeapi.nsg-blocks-egress",
        "nodeapi.tunnel-unhealthy",
        effect="the API server tunnel is down",
    ),
    Link(
        "nodeapi.route-blackhole",
        "nodeapi.tunnel-unhealthy",
        effect="the API server tunnel is down",
    ),
    Link(
        "nodeapi.firewall-rules-missing",
        "nodeapi.tunnel-unhealthy",
        effect="the API server tunnel is down",
    ),
)


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.kubernetes_service",
        scenario=SCENARIO,
        codes=("nodeapi.kubernetes-service", "nodeapi.kubernetes-service.ok"),
        fn=kubernetes_service,
        needs=("services",),
        uses=("endpointslices", "endpoints", CLUSTER),
    ),
    Check(
        name="nodeapi.tunnel",
        scenario=SCENARIO,
        codes=("nodeapi.tunnel-unhealthy",),
        fn=tunnel,
        needs=("pods",),
        uses=(CLUSTER, "nodes", "events"),
    ),
)
