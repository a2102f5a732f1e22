"""service: does the service exist, and what a service without a selector (endpoints by hand)
or an ExternalName alias means for reachability."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.nodecmd import DEBUG_IMAGE
from diagnostics.checks.service_common import (
    SCENARIO,
    EndpointView,
    endpoint_view,
    listing,
    slices_cmd,
    subject,
)
from diagnostics.model import Finding, Severity, Step
from diagnostics.snapshot import Service


def lookup(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    if ctx.args.service is not None:
        ns, name = ctx.args.service
        svc = snap.services_by_key.get(f"{ns}/{name}")
        if svc is None:
            yield _not_found(ctx, ns, name)
            return
        services = [svc]
    else:
        services = [s for s in snap.services if s.key != "default/kubernetes"]
    explicit = ctx.args.service is not None
    for svc in services:
        if svc.type == "ExternalName":
            if explicit:
                yield _external_name(svc)
            continue
        if svc.selector:
            continue
        view = endpoint_view(snap, svc)
        searched = snap.has("endpointslices") or snap.has("endpoints")
        if not explicit and (view.total or view.leader_election if view else not searched):
            continue  # in health, only selector-less services with no endpoints at all
        yield _no_selector(svc, view, searched)


def _not_found(ctx: CheckContext, ns: str, name: str) -> Finding:
    snap = ctx.snapshot
    in_ns = sorted(s.name for s in snap.services if s.namespace == ns)
    elsewhere = sorted(s.namespace for s in snap.services if s.name == name)
    evidence = []
    ns_known = ns in snap.namespaces_by_name or ns in snap.pods_by_namespace or in_ns
    if not ns_known:
        evidence.append(f"namespace {ns} does not exist (or holds nothing readable)")
    else:
        evidence.append(f"namespace {ns} has {len(in_ns)} services and none is named {name}")
    close = difflib.get_close_matches(name, in_ns, n=3, cutoff=0.5)
    if close:
        evidence.append(f"did you mean: {', '.join(f'{ns}/{c}' for c in close)}")
    if elsewhere:
        evidence.append(f"a service named {name} exists in: {', '.join(elsewhere)}")
    return Finding(
        code="service.not-found",
        severity=Severity.WARNING,
        title=f"Service {ns}/{name} does not exist",
        subject=f"service/{ns}/{name}",
        evidence=tuple(evidence),
        cause="Clients that use this name get an NXDOMAIN from cluster DNS: the service was "
        "never created, was deleted, or lives in another namespace.",
        remediation=(
            Step("List the services of the namespace.", f"kubectl get services -n {q(ns)}"),
            Step(
                "Find it in any namespace.",
                f"kubectl get services -A --field-selector {q('metadata.name=' + name)}",
            ),
        ),
        docs=DOCS["service"],
    )


def _external_name(svc: Service) -> Finding:
    return Finding(
        code="service.external-name",
        severity=Severity.INFO,
        title=f"Service {svc.key} is an ExternalName alias for {svc.external_name}",
        subject=subject(svc),
        evidence=(f"type ExternalName, externalName {svc.external_name}",),
        cause="An ExternalName service has no endpoints and no cluster IP: cluster DNS answers "
        "with a CNAME, so reachability depends on that name and its network path.",
        remediation=(
            Step(
                "Resolve the target from inside the cluster.",
                f"kubectl run aksdiag-dns -n {q(svc.namespace)} --rm -it --restart=Never "
                f"--image={DEBUG_IMAGE} -- nslookup {q(svc.external_name)}",
            ),
        ),
        docs=DOCS["service"],
    )


def _no_selector(svc: Service, view: EndpointView | None, searched: bool) -> Finding:
    evidence = [f"{svc.key} has no selector{' (headless)' if svc.headless else ''}"]
    if view is not None:
        if view.leader_election:
            evidence.append(
                "its Endpoints object is a leader-election record "
                "(control-plane.alpha.kubernetes.io/leader), not a backend list"
            )
        elif view.total:
            addrs = [ip for ip, _ in view.ready] + [f"{ip} (not ready)" for ip, _ in view.not_ready]
            evidence.append(f"{view.source} list by hand: {listing(addrs)}")
        else:
            evidence.append(f"{view.source} hold no address: traffic to it goes nowhere")
    elif searched:
        evidence.append("no EndpointSlice or Endpoints exists for it: traffic to it goes nowhere")
    else:
        evidence.append("EndpointSlices and Endpoints were not collected")
    return Finding(
        code="service.no-selector",
        severity=Severity.INFO,
        title=f"Service {svc.key} has no selector: its endpoints are managed by hand",
        subject=subject(svc),
        evidence=tuple(evidence),
        cause="Without a selector Kubernetes creates no endpoints; whoever made the service "
        "(an operator, a script) must keep its EndpointSlices pointing at live addresses.",
        remediation=(Step("See the endpoints it has.", slices_cmd(svc)),),
        docs=DOCS["service"],
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="service.lookup",
        scenario=SCENARIO,
        codes=("service.not-found", "service.no-selector", "service.external-name"),
        fn=lookup,
        needs=("services",),
        uses=("endpointslices", "endpoints", "namespaces", "pods"),
    ),
)
