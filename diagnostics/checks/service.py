"""`service`: why a service is not reachable from inside pods (the article's third section).

With `NAMESPACE/NAME` the checks look at that service; in `health` at every service in the
cluster. `service_lookup` checks existence and selector-less services; `service_backends`
selectors, readiness and target ports; `service_proxy` kube-proxy (or Cilium);
`service_network` network policies and CNI errors; `service_dns` cluster DNS (CoreDNS); `service_common` holds what they share.
"""

from __future__ import annotations

from diagnostics.checks.base import Check, CheckRegistry
from diagnostics.checks.service_backends import backends_check, target_ports
from diagnostics.checks.service_common import SCENARIO
from diagnostics.checks.service_dns import cluster_dns
from diagnostics.checks.service_lookup import lookup
from diagnostics.checks.service_network import cni_errors, network_policy
from diagnostics.checks.service_proxy import kube_proxy
from diagnostics.diagnosis import Link, same_subject
from diagnostics.resources import CLUSTER, POLICY_KINDS

SERVICES, PODS, SLICES, ENDPOINTS = "services", "pods", "endpointslices", "endpoints"
EVENTS, NODES, POLICIES, DAEMONSETS = "events", "nodes", "networkpolicies", "daemonsets"
NAMESPACES, CONFIGMAPS = "namespaces", "configmaps"


# What explains what (diagnostics.diagnosis): a missing service explains the other findings
# about it; a selector that matches no pod explains why nothing is ready behind it.
EXPLAINS = (
    Link("service.not-found", "service.*", same_subject, "nothing else about it can work"),
    Link("service.selector-matches-no-pods", "service.no-ready-endpoints", same_subject,
         "it has no endpoints"),
)  # fmt: skip


def register(registry: CheckRegistry) -> None:
    registry.explains(EXPLAINS)
    registry.add(
        Check(
            "service.lookup",
            SCENARIO,
            ("service.not-found", "service.no-selector", "service.external-name"),
            lookup,
            needs=(SERVICES,),
            uses=(SLICES, ENDPOINTS, NAMESPACES, PODS),
        )
    )
    registry.add(
        Check(
            "service.backends",
            SCENARIO,
            ("service.selector-matches-no-pods", "service.no-ready-endpoints"),
            backends_check,
            needs=(SERVICES, PODS),
            uses=(SLICES, ENDPOINTS, EVENTS),
        )
    )
    registry.add(
        Check(
            "service.target_ports",
            SCENARIO,
            ("service.target-port-mismatch",),
            target_ports,
            needs=(SERVICES, PODS),
        )
    )
    registry.add(
        Check(
            "service.kube_proxy",
            SCENARIO,
            ("service.kube-proxy-unhealthy",),
            kube_proxy,
            needs=(DAEMONSETS,),
            uses=(PODS, NODES, CLUSTER),
        )
    )
    registry.add(
        Check(
            "service.network_policy",
            SCENARIO,
            ("service.network-policy",),
            network_policy,
            needs=(SERVICES, PODS, POLICIES),
            uses=(CLUSTER, NODES, *POLICY_KINDS),
        )
    )
    registry.add(
        Check(
            "service.cni_errors",
            SCENARIO,
            ("service.cni-errors",),
            cni_errors,
            needs=(SERVICES, PODS, EVENTS),
            uses=(NODES,),
        )
    )
    registry.add(
        Check(
            "service.cluster_dns",
            SCENARIO,
            ("service.dns",),
            cluster_dns,
            needs=(PODS,),
            uses=(SERVICES, SLICES, ENDPOINTS, CONFIGMAPS, EVENTS),
        )
    )
