"""service: cluster DNS, the usual cause behind "the service is unreachable from pods".

Pods resolve service names through the `kube-system/kube-dns` service, served by the CoreDNS
pods (label `k8s-app=kube-dns`). AKS lets users extend CoreDNS only through the
`coredns-custom` ConfigMap: keys ending `.server` add server blocks, keys ending `.override`
add plugins to the default server block. A block CoreDNS rejects crash-loops or freezes CoreDNS,
and a `forward` to servers the pods cannot reach times out every lookup under that zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from diagnostics.checks.base import Check, CheckContext, q
from diagnostics.checks.nodecmd import DEBUG_IMAGE
from diagnostics.checks.service_common import (
    SCENARIO,
    endpoint_view,
    latest_warning,
    listing,
    short,
)
from diagnostics.model import Finding, Severity, Step
from diagnostics.snapshot import ConfigMap, Pod, Snapshot

DNS_DOCS = (
    "https://learn.microsoft.com/en-us/troubleshoot/azure/azure-kubernetes/connectivity/dns/"
    "basic-troubleshooting-dns-resolution-problems"
)
CUSTOM_DOCS = "https://learn.microsoft.com/en-us/azure/aks/coredns-custom"
CUSTOM = "coredns-custom"
SELECTOR = "k8s-app=kube-dns"
# The plugins a standard CoreDNS build knows (plugin.cfg); any other directive is rejected
# with "Unknown directive".
PLUGINS = frozenset(
    [
        "metadata",
        "geoip",
        "cancel",
        "tls",
        "timeouts",
        "multisocket",
        "reload",
        "nsid",
        "bufsize",
        "bind",
        "debug",
        "trace",
        "ready",
        "health",
        "pprof",
        "prometheus",
        "errors",
        "log",
        "dnstap",
        "local",
        "dns64",
        "acl",
        "any",
        "chaos",
        "loadbalance",
        "tsig",
        "cache",
        "rewrite",
        "header",
        "dnssec",
        "autopath",
        "minimal",
        "template",
        "transfer",
        "hosts",
        "route53",
        "azure",
        "clouddns",
        "k8s_external",
        "kubernetes",
        "file",
        "auto",
        "secondary",
        "etcd",
        "loop",
        "forward",
        "grpc",
        "erratic",
        "whoami",
        "on",
        "sign",
        "view",
        "nomad",
    ]
)
RESTARTS = 3  # restarts that make a CoreDNS pod worth a look when it forwards somewhere custom
_TOKEN = re.compile(r"[{}]|[^\s{}]+")


@dataclass
class Corefile:
    """What one coredns-custom key holds: its errors, and where it forwards."""

    key: str
    errors: list[str] = field(default_factory=list)
    forwards: list[tuple[str, list[str]]] = field(default_factory=list)  # (zone, targets)


def parse_custom(key: str, text: str) -> Corefile:
    """Check one coredns-custom entry the way CoreDNS reads it: `.server` keys hold server
    blocks (`ZONE[:PORT] { plugin ... }`), `.override` keys hold plugin lines."""
    out = Corefile(key)
    server = key.endswith(".server")
    base = 1 if server else 0
    depth, zone = 0, "."
    for number, raw in enumerate(text.splitlines(), 1):
        tokens = _TOKEN.findall(raw.split("#", 1)[0])
        if not tokens:
            continue
        first = tokens[0]
        if server and depth == 0 and first not in "{}":
            if "{" not in tokens:
                out.errors.append(f"line {number}: server block `{raw.strip()}` has no `{{`")
            zone = first
            port = first.rsplit(":", 1)[1] if ":" in first else "53"
            if first.split(":", 1)[0].rstrip(".") in ("", "dns://") and port == "53":
                out.errors.append(
                    f"line {number}: a server block for `.:53` repeats AKS's default one "
                    "(CoreDNS refuses to serve a zone twice): use a `.override` key instead"
                )
        elif depth == base and first not in "{}":
            if first not in PLUGINS:
                out.errors.append(f"line {number}: unknown directive `{first}`")
            elif first == "forward" and len(tokens) >= 3:
                targets = [t for t in tokens[2:] if t not in "{}"]
                out.forwards.append((zone if tokens[1] == "." else tokens[1], targets))
        for t in tokens:
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if depth < 0:
                    out.errors.append(f"line {number}: `}}` closes nothing")
                    depth = 0
    if depth > 0:
        out.errors.append(f"{depth} `{{` never closed")
    if not server and not key.endswith(".override"):
        out.errors.append(
            "the key ends neither in .server nor in .override: AKS's CoreDNS ignores it"
        )
    return out


def _coredns_pods(snap: Snapshot) -> list[Pod]:
    return [
        p
        for p in snap.pods_by_namespace.get("kube-system", ())
        if p.labels.get("k8s-app") == "kube-dns" and not p.terminated
    ]


def _pod_line(snap: Snapshot, p: Pod) -> str:
    state = "ready" if p.ready else "not ready"
    if p.waiting_reasons:
        state += f" ({', '.join(p.waiting_reasons)})"
    line = f"{p.name} on {p.node or 'no node'}: {state}, {p.restarts} restarts"
    ev = latest_warning(snap, p)
    return line + (f"; last warning {ev.reason}: {short(ev.message, 140)}" if ev else "")


def _steps() -> list[Step]:
    return [
        Step(
            "See the CoreDNS pods and why they fail.",
            f"kubectl get pods --namespace kube-system -l {SELECTOR} -o wide",
        ),
        Step(
            "Read CoreDNS's own errors (a rejected Corefile, upstream timeouts).",
            f"kubectl logs --namespace kube-system -l {SELECTOR} --tail 50 --prefix",
        ),
        Step(
            "Resolve a service name from a pod (this creates a short-lived pod).",
            "kubectl run aksdiag-dns --rm -it --restart=Never "
            f"--image={DEBUG_IMAGE} -- nslookup kubernetes.default.svc.cluster.local",
        ),
    ]


def cluster_dns(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    svc = snap.services_by_key.get("kube-system/kube-dns")
    pods = _coredns_pods(snap)
    if svc is None and not pods:
        return  # no cluster DNS in this data at all (AKS always runs both): nothing to judge
    custom = next((c for c in snap.configmaps if c.name == CUSTOM), None)
    parsed = [parse_custom(k, v) for k, v in sorted(custom.data.items())] if custom else []
    lines = [_pod_line(snap, p) for p in pods]
    forwards = [f"{z} -> {' '.join(t)}" for c in parsed for z, t in c.forwards]
    if forwards:
        lines.append(f"{CUSTOM} forwards: {listing(forwards)}")

    view = endpoint_view(snap, svc, pods) if svc is not None else None
    if (svc is None and snap.has("services")) or (view is not None and not view.ready):
        yield Finding(
            code="service.dns",
            severity=Severity.CRITICAL,
            title="Cluster DNS is down: kube-system/kube-dns has no ready endpoints"
            if svc is not None
            else "Cluster DNS is missing: there is no kube-system/kube-dns service",
            subject="service/kube-system/kube-dns",
            evidence=tuple(
                [
                    f"kube-dns endpoints ({view.source}): none ready, {len(view.not_ready)} "
                    "not ready"
                    if view is not None
                    else "no kube-system/kube-dns service",
                    f"CoreDNS pods ({SELECTOR}): {len(pods)}",
                    *lines,
                ]
            ),
            cause="Every pod resolves service names through kube-dns: with no ready CoreDNS "
            "behind it, lookups time out and services look unreachable although their pods "
            "answer by IP.",
            remediation=(
                *_steps(),
                Step(
                    "See kube-dns's endpoints.",
                    "kubectl get endpointslices --namespace kube-system "
                    "-l kubernetes.io/service-name=kube-dns -o wide",
                ),
            ),
            docs=DNS_DOCS,
        )
    else:
        bad = [p for p in pods if not p.ready or "CrashLoopBackOff" in p.waiting_reasons]
        restarting = [p for p in pods if p.restarts >= RESTARTS]
        targets = sorted({t for c in parsed for _, ts in c.forwards for t in ts})
        if bad or (restarting and targets):
            steps = _steps()
            for t in targets[:3]:
                host = t.split("://")[-1].rsplit(":", 1)[0] if t.count(":") <= 1 else t
                steps.append(
                    Step(
                        f"Check that {host}, where {CUSTOM} forwards, answers from a pod "
                        "(network policies, NSGs and routes apply to CoreDNS's traffic too).",
                        "kubectl run aksdiag-dns --rm -it --restart=Never "
                        f"--image={DEBUG_IMAGE} -- nslookup kubernetes.io {q(host)}",
                    )
                )
            yield Finding(
                code="service.dns",
                severity=Severity.WARNING,
                title=f"{len(bad)} of {len(pods)} CoreDNS pods are not ready"
                if bad
                else f"CoreDNS restarts while {CUSTOM} forwards to {listing(targets, 3)}",
                subject="deployment/kube-system/coredns",
                evidence=tuple(lines),
                cause="Lookups that reach an unready or restarting CoreDNS replica fail or time "
                "out; with fewer replicas the rest may be overloaded."
                + (
                    f" {CUSTOM} forwards some zones elsewhere: if CoreDNS cannot reach those "
                    "servers, lookups under them time out and health checks may fail."
                    if targets
                    else ""
                ),
                remediation=tuple(steps),
                docs=DNS_DOCS,
            )
    for cf in parsed:
        if cf.errors:
            yield _custom_rejected(custom, cf)  # type: ignore[arg-type]


def _custom_rejected(cm: ConfigMap, cf: Corefile) -> Finding:
    return Finding(
        code="service.dns",
        severity=Severity.WARNING,
        title=f"{CUSTOM} key {cf.key} holds a block CoreDNS rejects",
        subject=f"configmap/kube-system/{CUSTOM}#{cf.key}",
        evidence=tuple(f"{CUSTOM}[{cf.key}] {e}" for e in cf.errors),
        cause="CoreDNS reads coredns-custom at start and on reload: a block it cannot parse "
        "keeps new pods crash-looping and makes running ones keep the old configuration.",
        remediation=(
            Step(
                "Read the ConfigMap.",
                f"kubectl get configmap {CUSTOM} --namespace kube-system -o yaml",
            ),
            Step(
                "Fix or remove the key, then restart CoreDNS so it loads the new configuration.",
                f"kubectl edit configmap {CUSTOM} --namespace kube-system && "
                "kubectl rollout restart deployment coredns --namespace kube-system",
            ),
            Step(
                "Watch CoreDNS load it.",
                f"kubectl logs --namespace kube-system -l {SELECTOR} --tail 20 --prefix",
            ),
        ),
        docs=CUSTOM_DOCS,
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="service.cluster_dns",
        scenario=SCENARIO,
        codes=("service.dns",),
        fn=cluster_dns,
        needs=("pods",),
        uses=("services", "endpointslices", "endpoints", "configmaps", "events"),
    ),
)
