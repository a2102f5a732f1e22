"""What the `node-api` checks share: where the API server is from inside the cluster (the
`default/kubernetes` service and its endpoints), the tunnel pods, commands run on a node, and
the two remediation steps the article gets wrong on AKS (kube-apiserver logs, the in-pod test).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from diagnostics.checks.base import CheckContext, q
from diagnostics.checks.nodecmd import run_on_node
from diagnostics.model import Step
from diagnostics.snapshot import ClusterInfo, Node, Pod, Snapshot

SCENARIO = "node-api"
KUBERNETES = "default/kubernetes"
API_PORT = 443  # AKS publishes the API server on 443 in the kubernetes endpoints
TUNNEL_APPS = ("konnectivity-agent", "tunnelfront", "aks-link")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


# ---------------------------------------------------------------- the kubernetes endpoints
@dataclass(frozen=True, slots=True)
class ApiEndpoints:
    """The addresses `default/kubernetes` sends pods to, and where they were read."""

    ready: tuple[str, ...]
    not_ready: tuple[str, ...]
    ports: tuple[int, ...]
    source: str  # "EndpointSlice default/kubernetes", "Endpoints default/kubernetes", or what was searched

    def described(self) -> str:
        ports = ",".join(str(p) for p in self.ports) or "no port"
        addrs = ", ".join(self.ready) or "no ready address"
        return f"{addrs} (port {ports}, from {self.source})"


def api_endpoints(snap: Snapshot) -> ApiEndpoints | None:
    """The endpoints of default/kubernetes: EndpointSlices first (the v1 Endpoints API is
    deprecated since 1.33), then Endpoints. None when neither source was read."""
    slices = snap.slices_by_service.get(KUBERNETES) or [
        s for s in snap.endpointslices if s.namespace == "default" and s.name == "kubernetes"
    ]
    slices = [s for s in slices if s.address_type in ("IPv4", "IPv6")]
    if slices:
        ready: list[str] = []
        not_ready: list[str] = []
        for s in slices:
            for e in s.endpoints:
                (ready if e.ready else not_ready).extend(e.addresses)
        ports = sorted({p for s in slices for _, p, proto in s.ports if proto == "TCP"})
        names = ", ".join(sorted(s.name for s in slices))
        return ApiEndpoints(
            tuple(dict.fromkeys(ready)),
            tuple(dict.fromkeys(not_ready)),
            tuple(ports),
            f"EndpointSlice default/{names}",
        )
    ep = snap.endpoints_by_key.get(KUBERNETES)
    if ep is not None:
        return ApiEndpoints(
            tuple(dict.fromkeys(a.ip for a in ep.ready)),
            tuple(dict.fromkeys(a.ip for a in ep.not_ready)),
            tuple(sorted({p for _, p, proto in ep.ports if proto == "TCP"})),
            "Endpoints default/kubernetes",
        )
    searched = [s for s in ("endpointslices", "endpoints") if snap.has(s)]
    if not searched:
        return None
    return ApiEndpoints((), (), (), f"no kubernetes object among the {' and '.join(searched)} read")


# ---------------------------------------------------------------- the tunnel
def tunnel_app(pod: Pod) -> str | None:
    """Which tunnel a kube-system pod belongs to (konnectivity-agent, tunnelfront, aks-link)."""
    app = pod.labels.get("app") or pod.labels.get("k8s-app") or ""
    if app:
        return app if app in TUNNEL_APPS else None
    if pod.labels.get("component") == "tunnel":
        return "tunnelfront"
    deployment = pod.owner_name.rsplit("-", 1)[0] if pod.owner_kind == "ReplicaSet" else ""
    return deployment if deployment in TUNNEL_APPS else None


def tunnel_pods(snap: Snapshot) -> list[Pod]:
    """Current tunnel pods: not terminated, not being deleted."""
    return [
        p
        for p in snap.pods_by_namespace.get("kube-system", [])
        if not p.terminated and not p.deleting and tunnel_app(p)
    ]


def failing_tunnel_pods(snap: Snapshot) -> list[Pod]:
    return [p for p in tunnel_pods(snap) if not p.ready]


def not_ready_nodes(snap: Snapshot) -> list[Node]:
    return [n for n in snap.nodes if not n.ready and not n.virtual]


def pod_state(pod: Pod, snap: Snapshot) -> str:
    """'NAME on NODE (node NotReady): Running, not ready, waiting: CrashLoopBackOff, 14 restarts'."""
    node = snap.nodes_by_name.get(pod.node)
    where = f" on {pod.node}" if pod.node else " (not scheduled)"
    if node is not None and not node.ready:
        where += " (node NotReady)"
    parts = [pod.phase or "unknown phase", "ready" if pod.ready else "not ready"]
    if pod.waiting_reasons:
        parts.append("waiting: " + ", ".join(dict.fromkeys(pod.waiting_reasons)))
    if pod.restarts:
        parts.append(f"{pod.restarts} restarts")
    text = f"{pod.name}{where}: {', '.join(parts)}"
    warnings = [e for e in snap.events_for("Pod", pod.namespace, pod.name) if e.type == "Warning"]
    if warnings:
        last = max(warnings, key=lambda e: e.last or 0)
        text += f"; last warning: {last.reason} ({last.count}x): {_short(last.message)}"
    return text


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- commands
def node_resource_group(ctx: CheckContext) -> str:
    c = ctx.snapshot.cluster
    return q(c.node_resource_group) if c and c.node_resource_group else "NODE_RESOURCE_GROUP"


def node_command(
    ctx: CheckContext, node: str, script: str, powershell: str | None = None
) -> str | None:
    """A read-only command that runs `script` on a node through Azure (no tunnel, no pod) and
    prints its output; Windows nodes need `powershell` (None: no command)."""
    return run_on_node(ctx, node, script, powershell)


def api_host(ctx: CheckContext) -> str:
    """The API server name nodes dial: the private FQDN of a private cluster, else the FQDN."""
    c = ctx.snapshot.cluster
    if c is None:
        return ""
    return (c.private_fqdn or c.fqdn) if c.private_cluster else (c.fqdn or c.private_fqdn)


def apiserver_logs_steps(ctx: CheckContext) -> tuple[Step, ...]:
    """Where kube-apiserver logs are on AKS (the article's `kubectl -n kube-system get pod -l
    component=kube-apiserver` finds nothing: the control plane is managed and invisible)."""
    c = ctx.snapshot.cluster
    resource = q(c.id) if c and c.id else f'"$({ctx.az_aks("show", "--query id -o tsv")})"'
    return (
        Step(
            "The kube-apiserver runs in the AKS-managed control plane, so its pods are not "
            "visible in kube-system. Read its logs through the cluster's diagnostic settings: "
            "check that one sends the `kube-apiserver` category to a Log Analytics workspace.",
            f"az monitor diagnostic-settings list --resource {resource} -o table",
        ),
        Step(
            "Query them in that workspace (Container insights / Log Analytics): "
            '`AKSControlPlane | where Category == "kube-apiserver" | order by TimeGenerated desc` '
            '(resource-specific tables) or `AzureDiagnostics | where Category == "kube-apiserver"`.'
        ),
    )


def in_pod_test_step(namespace: str = "default", service_account: str | None = None) -> Step:
    """The article's in-pod curl, as one working command. It creates a pod: say so."""
    script = (
        f"curl -sS --max-time 10 --cacert {SA_DIR}/ca.crt "
        f'-H "Authorization: Bearer $(cat {SA_DIR}/token)" '
        f'"https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/{namespace}/pods?limit=1"'
    )
    overrides = ""
    who = "the namespace's default service account"
    if service_account:
        spec = {"apiVersion": "v1", "spec": {"serviceAccountName": service_account}}
        overrides = f" --overrides={q(json.dumps(spec, separators=(',', ':')))}"
        who = f"service account {service_account}"
    return Step(
        f"Repeat the article's test from inside a pod, as {who}. This creates a pod "
        f"(aksdiag-api-test in {namespace}, removed when it exits). A PodList means the API "
        "server is reachable and the account authorized; a timeout points at the network; "
        "403 Forbidden at RBAC.",
        f"kubectl run aksdiag-api-test --namespace {q(namespace)} --rm -i --restart=Never "
        f"--image=mcr.microsoft.com/azure-cli{overrides} --command -- sh -c {q(script)}",
    )


def subnet_ids(ctx: CheckContext) -> list[str]:
    c = ctx.snapshot.cluster
    return (
        list(dict.fromkeys(p.vnet_subnet_id for p in c.agent_pools if p.vnet_subnet_id))
        if c
        else []
    )


def cluster_of(ctx: CheckContext) -> ClusterInfo:
    assert ctx.snapshot.cluster is not None  # guaranteed by needs=(CLUSTER,)
    return ctx.snapshot.cluster


def egress_symptoms(snap: Snapshot) -> list[str]:
    """What nodes show when their way to the API server is cut: failing tunnel pods and
    NotReady nodes."""
    out = [pod_state(p, snap) for p in failing_tunnel_pods(snap)]
    out += [f"node {n.name} is NotReady" for n in not_ready_nodes(snap)]
    return out
