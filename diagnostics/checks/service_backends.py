"""service: does the selector find pods, are any of them ready, and does the targetPort name a
port those pods declare (the article's first service steps)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.service_common import (
    SCENARIO,
    EndpointView,
    backends,
    curl_steps,
    endpoint_view,
    latest_warning,
    listing,
    pods_cmd,
    resolve_target,
    selector_text,
    services_in_scope,
    short,
    slices_cmd,
    subject,
    target_text,
)
from diagnostics.model import Finding, Severity, Step
from diagnostics.snapshot import Pod, Service, ServicePort, Snapshot


class KeyIndex:
    """namespace -> label key -> the pods carrying that key, built per namespace on first use
    (only namespaces with a service that matches nothing pay for it)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self._by_ns: dict[str, dict[str, list[Pod]]] = {}

    def carrying(self, namespace: str, key: str) -> list[Pod]:
        index = self._by_ns.get(namespace)
        if index is None:
            index = defaultdict(list)
            for p in self.snap.pods_by_namespace.get(namespace, ()):
                for k in p.labels:
                    index[k].append(p)
            self._by_ns[namespace] = index
        return index.get(key, [])


# ---------------------------------------------------------------- selector and readiness
def _pair_scores(snap: Snapshot, svc: Service) -> tuple[Counter[str], dict[str, Pod]]:
    """For pods sharing at least one selector pair: how many pairs each shares."""
    score: Counter[str] = Counter()
    pods: dict[str, Pod] = {}
    for k, v in (svc.selector or {}).items():
        for p in snap.pods_matching(svc.namespace, {k: v}):
            score[p.name] += 1
            pods[p.name] = p
    return score, pods


def _closest(keys: KeyIndex, svc: Service, score: Counter[str], pods: dict[str, Pod]) -> list[str]:
    """Pods whose labels come closest to the selector, grouped by owner."""
    selector = svc.selector or {}
    score, pods = Counter(score), dict(pods)
    if not score:  # nothing shares a pair: pods that carry the keys with other values
        for k in selector:
            for p in keys.carrying(svc.namespace, k):
                score[p.name] = 0
                pods[p.name] = p
    groups: dict[tuple[str, str], list[Pod]] = defaultdict(list)
    for name in score:
        p = pods[name]
        groups[(p.owner_name or p.name, p.owner_kind)].append(p)
    ranked = sorted(groups.values(), key=lambda ps: (-score[ps[0].name], ps[0].name))
    out = []
    for group in ranked[:4]:
        p = group[0]
        labels = ", ".join(
            f"{k}={p.labels[k]}" if k in p.labels else f"no {k}" for k in sorted(selector)
        )
        more = f" (+{len(group) - 1} like it)" if len(group) > 1 else ""
        out.append(f"{p.name}{more}: {labels}; matches {score[p.name]} of {len(selector)}")
    return out


def _why_not_ready(snap: Snapshot, pod: Pod) -> str:
    if pod.deleting:
        state = "terminating"
    elif pod.phase == "Pending" and not pod.node:
        state = "Pending, not scheduled"
    elif pod.waiting_reasons:
        state = pod.waiting_reasons[0] + (f" ({pod.restarts} restarts)" if pod.restarts else "")
    elif pod.phase == "Running":
        state = "Running but not ready"
    else:
        state = pod.phase or "unknown phase"
    ev = latest_warning(snap, pod)
    detail = f" — {ev.reason}: {short(ev.message)} (x{ev.count})" if ev else ""
    where = f" on {pod.node}" if pod.node else ""
    return f"{pod.name}{where}: {state}{detail}"


