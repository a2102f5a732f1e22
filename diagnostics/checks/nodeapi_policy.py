"""`node-api`: network policies that cut pods off from the API server.

A pod selected by any policy with `Egress` in its policyTypes may only send what one of those
policies' egress rules allows. The API server is not a pod: `podSelector` and
`namespaceSelector` peers never match it. After kube-proxy's DNAT the packet goes to the
addresses of the `kubernetes` endpoints on port 443, so only a rule with no `to`, or an
`ipBlock` covering those addresses (and not excluded by `except`), on a port list that admits
TCP 443, lets it through.

Cilium policies count too: `toEntities: [kube-apiserver]` (or `all`) admits the API server,
`world` may or may not (Cilium can label the API server's address as kube-apiserver only), a
`toCIDR`/`toCIDRSet` admits it like an ipBlock, and an `egressDeny` rule that covers it wins
over every allow.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator

from diagnostics.checks.base import Check, CheckContext, q
from diagnostics.checks.nodeapi_common import API_PORT, SCENARIO, api_endpoints
from diagnostics.checks.policies import (
    for_namespace,
    namespaces_with_policies,
    policy_docs,
    read_commands,
    selects,
)
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import POLICY_KINDS
from diagnostics.snapshot import NetworkPolicy, Pod, PolicyPeer, PolicyPort, PolicyRule

MAX_NAMED = 5


def port_admits(ports: tuple[PolicyPort, ...], port: int, protocol: str = "TCP") -> bool:
    """Whether a rule's port list admits `port`/`protocol` on a destination that is not a pod
    (a named port resolves against the destination pod's containers, so it never matches)."""
    if not ports:
        return True
    for p in ports:
        if (p.protocol or "TCP").upper() not in (protocol, "ANY"):
            continue
        if p.port is None:
            return True
        if isinstance(p.port, int) and p.port <= port <= (p.end_port or p.port):
            return True
    return False


def peer_admits(peer: PolicyPeer, address: str) -> bool | None:
    """Whether a peer covers the API server's address (outside the cluster's pods); None when
    it may or may not (Cilium's `world`)."""
    if peer.entities:
        if {"all", "kube-apiserver"} & set(peer.entities):
            return True
        return None if "world" in peer.entities else False
    if peer.ip_block is None:
        return False  # pod and namespace selectors only ever match pods; FQDNs match by name
    try:
        addr = ipaddress.ip_address(address)
        block = ipaddress.ip_network(peer.ip_block, strict=False)
    except ValueError:
        return False
    if addr.version != block.version or addr not in block:
        return False
    for text in peer.ip_except:
        try:
            if addr in ipaddress.ip_network(text, strict=False):
                return False
        except ValueError:
            continue
    return True


def rule_admits(rule: PolicyRule, address: str | None, port: int = API_PORT) -> bool | None:
    """True/False, or None when the address is unknown and an ipBlock would decide."""
    if not port_admits(rule.ports, port):
        return False
    if not rule.peers:
        return True
    if address is None:
        if any(p.entities and {"all", "kube-apiserver"} & set(p.entities) for p in rule.peers):
            return True
        return None if any(p.ip_block or "world" in p.entities for p in rule.peers) else False
    verdicts = [peer_admits(p, address) for p in rule.peers]
    return True if True in verdicts else (None if None in verdicts else False)


def _verdict(rules: list[PolicyRule], address: str | None) -> bool | None:
    verdicts = [rule_admits(r, address) for r in rules]
    return True if True in verdicts else (None if None in verdicts else False)


def blocked_addresses(
    policies: list[NetworkPolicy], addresses: tuple[str, ...]
) -> list[str] | None:
    """The API server addresses `policies` do not let through (no allow rule admits them, or a
    deny rule covers them); None if undecidable."""
    allows = [r for p in policies for r in p.egress]
    denies = [r for p in policies for r in p.egress_deny]
    out: list[str] = []
    for address in addresses or (None,):
        denied, allowed = _verdict(denies, address), _verdict(allows, address)
        if denied is True or allowed is False:
            out.append(address or "<API server>")
        elif denied is None or allowed is None:
            return None
    return out


def describe_rule(rule: PolicyRule) -> str:
    peers = []
    for p in rule.peers:
        if p.entities or p.fqdns:
            peers += [f"entity {e}" for e in p.entities] + [f"FQDN {f}" for f in p.fqdns]
        elif p.ip_block:
            peers.append(
                f"ipBlock {p.ip_block}"
                + (f" except {', '.join(p.ip_except)}" if p.ip_except else "")
            )
        else:
            parts = []
            if p.namespace_selector is not None:
                parts.append(f"namespaceSelector {{{p.namespace_selector}}}")
            if p.pod_selector is not None:
                parts.append(f"podSelector {{{p.pod_selector}}}")
            peers.append(" + ".join(parts))
    ports = []
    for pp in rule.ports:
        if pp.port is None:
            ports.append(f"all {pp.protocol}")
        elif pp.end_port:
            ports.append(f"{pp.protocol}/{pp.port}-{pp.end_port}")
        else:
            ports.append(
                f"{pp.protocol}/{pp.port}" + (" (named)" if isinstance(pp.port, str) else "")
            )
    return f"to {', '.join(peers) or 'anywhere'} on {', '.join(ports) or 'all ports'}"


def _policy_line(policy: NetworkPolicy) -> str:
    rules = (
        "; ".join(describe_rule(r) for r in policy.egress) or "no egress rule: denies all egress"
    )
    if policy.egress_deny:
        rules += "; denies " + "; ".join(describe_rule(r) for r in policy.egress_deny)
    selector = "podSelector" if policy.kind == "NetworkPolicy" else "endpointSelector"
    return f"policy {policy.label} ({selector} {{{policy.pod_selector}}}): {rules}"


def _names(pods: list[Pod]) -> str:
    shown = ", ".join(p.name for p in pods[:MAX_NAMED])
    return shown + (f" and {len(pods) - MAX_NAMED} more" if len(pods) > MAX_NAMED else "")


def _allow_yaml(namespace: str, addresses: list[str]) -> str:
    blocks = "\n".join(
        f"        - ipBlock:\n            cidr: {a}/{32 if ':' not in a else 128}"
        for a in addresses
    )
    return (
        "kubectl apply -f - <<'EOF'\n"
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata:\n"
        "  name: allow-egress-to-apiserver\n"
        f"  namespace: {namespace}\n"
        "spec:\n"
        "  podSelector: {}\n"
        "  policyTypes:\n"
        "    - Egress\n"
        "  egress:\n"
        "    - to:\n"
        f"{blocks}\n"
        "      ports:\n"
        "        - protocol: TCP\n"
        f"          port: {API_PORT}\n"
        "EOF"
    )


def _egress_rules(policy: NetworkPolicy) -> bool:
    """Whether a policy's egress rules take part (a NetworkPolicy's only with Egress in its
    policyTypes; a Cilium policy's always, even when enableDefaultDeny leaves egress open)."""
    if policy.kind == "NetworkPolicy":
        return "Egress" in policy.policy_types
    return bool(policy.egress or policy.egress_deny)


def _cilium_allow_yaml(namespace: str) -> str:
    return (
        "kubectl apply -f - <<'EOF'\n"
        "apiVersion: cilium.io/v2\n"
        "kind: CiliumNetworkPolicy\n"
        "metadata:\n"
        "  name: allow-egress-to-apiserver\n"
        f"  namespace: {namespace}\n"
        "spec:\n"
        "  endpointSelector: {}\n"
        "  egress:\n"
        "    - toEntities:\n"
        "        - kube-apiserver\n"
        "      toPorts:\n"
        "        - ports:\n"
        f'            - port: "{API_PORT}"\n'
        "              protocol: TCP\n"
        "EOF"
    )


def policy_egress(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    eps = api_endpoints(snap)
    addresses = eps.ready if eps else ()
    for namespace in namespaces_with_policies(snap):
        pols = for_namespace(snap, namespace)
        egress = [p for p in pols if "Egress" in p.policy_types]
        if not egress:
            continue
        live = [
            p
            for p in snap.pods_by_namespace.get(namespace, [])
            if not p.host_network and not p.terminated
        ]
        groups: dict[tuple[str, ...], list[Pod]] = defaultdict(list)
        for pod in live:
            if any(selects(policy, pod) for policy in egress):  # egress-isolated
                applying = [
                    policy for policy in pols if _egress_rules(policy) and selects(policy, pod)
                ]
                groups[tuple(sorted(p.label for p in applying))].append(pod)
        policies_by_name = {p.label: p for p in pols}
        blocked_groups = []
        for key, pods in sorted(groups.items()):
            blocked = blocked_addresses([policies_by_name[n] for n in key], addresses)
            if blocked:
                blocked_groups.append((key, sorted(pods, key=lambda p: p.name), blocked))
        if blocked_groups:
            yield _finding(
                ctx,
                namespace,
                blocked_groups,
                policies_by_name,
                len(live),
                eps.source if eps else "",
            )


def _finding(
    ctx: CheckContext,
    namespace: str,
    groups: list[tuple[tuple[str, ...], list[Pod], list[str]]],
    policies: dict[str, NetworkPolicy],
    live: int,
    source: str,
) -> Finding:
    pods = [p for _, group, _ in groups for p in group]
    names = sorted({n for key, _, _ in groups for n in key})
    blocked = list(dict.fromkeys(a for _, _, addrs in groups for a in addrs))
    known = [a for a in blocked if not a.startswith("<")]
    target = ", ".join(f"{a}:{API_PORT}" for a in known) or f"the API server on {API_PORT}"
    evidence = [
        f"{len(pods)} of {live} running pods in {namespace} may not reach {target}"
        + (f" (the endpoints of default/kubernetes, from {source})" if known else "")
    ]
    for key, group, _ in groups:
        evidence.append(f"{', '.join(key)} select{'s' if len(key) == 1 else ''} {_names(group)}")
    evidence += [_policy_line(policies[n]) for n in names]
    evidence.append(
        "namespaceSelector and podSelector peers never match the API server: it is not a pod"
    )
    steps = []
    if known:
        steps.append(
            Step(
                f"Allow egress from {namespace} to the API server's address on TCP {API_PORT} "
                "(narrow podSelector to the pods that call the API if you prefer).",
                _allow_yaml(namespace, known),
            )
        )
        steps.append(
            Step(
                f"Test from inside {pods[0].name}: this adds an ephemeral debug container to the pod "
                "(it shares the pod's network, so the policies apply). An HTTP status means "
                "reachable; a timeout means still blocked.",
                f"kubectl debug --namespace {q(namespace)} {q(pods[0].name)} -i "
                "--image=mcr.microsoft.com/azure-cli -- sh -c "
                + q(
                    f'curl -sk --max-time 5 -o /dev/null -w "%{{http_code}}\\n" https://{known[0]}:{API_PORT}/version'
                ),
            )
        )
    else:
        steps.append(
            Step(
                "Find the API server's in-cluster address (the kubernetes endpoints), then allow "
                f"egress from {namespace} to it as an ipBlock /32 on TCP {API_PORT}.",
                "kubectl get endpointslices --namespace default -l kubernetes.io/service-name=kubernetes "
                "-o jsonpath='{.items[*].endpoints[*].addresses[*]}'",
            )
        )
    involved = [policies[n] for n in names]
    if any(p.kind != "NetworkPolicy" for p in involved):
        steps.append(
            Step(
                "With Cilium, a CiliumNetworkPolicy can allow the API server by its entity "
                "instead of its address (an egressDeny rule that covers it still wins).",
                _cilium_allow_yaml(namespace),
            )
        )
    for cmd in read_commands(involved, namespace):
        steps.append(Step("Review the policies.", cmd))
    return Finding(
        code="nodeapi.network-policy-egress",
        severity=Severity.WARNING,
        title=f"Network policies in {namespace} block egress to the API server for {len(pods)} pods",
        subject=f"Namespace/{namespace}",
        evidence=tuple(evidence),
        cause="These pods are egress-isolated and no egress rule admits the API server's "
        f"address on TCP {API_PORT}. Operators, controllers and any pod using a Kubernetes "
        "client time out calling it (`dial tcp ...:443: i/o timeout`).",
        remediation=tuple(steps),
        docs=policy_docs(involved),
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.policy_egress",
        scenario=SCENARIO,
        codes=("nodeapi.network-policy-egress",),
        fn=policy_egress,
        needs=("networkpolicies", "pods"),
        uses=("endpointslices", "endpoints", *POLICY_KINDS),
    ),
)
