"""service: what drops traffic between a healthy service and its pods — network policies that
admit no ingress on the target port, and CNI / network plugin errors on the backing pods or
their nodes (the article's "other causes")."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.podip_nodes import allocation_pattern
from diagnostics.checks.policies import (
    CILIUM_KINDS,
    for_namespace,
    policy_docs,
    read_commands,
    selects,
)
from diagnostics.checks.service_common import (
    SCENARIO,
    backends,
    curl_steps,
    listing,
    resolve_target,
    services_in_scope,
    short,
    subject,
    target_text,
)
from diagnostics.checks.service_proxy import cilium_dataplane
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER, POLICY_KINDS
from diagnostics.snapshot import NetworkPolicy, Pod, PolicyRule, Service, ServicePort, Snapshot


# ---------------------------------------------------------------- network policies
def policies_enforced(snap: Snapshot) -> bool:
    """AKS enforces NetworkPolicy only with a policy engine (Azure NPM, Calico, Cilium);
    without one the objects exist and drop nothing. Unknown (no cluster.json): assume on."""
    c = snap.cluster
    if c is None:
        return True
    if c.network_policy.lower() not in ("", "none") or cilium_dataplane(snap):
        return True
    return c.network_plugin.lower() not in ("azure", "kubenet")


def _rule_admits(rule: PolicyRule, protocol: str, numbers: set[int], names: set[str]) -> bool:
    if not rule.ports:
        return True
    for pp in rule.ports:
        if pp.protocol not in (protocol, "ANY"):
            continue
        if pp.port is None:
            return True
        if isinstance(pp.port, str):
            if pp.port in names:
                return True
        elif pp.end_port:
            if any(pp.port <= n <= pp.end_port for n in numbers):
                return True
        elif pp.port in numbers:
            return True
    return False


def _describe(pol: NetworkPolicy) -> str:
    if pol.ingress_deny:
        return f"{pol.label} (has ingressDeny rules)"
    if not pol.ingress:
        return f"{pol.label} (admits no ingress)"
    ports = sorted(
        {
            f"{pp.port if pp.port is not None else 'all'}/{pp.protocol}"
            for rule in pol.ingress
            for pp in rule.ports
        }
        or {"every port"}
    )
    return f"{pol.label} (admits {', '.join(ports)})"


def network_policy(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    if not policies_enforced(snap):
        return
    for svc in services_in_scope(ctx):
        pols = [
            p
            for p in for_namespace(snap, svc.namespace)
            if p.ingress or p.ingress_deny or "Ingress" in p.policy_types
        ]
        if not svc.selector or not svc.ports or not pols:
            continue
        pods = backends(snap, svc)
        groups: dict[tuple[tuple[str, str], ...], list[Pod]] = {}
        for p in pods:
            groups.setdefault(tuple(sorted(p.labels.items())), []).append(p)
        blocked: list[tuple[list[Pod], list[NetworkPolicy], list[ServicePort]]] = []
        for group in groups.values():
            pod = group[0]
            selecting = [pol for pol in pols if selects(pol, pod)]
            isolated = any("Ingress" in pol.policy_types for pol in selecting)
            shut = []
            for sp in svc.ports:
                numbers, names = resolve_target(pod, sp)
                admitted = any(
                    _rule_admits(r, sp.protocol, numbers, names)
                    for pol in selecting
                    if pol.kind != "NetworkPolicy" or "Ingress" in pol.policy_types
                    for r in pol.ingress
                )
                denied = any(
                    _rule_admits(r, sp.protocol, numbers, names)
                    for pol in selecting
                    for r in pol.ingress_deny
                )
                if denied or (isolated and not admitted):
                    shut.append(sp)
            if shut:
                blocked.append((group, selecting, shut))
        if blocked:
            yield _policy_finding(svc, pods, blocked)


def _allow_policy(svc: Service, ports: list[ServicePort]) -> str:
    labels = json.dumps(svc.selector or {}, sort_keys=True)
    lines = [
        "kubectl apply -f - <<'EOF'",
        "apiVersion: networking.k8s.io/v1",
        "kind: NetworkPolicy",
        "metadata:",
        f"  name: {json.dumps('allow-' + svc.name)}",
        f"  namespace: {json.dumps(svc.namespace)}",
        "spec:",
        f"  podSelector: {{matchLabels: {labels}}}",
        "  policyTypes: [Ingress]",
        "  ingress:",
        "  - ports:",
    ]
    for sp in ports:
        lines.append(f"    - {{protocol: {sp.protocol}, port: {json.dumps(sp.target_port)}}}")
    lines.append("EOF")
    return "\n".join(lines)


def _policy_finding(
    svc: Service,
    pods: list[Pod],
    blocked: list[tuple[list[Pod], list[NetworkPolicy], list[ServicePort]]],
) -> Finding:
    evidence = []
    shut_ports: dict[str, ServicePort] = {}
    n_blocked = 0
    for group, selecting, shut in blocked:
        n_blocked += len(group)
        evidence.append(
            f"{len(group)} pod(s) like {group[0].name} are selected by "
            f"{listing(_describe(p) for p in selecting)}"
        )
        for sp in shut:
            shut_ports[target_text(sp)] = sp
    evidence.append(f"no policy admits ingress on {listing(shut_ports)}")
    if n_blocked < len(pods):
        evidence.append(f"{len(pods) - n_blocked} other backing pod(s) are reachable")
    ports = list(shut_ports.values())
    first = blocked[0][0][0]
    pol = blocked[0][1][0]
    kind = CILIUM_KINDS.get(pol.kind, "networkpolicy")
    where = f"-n {q(svc.namespace)} " if pol.namespace else ""
    steps = [
        *(
            Step("List the policies that apply here.", cmd)
            for cmd in read_commands([p for _, sel, _ in blocked for p in sel], svc.namespace)
        ),
        Step(f"Read {pol.label}.", f"kubectl describe {kind} {where}{q(pol.name)}"),
        Step(
            "Admit the service's target port (narrow it with `from:` to the clients that need it).",
            _allow_policy(svc, ports),
        ),
    ]
    num = next(iter(resolve_target(first, ports[0])[0]), None)
    steps += curl_steps(svc, first.ip, num)
    return Finding(
        code="service.network-policy",
        severity=Severity.WARNING,
        title=f"Network policies drop ingress to {svc.key} on its target port",
        subject=subject(svc),
        evidence=tuple(evidence),
        cause="Once any policy selects a pod, only traffic some policy admits reaches it; "
        "none of these admits the port the service forwards to.",
        remediation=tuple(steps),
        docs=policy_docs([p for _, sel, _ in blocked for p in sel]),
    )


# ---------------------------------------------------------------- CNI errors
CNI_ERROR = re.compile(
    r"networkplugin \w+ failed|failed to (set ?up|setup|tear ?down|teardown|destroy) (pod )?"
    r"network|network for sandbox|plugin type=\S+ failed|cni plugin not initialized|"
    r"network plugin (is )?not ready|networkpluginnotready|error adding container to network|"
    r"failed to find plugin|azure-vnet|azure-cns|ipam invoker|cilium.*(error|fail)|"
    r"failed to (allocate|assign) (an )?ip",
    re.IGNORECASE,
)


_SANDBOX_PREFIX = re.compile(
    r"^failed (to )?create pod sandbox: rpc error: code = \w+ desc = ", re.IGNORECASE
)


def _gist(message: str) -> str:
    """The message without the generic kubelet prefix, shortened."""
    return short(_SANDBOX_PREFIX.sub("", " ".join(message.split())), 400)


def _is_cni_error(reason: str, message: str) -> bool:
    return bool(CNI_ERROR.search(message)) or reason == "NetworkNotReady"


def cni_errors(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    for svc in services_in_scope(ctx):
        if not svc.selector:
            continue
        pods = backends(snap, svc)
        lines: list[str] = []
        hit_pods: list[Pod] = []
        alloc = False
        for p in pods:
            for ev in snap.events_for("Pod", p.namespace, p.name):
                if ev.type == "Warning" and _is_cni_error(ev.reason, ev.message):
                    alloc = alloc or allocation_pattern(ev.message) is not None
                    lines.append(
                        f"pod {p.name} on {p.node or '?'}: {ev.reason} x{ev.count}: "
                        f"{_gist(ev.message)}"
                    )
                    hit_pods.append(p)
        nodes = sorted({p.node for p in pods if p.node})
        for node in nodes:
            for ev in snap.events_for("Node", "", node):
                if ev.type == "Warning" and _is_cni_error(ev.reason, ev.message):
                    lines.append(f"node {node}: {ev.reason} x{ev.count}: {_gist(ev.message)}")
        if lines:
            agents = [
                line
                for node in sorted({p.node for p in hit_pods if p.node} or nodes)
                for line in _plugin_pods_down(snap, node)
            ]
            yield _cni_finding(svc, pods, hit_pods, lines, agents, alloc)


NETWORK_AGENTS = (
    "azure-cns",
    "cilium",
    "azure-ip-masq-agent",
    "kube-proxy",
    "calico-node",
    "azure-npm",
    "ip-masq-agent",
    "konnectivity-agent",
)


def _plugin_pods_down(snap: Snapshot, node: str) -> list[str]:
    """Network agents on the node that are not ready: the usual cause of CNI errors there."""
    out = []
    for p in snap.pods_by_node.get(node, ()):
        agent = next((a for a in NETWORK_AGENTS if p.name.startswith(a + "-")), None)
        if p.namespace == "kube-system" and agent and not p.ready and not p.terminated:
            why = p.waiting_reasons[0] if p.waiting_reasons else p.phase
            out.append(
                f"on {node}, {agent} pod {p.name} is not ready: {why} ({p.restarts} restarts)"
            )
    return out


def _cni_finding(
    svc: Service, pods: list[Pod], hit: list[Pod], lines: list[str], agents: list[str], alloc: bool
) -> Finding:
    evidence = lines[:6] + ([f"… and {len(lines) - 6} more"] if len(lines) > 6 else []) + agents
    if alloc:
        evidence.append("some are IP allocation failures: the pod-ip scenario says why")
    first = hit[0] if hit else pods[0]
    steps = [
        Step(
            f"Read the events of {first.name}.",
            f"kubectl get events -n {q(first.namespace)} --field-selector "
            f"{q('type=Warning,involvedObject.name=' + first.name)}",
        ),
    ]
    if first.node:
        steps += [
            Step(
                f"Check the network plugin's pods on {first.node} (azure-cns, cilium, "
                "azure-ip-masq-agent, kube-proxy).",
                f"kubectl get pods -n kube-system -o wide --field-selector "
                f"{q('spec.nodeName=' + first.node)}",
            ),
            Step(
                "Check the node's conditions and events.", f"kubectl describe node {q(first.node)}"
            ),
        ]
    for line in agents[:2]:
        pod_name = line.split(" pod ", 1)[1].split(" ", 1)[0]
        steps.append(
            Step(
                f"Read why {pod_name} crashed (the network agent on that node).",
                f"kubectl logs -n kube-system {q(pod_name)} --previous",
            )
        )
    return Finding(
        code="service.cni-errors",
        severity=Severity.WARNING,
        title=f"CNI / network plugin errors on the pods behind {svc.key}",
        subject=subject(svc),
        evidence=tuple(evidence),
        cause="The network plugin failed to set up (or tear down) pod networking: affected pods "
        "get no address or routes, so the service cannot reach them.",
        remediation=tuple(steps),
        docs=DOCS["service"],
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="service.network_policy",
        scenario=SCENARIO,
        codes=("service.network-policy",),
        fn=network_policy,
        needs=("services", "pods", "networkpolicies"),
        uses=(CLUSTER, "nodes", *POLICY_KINDS),
    ),
    Check(
        name="service.cni_errors",
        scenario=SCENARIO,
        codes=("service.cni-errors",),
        fn=cni_errors,
        needs=("services", "pods", "events"),
        uses=("nodes",),
    ),
)
