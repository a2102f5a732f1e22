"""What the service checks share: which services a run looks at, the pods behind a service, its
endpoints as kube-proxy sees them (EndpointSlices, else v1 Endpoints, else pod readiness), and
the kubectl commands that show or test them from inside the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from diagnostics.checks.base import CheckContext, q
from diagnostics.model import Step
from diagnostics.snapshot import Event, Pod, Service, ServicePort, Snapshot

SCENARIO = "service"
TEST_IMAGE = "mcr.microsoft.com/azure-cli"  # the article's test image; it carries curl
MAX_LISTED = 8


def listing(items: Iterable[str], limit: int = MAX_LISTED) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return f"{shown} … and {len(items) - limit} more" if len(items) > limit else shown


def services_in_scope(ctx: CheckContext) -> list[Service]:
    """The service asked for, or in `health` every service that routes to pods (not
    ExternalName, and not default/kubernetes, which node-api checks)."""
    snap = ctx.snapshot
    if ctx.args.service is not None:
        svc = snap.services_by_key.get("/".join(ctx.args.service))
        return [svc] if svc is not None else []
    return [s for s in snap.services if s.type != "ExternalName" and s.key != "default/kubernetes"]


def backends(snapshot: Snapshot, svc: Service) -> list[Pod]:
    """The unfinished pods the service's selector matches."""
    if not svc.selector:
        return []
    return [p for p in snapshot.pods_matching(svc.namespace, svc.selector) if not p.terminated]


def subject(svc: Service) -> str:
    return f"service/{svc.namespace}/{svc.name}"


def selector_text(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


# ---------------------------------------------------------------- endpoints
@dataclass
class EndpointView:
    """The endpoints of a service and where they were read."""

    source: str  # "EndpointSlices", "Endpoints", "pod readiness"
    ready: list[tuple[str, str]]  # (ip, target pod name)
    not_ready: list[tuple[str, str]]
    leader_election: bool = False

    @property
    def total(self) -> int:
        return len(self.ready) + len(self.not_ready)


def endpoint_view(
    snapshot: Snapshot, svc: Service, pods: list[Pod] | None = None
) -> EndpointView | None:
    slices = snapshot.slices_by_service.get(svc.key)
    if slices:
        ready: dict[str, tuple[str, str]] = {}
        not_ready: dict[str, tuple[str, str]] = {}
        for sl in slices:
            for ep in sl.endpoints:
                addr = ep.addresses[0] if ep.addresses else ""
                key = ep.target_name or addr
                if ep.ready and not ep.terminating:
                    ready[key] = (addr, ep.target_name)
                elif key not in ready:
                    not_ready[key] = (addr, ep.target_name)
        return EndpointView(
            "EndpointSlices",
            list(ready.values()),
            [v for k, v in not_ready.items() if k not in ready],
        )
    eps = snapshot.endpoints_by_key.get(svc.key)
    if eps is not None:
        return EndpointView(
            "Endpoints",
            [(a.ip, a.target_name) for a in eps.ready],
            [(a.ip, a.target_name) for a in eps.not_ready],
            leader_election=eps.leader_election,
        )
    if pods is not None and snapshot.has("pods"):
        return EndpointView(
            "pod readiness",
            [(p.ip, p.name) for p in pods if p.ready and p.ip],
            [(p.ip, p.name) for p in pods if not (p.ready and p.ip)],
        )
    return None


# ---------------------------------------------------------------- ports
def resolve_target(pod: Pod, port: ServicePort) -> tuple[set[int], set[str]]:
    """The container port numbers and names a service port's targetPort means on this pod."""
    tp = port.target_port
    if isinstance(tp, str):
        return {cp.port for cp in pod.ports if cp.name == tp and cp.protocol == port.protocol}, {tp}
    return {tp}, {cp.name for cp in pod.ports if cp.port == tp and cp.name}


def target_text(port: ServicePort) -> str:
    name = f" ({port.name})" if port.name else ""
    return f"port {port.port}{name} -> targetPort {port.target_port}/{port.protocol}"


# ---------------------------------------------------------------- events
def latest_warning(snapshot: Snapshot, pod: Pod) -> Event | None:
    warnings = [
        e for e in snapshot.events_for("Pod", pod.namespace, pod.name) if e.type == "Warning"
    ]
    return max(warnings, key=lambda e: e.last or e.first or 0.0) if warnings else None


def short(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- commands
def slices_cmd(svc: Service) -> str:
    return (
        f"kubectl get endpointslices -n {q(svc.namespace)} "
        f"-l {q('kubernetes.io/service-name=' + svc.name)} -o wide"
    )


def pods_cmd(svc: Service, extra: str = "-o wide") -> str:
    selector = q(selector_text(svc.selector or {}))
    return f"kubectl get pods -n {q(svc.namespace)} -l {selector} {extra}".rstrip()


TLS_PORTS = {443, 8443, 9443, 6443}


def _url(host: str, port: int, tls: bool) -> str:
    return f"{'https' if tls else 'http'}://{host}:{port}/"


def curl_steps(svc: Service, pod_ip: str = "", pod_port: int | None = None) -> list[Step]:
    """Connectivity tests that work: from a pod inside the cluster, since pod IPs and cluster
    IPs are not reachable from a laptop. TLS ports get https:// and -k (the test is about the
    path, not the certificate)."""
    sp = svc.ports[0] if svc.ports else None
    port = sp.port if sp else 80
    named_tls = sp is not None and any(
        "https" in str(x) or "tls" in str(x) for x in (sp.name, sp.target_port)
    )
    run = (
        f"kubectl run aksdiag-curl -n {q(svc.namespace)} --rm -it --restart=Never "
        f"--image={TEST_IMAGE} -- curl -v --max-time 5"
    )
    steps = []
    if pod_ip and pod_port:
        tls = named_tls or pod_port in TLS_PORTS
        steps.append(
            Step(
                "Test a backend pod directly from a pod in the same namespace (this creates a "
                "short-lived pod; --rm deletes it). A refused connection means the container "
                "does not listen on that port.",
                f"{run}{' -k' if tls else ''} {q(_url(pod_ip, pod_port, tls))}",
            )
        )
    host = f"{svc.name}.{svc.namespace}.svc.cluster.local"
    tls = named_tls or port in TLS_PORTS
    steps.append(
        Step(
            "Test the service by name from inside the cluster; if the pod answers and the "
            "service does not, look at kube-proxy and network policies.",
            f"{run}{' -k' if tls else ''} {q(_url(host, port, tls))}",
        )
    )
    return steps