def backends_check(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    keys = KeyIndex(snap)
    for svc in services_in_scope(ctx):
        if not svc.selector:
            continue
        pods = backends(snap, svc)
        if not pods:
            yield _matches_nothing(ctx, keys, svc)
            continue
        view = endpoint_view(snap, svc, pods)
        if view is None:
            continue
        if svc.publish_not_ready:
            if any(p.ip for p in pods):
                continue  # not-ready pods receive traffic by design
        elif view.ready:
            continue
        yield _none_ready(ctx, svc, pods, view)


def _matches_nothing(ctx: CheckContext, keys: KeyIndex, svc: Service) -> Finding:
    snap = ctx.snapshot
    sel = selector_text(svc.selector or {})
    in_ns = snap.pods_by_namespace.get(svc.namespace, [])
    finished = [p for p in snap.pods_matching(svc.namespace, svc.selector or {}) if p.terminated]
    evidence = [f"selector {sel} matches none of the {len(in_ns)} pods in {svc.namespace}"]
    if finished:
        evidence.append(f"only finished pods match: {listing(p.name for p in finished)}")
    score, candidates = _pair_scores(snap, svc)
    closest = _closest(keys, svc, score, candidates)
    if closest:
        evidence.append("closest pods: " + "; ".join(closest))
    elif not in_ns:
        evidence.append(f"namespace {svc.namespace} has no pods at all")
    steps = [
        Step(
            "Confirm the selector (the article's command).",
            f"kubectl get svc -n {q(svc.namespace)} {q(svc.name)} -o jsonpath='{{.spec.selector}}'",
        ),
        Step("List the pods it should match.", pods_cmd(svc, "")),
        Step(
            "Compare with the labels the pods really carry.",
            f"kubectl get pods -n {q(svc.namespace)} --show-labels",
        ),
        Step("Confirm the service has no endpoints.", slices_cmd(svc)),
    ]
    fix = _selector_fix(keys, svc, score, candidates)
    if fix:
        steps.append(fix)
    return Finding(
        code="service.selector-matches-no-pods",
        severity=Severity.CRITICAL,
        title=f"Service {svc.key}: selector {sel} matches no pod",
        subject=subject(svc),
        evidence=tuple(evidence),
        cause="A service sends traffic only to pods its label selector matches; with none it has "
        "no endpoints and every connection is refused or times out.",
        remediation=tuple(steps),
        docs=DOCS["service"],
    )


def _selector_fix(
    keys: KeyIndex, svc: Service, score: Counter[str], pods: dict[str, Pod]
) -> Step | None:
    """When one group of pods carries every selector key and differs in at most one value, the
    patch that points the service at them."""
    selector = svc.selector or {}
    if len(selector) > 1:  # differing in at most one value means sharing a pair
        candidates = [pods[n] for n, hits in score.items() if hits >= len(selector) - 1]
    else:
        candidates = keys.carrying(svc.namespace, next(iter(selector)))
    carriers: list[Pod] = []
    owners: set[tuple[str, str]] = set()
    for p in candidates:
        if p.terminated or not all(k in p.labels for k in selector):
            continue
        owners.add((p.owner_kind, p.owner_name))
        if len(owners) > 1:
            return None
        carriers.append(p)
    if not carriers:
        return None
    new = {k: carriers[0].labels[k] for k in selector}
    patch = json.dumps({"spec": {"selector": new}}, separators=(",", ":"))
    return Step(
        f"If the service is what is wrong, point it at {carriers[0].name}'s labels "
        "(if the pods are wrong, fix their template instead).",
        f"kubectl patch service -n {q(svc.namespace)} {q(svc.name)} --type merge -p {q(patch)}",
    )


def _none_ready(ctx: CheckContext, svc: Service, pods: list[Pod], view: EndpointView) -> Finding:
    snap = ctx.snapshot
    states = Counter(
        "pending"
        if p.phase == "Pending" and not p.waiting_reasons
        else (p.waiting_reasons[0] if p.waiting_reasons else "not ready")
        for p in pods
    )
    evidence = [
        f"{len(pods)} pods match {selector_text(svc.selector or {})}; 0 ready endpoints in "
        f"{view.source} ({len(view.not_ready)} not ready)",
        "states: " + ", ".join(f"{n} {s}" for s, n in states.most_common()),
    ]
    if svc.publish_not_ready:
        evidence.append("publishNotReadyAddresses is on, but no pod has an IP to publish")
    evidence += [_why_not_ready(snap, p) for p in pods[:6]]
    if len(pods) > 6:
        evidence.append(f"… and {len(pods) - 6} more pods")
    first = pods[0]
    steps = [
        Step("Watch the endpoints (ready and not ready).", slices_cmd(svc)),
        Step("See the pods and their state.", pods_cmd(svc)),
        Step(
            f"Read why {first.name} is not ready (probes, events).",
            f"kubectl describe pod -n {q(first.namespace)} {q(first.name)}",
        ),
    ]
    crashing = next((p for p in pods if "CrashLoopBackOff" in p.waiting_reasons), None)
    if crashing is not None:
        steps.append(
            Step(
                f"Read the logs of the last crash of {crashing.name}.",
                f"kubectl logs -n {q(crashing.namespace)} {q(crashing.name)} --previous",
            )
        )
    port = _first_target(svc, first)
    steps += curl_steps(svc, first.ip, port)
    return Finding(
        code="service.no-ready-endpoints",
        severity=Severity.CRITICAL,
        title=f"Service {svc.key} has {len(pods)} matching pods but no ready endpoint",
        subject=subject(svc),
        evidence=tuple(evidence),
        cause="kube-proxy routes only to ready endpoints; when no backend passes its readiness "
        "probe (or none runs), connections to the service fail.",
        remediation=tuple(steps),
        docs=DOCS["service"],
    )


def _first_target(svc: Service, pod: Pod) -> int | None:
    for sp in svc.ports:
        numbers, _ = resolve_target(pod, sp)
        if numbers:
            return min(numbers)
    return None


# ---------------------------------------------------------------- target ports
# The Pod API: containerPort is "primarily informational"; not declaring a port does not stop a
# process from listening on it.
CONTAINER_PORTS_DOCS = (
    "https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ports"
)


def target_ports(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    for svc in services_in_scope(ctx):
        if not svc.selector or svc.headless or not svc.ports:
            continue
        pods = backends(snap, svc)
        if not pods:
            continue
        bad = []
        for i, sp in enumerate(svc.ports):
            if isinstance(sp.target_port, int) and not any(p.ports for p in pods):
                continue  # containers that declare no ports: a numeric targetPort is unprovable
            if not any(
                resolve_target(p, sp)[0] & _declared(p, sp.protocol)
                or (isinstance(sp.target_port, int) and not p.ports)
                for p in pods
            ):
                bad.append((i, sp))
        if bad:
            yield _port_mismatch(svc, pods, bad)


def _declared(pod: Pod, protocol: str) -> set[int]:
    return {cp.port for cp in pod.ports if cp.protocol == protocol}


def _port_mismatch(svc: Service, pods: list[Pod], bad: list[tuple[int, ServicePort]]) -> Finding:
    declared = Counter(
        ", ".join(
            sorted(
                f"{cp.container}:{cp.name + '/' if cp.name else ''}{cp.port}/{cp.protocol}"
                for cp in p.ports
            )
        )
        or "no ports"
        for p in pods
    )
    evidence = []
    steps = [Step("See the service's ports and the endpoints' ports.", slices_cmd(svc))]
    named = [sp for _, sp in bad if isinstance(sp.target_port, str)]
    for _, sp in bad:
        if isinstance(sp.target_port, str):
            evidence.append(
                f"{target_text(sp)}: no selected container declares a port by that name, so "
                "the endpoints get no port for it"
            )
        else:
            evidence.append(
                f"{target_text(sp)}: no selected container declares it (containerPort is "
                "informational: a process may still listen there)"
            )
    for ports, n in declared.most_common(3):
        evidence.append(f"{n} pod(s) declare: {ports}")
    first = pods[0]
    steps.append(
        Step(
            f"Check which port {first.name} listens on (the article's 'describe the pod').",
            f"kubectl describe pod -n {q(first.namespace)} {q(first.name)}",
        )
    )
    steps += curl_steps(svc, first.ip, _first_target(svc, first))
    return Finding(
        code="service.target-port-mismatch",
        severity=Severity.WARNING if named else Severity.INFO,
        title=f"Service {svc.key}: "
        + (
            f"named targetPort {named[0].target_port} resolves on none of its pods"
            if named
            else "targetPort is not a port its pods declare (a lead, not proof)"
        ),
        subject=subject(svc),
        evidence=tuple(evidence),
        cause="A named targetPort that no container declares gives the endpoints no port, so "
        "traffic to it is dropped. A number the containers do not declare proves nothing by "
        "itself (the Kubernetes API calls containerPort informational), but it is where to look "
        "first when the service does not answer: check what the process listens on.",
        remediation=tuple(steps),
        docs=CONTAINER_PORTS_DOCS,
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="service.backends",
        scenario=SCENARIO,
        codes=("service.selector-matches-no-pods", "service.no-ready-endpoints"),
        fn=backends_check,
        needs=("services", "pods"),
        uses=("endpointslices", "endpoints", "events"),
    ),
    Check(
        name="service.target_ports",
        scenario=SCENARIO,
        codes=("service.target-port-mismatch",),
        fn=target_ports,
        needs=("services", "pods"),
    ),
)
