"""`service`: why a service is not reachable from inside pods (the article's third section).

With `NAMESPACE/NAME` the checks look at that service; in `health` at every service in the
cluster. `service_lookup` checks existence and selector-less services; `service_backends`
selectors, readiness and target ports; `service_proxy` kube-proxy (or Cilium);
`service_network` network policies and CNI errors; `service_dns` cluster DNS (CoreDNS); `service_common` holds what they share.
Each module declares its own `CHECKS`; this one holds the scenario's causal links.
"""

from __future__ import annotations

from diagnostics.diagnosis import Link, same_subject

# What explains what (diagnostics.diagnosis): a missing service explains the other findings
# about it; a selector that matches no pod explains why nothing is ready behind it.
EXPLAINS = (
    Link("service.not-found", "service.*", same_subject, "nothing else about it can work"),
    Link(
        "service.selector-matches-no-pods",
        "service.no-ready-endpoints",
        same_subject,
        "it has no endpoints",
    ),
)
