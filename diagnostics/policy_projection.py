"""Cilium and Calico policy objects -> the NetworkPolicy records the policy checks evaluate.

Cilium (`cilium.io/v2`): `endpointSelector` selects the pods (label keys may carry a `k8s:` or
`any:` prefix; `io.kubernetes.pod.namespace` names the namespace); `ingress`/`egress` rules
allow, `ingressDeny`/`egressDeny` rules deny and win over allows. A direction is isolated once
a policy has rules for it (unless `enableDefaultDeny` says otherwise). Peers are endpoints,
entities (`kube-apiserver`, `world`, `cluster`, `all`...), CIDRs and FQDNs; `toPorts` limits
ports. Unlike NetworkPolicy, an empty rule `{}` admits nothing, and a rule with only `toPorts`
admits every peer on those ports.

Calico (`crd.projectcalico.org/v1`) policies are ordered, carry actions (Allow, Deny, Pass,
Log) and their own selector language: they are kept by name and kind only, and reported as not
evaluated.
"""

from __future__ import annotations

from sys import intern
from typing import Any

from diagnostics.snapshot import (
    LabelSelector,
    NetworkPolicy,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    Requirement,
)

Raw = dict[str, Any]
NS_LABEL = "io.kubernetes.pod.namespace"
NAME_LABEL = "kubernetes.io/metadata.name"
_NOTHING = LabelSelector(expressions=(Requirement("aksdiag.invalid/never", "Exists"),))


def _key(raw: Any) -> str:
    key = str(raw)
    for prefix in ("k8s:", "any:"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _selector(raw: Raw | None) -> LabelSelector:
    raw = raw or {}
    return LabelSelector(
        match_labels=tuple(
            sorted((_key(k), str(v)) for k, v in (raw.get("matchLabels") or {}).items())
        ),
        expressions=tuple(
            Requirement(
                _key(e.get("key", "")), str(e.get("operator", "")), tuple(e.get("values") or ())
            )
            for e in raw.get("matchExpressions") or ()
        ),
    )


def _endpoint_peer(raw: Raw | None, clusterwide: bool) -> PolicyPeer:
    """An endpoint selector as a pod + namespace peer: a CiliumNetworkPolicy's selectors stay
    in its namespace unless they name one; a clusterwide one's cover every namespace."""
    sel = _selector(raw)
    labels = dict(sel.match_labels)
    ns = labels.pop(NS_LABEL, None)
    pods = LabelSelector(tuple(sorted(labels.items())), sel.expressions)
    if ns is not None:
        return PolicyPeer(pod_selector=pods, namespace_selector=LabelSelector(((NAME_LABEL, ns),)))
    if clusterwide:
        return PolicyPeer(pod_selector=pods, namespace_selector=LabelSelector())
    return PolicyPeer(pod_selector=pods)


def _ports(rule: Raw) -> tuple[PolicyPort, ...]:
    out = []
    for to_ports in rule.get("toPorts") or ():
        for p in to_ports.get("ports") or ():
            text = str(p.get("port") or "").strip()
            port: int | str | None = int(text) if text.isdigit() else (text or None)
            if port == 0:
                port = None
            end = p.get("endPort")
            out.append(
                PolicyPort(str(p.get("protocol") or "ANY").upper(), port, int(end) if end else None)
            )
    return tuple(out)


def _rules(rules: Any, direction: str, clusterwide: bool) -> tuple[PolicyRule, ...]:
    side = "from" if direction == "ingress" else "to"
    out = []
    for rule in rules or ():
        peers = [_endpoint_peer(s, clusterwide) for s in rule.get(f"{side}Endpoints") or ()]
        entities = tuple(str(e).lower() for e in rule.get(f"{side}Entities") or ())
        if entities:
            peers.append(PolicyPeer(entities=entities))
        peers += [PolicyPeer(ip_block=str(c)) for c in rule.get(f"{side}CIDR") or ()]
        for cs in rule.get(f"{side}CIDRSet") or ():
            if cs.get("cidr"):
                peers.append(
                    PolicyPeer(ip_block=str(cs["cidr"]), ip_except=tuple(cs.get("except") or ()))
                )
            else:  # a CIDR group reference: addresses this projection cannot see
                peers.append(PolicyPeer(entities=("cidr-group",)))
        for f in rule.get("toFQDNs") or () if side == "to" else ():
            peers.append(PolicyPeer(fqdns=(str(f.get("matchName") or f.get("matchPattern")),)))
        for other in ("Services", "Groups", "Nodes", "Requires"):
            if rule.get(f"{side}{other}"):
                peers.append(PolicyPeer(entities=(f"{side}{other}",)))
        ports = _ports(rule)
        if not peers and not ports:
            continue  # `{}`: Cilium matches nothing with it; it only turns default deny on
        out.append(PolicyRule(tuple(peers), ports))
    return tuple(out)


def _spec(raw: Raw) -> Raw:
    if isinstance(raw.get("spec"), dict):
        return dict(raw["spec"])
    specs = [s for s in raw.get("specs") or () if isinstance(s, dict)]
    if not specs:
        return {}
    merged = dict(specs[0])
    for s in specs[1:]:  # several specs: their rules add up when they select the same pods
        if s.get("endpointSelector") == merged.get("endpointSelector"):
            for k in ("ingress", "egress", "ingressDeny", "egressDeny"):
                merged[k] = [*(merged.get(k) or ()), *(s.get(k) or ())]
    return merged


def cilium_policy(raw: Raw) -> NetworkPolicy:
    meta = raw.get("metadata") or {}
    clusterwide = raw.get("kind") == "CiliumClusterwideNetworkPolicy" or "namespace" not in meta
    spec = _spec(raw)
    default_deny = spec.get("enableDefaultDeny") or {}
    types = tuple(
        t
        for t, keys in (
            ("Ingress", ("ingress", "ingressDeny")),
            ("Egress", ("egress", "egressDeny")),
        )
        if any(spec.get(k) for k in keys) and default_deny.get(t.lower(), True) is not False
    )
    selector = _selector(spec["endpointSelector"]) if "endpointSelector" in spec else _NOTHING
    return NetworkPolicy(
        namespace="" if clusterwide else intern(meta.get("namespace", "default")),
        name=meta.get("name", ""),
        pod_selector=selector,
        policy_types=types,
        ingress=_rules(spec.get("ingress"), "ingress", clusterwide),
        egress=_rules(spec.get("egress"), "egress", clusterwide),
        kind="CiliumClusterwideNetworkPolicy" if clusterwide else "CiliumNetworkPolicy",
        ingress_deny=_rules(spec.get("ingressDeny"), "ingress", clusterwide),
        egress_deny=_rules(spec.get("egressDeny"), "egress", clusterwide),
    )


def calico_policy(raw: Raw) -> NetworkPolicy:
    meta, spec = raw.get("metadata") or {}, raw.get("spec") or {}
    global_ = raw.get("kind") == "GlobalNetworkPolicy" or "namespace" not in meta
    return NetworkPolicy(
        namespace="" if global_ else intern(meta.get("namespace", "default")),
        name=meta.get("name", ""),
        pod_selector=_NOTHING,
        policy_types=tuple(str(t) for t in spec.get("types") or ()),
        ingress=(),
        egress=(),
        kind="Calico GlobalNetworkPolicy" if global_ else "Calico NetworkPolicy",
    )


PROJECTORS = {
    "ciliumnetworkpolicies": cilium_policy,
    "ciliumclusterwidenetworkpolicies": cilium_policy,
    "networkpolicies.crd.projectcalico.org": calico_policy,
    "globalnetworkpolicies": calico_policy,
}


# ---------------------------------------------------------------- what the projectors read
# Every field the projectors above read (`diagnostics.allowlist` paths): `aksdiag capture`
# writes only these (merged into `diagnostics.projection.FIELDS`).
_SELECTOR = (
    "matchLabels{}",
    "matchExpressions[].key",
    "matchExpressions[].operator",
    "matchExpressions[].values[]",
)
_PEERS = tuple(
    path
    for side in ("from", "to")
    for path in (
        *(f"{side}Endpoints[].{s}" for s in _SELECTOR),
        f"{side}Entities[]",
        f"{side}CIDR[]",
        f"{side}CIDRSet[].cidr",
        f"{side}CIDRSet[].except[]",
        f"{side}CIDRSet[].cidrGroupRef",
        *(f"{side}{other}[]" for other in ("Services", "Groups", "Nodes", "Requires")),
    )
)
_RULE = (
    *_PEERS,
    "toFQDNs[].matchName",
    "toFQDNs[].matchPattern",
    *(f"toPorts[].ports[].{f}" for f in ("port", "protocol", "endPort")),
)
_CILIUM_SPEC = (
    *(f"endpointSelector.{s}" for s in _SELECTOR),
    "enableDefaultDeny.ingress",
    "enableDefaultDeny.egress",
    *(f"{d}[].{r}" for d in ("ingress", "egress", "ingressDeny", "egressDeny") for r in _RULE),
)
_CILIUM = (
    "kind",
    "metadata.name",
    "metadata.namespace",
    *(f"{top}.{p}" for top in ("spec", "specs[]") for p in _CILIUM_SPEC),
)
_CALICO = ("kind", "metadata.name", "metadata.namespace", "spec.types[]")
FIELDS: dict[str, tuple[str, ...]] = {
    "ciliumnetworkpolicies": _CILIUM,
    "ciliumclusterwidenetworkpolicies": _CILIUM,
    "networkpolicies.crd.projectcalico.org": _CALICO,
    "globalnetworkpolicies": _CALICO,
}
