"""Raw Kubernetes JSON (as `kubectl get X -o json` or the API returns it) -> snapshot records.

Pure functions shared by the snapshot reader and the live collectors. They keep only what the
checks use, intern repeated strings, and redact free text on the way in: event messages,
ConfigMap values, and label keys and values (a `deploy-token=ghp_…` label must not reach
evidence or a suggested command; selectors go through the same function, so they still match).

`FIELDS` lists, per resource, every field the projector reads: `aksdiag capture` writes exactly
these (`diagnostics.allowlist.keep`), so a check that needs a new field adds it here, and
`tests/test_capture.py::test_projection_reads_only_its_field_list` fails until it does.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from sys import intern
from typing import Any

from diagnostics.policy_projection import FIELDS as POLICY_FIELDS
from diagnostics.policy_projection import PROJECTORS as POLICY_PROJECTORS
from diagnostics.redact import MASK, is_secret_key, redact_mapping, redact_text
from diagnostics.snapshot import (
    ConfigMap,
    ContainerPort,
    DaemonSet,
    EndpointAddress,
    Endpoints,
    EndpointSlice,
    Event,
    LabelSelector,
    Namespace,
    NetworkContainer,
    NetworkPolicy,
    Node,
    NodeNetworkConfig,
    Pod,
    PolicyPeer,
    PolicyPort,
    PolicyRule,
    RbacRule,
    Requirement,
    Role,
    RoleBinding,
    Service,
    ServiceAccount,
    ServicePort,
    SliceEndpoint,
    Subject,
)

Raw = dict[str, Any]
MAX_MESSAGE = 2000


def parse_time(value: Any) -> float | None:
    """RFC 3339 (Kubernetes' `2024-05-01T10:00:00Z`, with or without fractions) -> epoch."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


_SALT = secrets.token_bytes(16)  # per process: masks compare equal within a run, not offline


def _masked(value: str) -> str:
    """A masked label value that still compares: the same secret gives the same mask, two
    different secrets two different masks (a selector must not match the wrong pods)."""
    digest = hmac.new(_SALT, value.encode(), "sha256").hexdigest()[:8]
    return f"{MASK[:-1]}:{digest}]"


@lru_cache(maxsize=4096)
def _key(key: str) -> tuple[str, bool]:
    """A label key redacted, and whether it says its value is a secret (keys repeat a lot)."""
    return intern(redact_text(key, 256) if len(key) >= 20 else key), is_secret_key(key)


@lru_cache(maxsize=1 << 16)
def _secret_value(value: str) -> bool:
    return redact_text(value, 256) != value


def _label(key: str, value: str) -> tuple[str, str]:
    """A label (or selector) pair with secrets masked; label values are at most 63 characters
    of `[A-Za-z0-9._-]`, so only token formats and high-entropy runs (20+ characters) apply."""
    clean, secret = _key(key)
    if (secret and value) or (len(value) >= 20 and _secret_value(value)):
        value = _masked(value)
    return clean, intern(value)


def label_map(raw: Any) -> dict[str, str]:
    """Labels, `matchLabels`, a service selector or a nodeSelector, redacted."""
    return dict(_label(str(k), str(v)) for k, v in (raw or {}).items())


def _labels(meta: Raw, key: str = "labels") -> dict[str, str]:
    return label_map(meta.get(key))


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _port_value(value: Any) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if text.isdigit() else text


def selector(raw: Raw | None) -> LabelSelector:
    raw = raw or {}
    return LabelSelector(
        match_labels=tuple(sorted(label_map(raw.get("matchLabels")).items())),
        expressions=tuple(
            Requirement(
                _label(str(e.get("key", "")), "")[0],
                str(e.get("operator", "")),
                tuple(_label(str(e.get("key", "")), str(v))[1] for v in e.get("values") or ()),
            )
            for e in raw.get("matchExpressions") or ()
        ),
    )


# ---------------------------------------------------------------- core objects
def pod(raw: Raw) -> Pod:
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    ports = tuple(
        ContainerPort(
            intern(c.get("name", "")),
            intern(p.get("name", "") or ""),
            _int(p.get("containerPort")),
            intern(p.get("protocol", "TCP") or "TCP"),
        )
        for c in spec.get("containers") or ()
        for p in c.get("ports") or ()
    )
    waiting: list[str] = []
    restarts = 0
    finished: float | None = None
    for cs in status.get("containerStatuses") or ():
        restarts += _int(cs.get("restartCount"))
        state = cs.get("state") or {}
        if "waiting" in state and (state["waiting"] or {}).get("reason"):
            waiting.append(intern(state["waiting"]["reason"]))
        if "terminated" in state:
            t = parse_time((state["terminated"] or {}).get("finishedAt"))
            if t and (finished is None or t > finished):
                finished = t
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    owners = meta.get("ownerReferences") or ()
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else {})
    return Pod(
        namespace=intern(meta.get("namespace", "default")),
        name=meta.get("name", ""),
        node=intern(spec.get("nodeName", "") or ""),
        phase=intern(status.get("phase", "") or ""),
        ip=status.get("podIP", "") or "",
        host_network=bool(spec.get("hostNetwork")),
        labels=_labels(meta),
        ports=ports,
        ready=ready,
        waiting_reasons=tuple(waiting),
        restarts=restarts,
        created=parse_time(meta.get("creationTimestamp")),
        finished=finished,
        owner_kind=intern(owner.get("kind", "")),
        owner_name=owner.get("name", ""),
        service_account=intern(spec.get("serviceAccountName", "default") or "default"),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def event(raw: Raw) -> Event:
    """Both core/v1 Events (involvedObject, count, lastTimestamp) and events.k8s.io/v1
    (regarding, series, eventTime) shapes."""
    meta = raw.get("metadata") or {}
    obj = raw.get("involvedObject") or raw.get("regarding") or {}
    series = raw.get("series") or {}
    count = _int(raw.get("count") or series.get("count"), 1) or 1
    first = parse_time(
        raw.get("firstTimestamp") or raw.get("eventTime") or meta.get("creationTimestamp")
    )
    last = (
        parse_time(
            raw.get("lastTimestamp") or series.get("lastObservedTime") or raw.get("eventTime")
        )
        or first
    )
    source = raw.get("source") or {}
    message = raw.get("message") or raw.get("note") or ""
    return Event(
        namespace=intern(obj.get("namespace") or meta.get("namespace", "") or ""),
        kind=intern(obj.get("kind", "") or ""),
        name=obj.get("name", "") or "",
        reason=intern(raw.get("reason", "") or ""),
        message=redact_text(str(message), MAX_MESSAGE),  # capped first, saying so
        type=intern(raw.get("type", "Normal") or "Normal"),
        count=count,
        first=first,
        last=last,
        node=intern(source.get("host") or raw.get("reportingInstance") or ""),
    )


def node(raw: Raw) -> Node:
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    cidrs = tuple(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    ip = next(
        (
            a.get("address", "")
            for a in status.get("addresses") or ()
            if a.get("type") == "InternalIP"
        ),
        "",
    )
    alloc = status.get("allocatable") or status.get("capacity") or {}
    return Node(
        name=meta.get("name", ""),
        labels=_labels(meta),
        pod_cidrs=cidrs,
        max_pods=_int(alloc.get("pods")),
        ready=ready,
        internal_ip=ip,
        unschedulable=bool(spec.get("unschedulable")),
        created=parse_time(meta.get("creationTimestamp")),
        provider_id=str(spec.get("providerID") or ""),
    )


def service(raw: Raw) -> Service:
    meta, spec = raw.get("metadata") or {}, raw.get("spec") or {}
    sel = spec.get("selector")
    return Service(
        namespace=intern(meta.get("namespace", "default")),
        name=meta.get("name", ""),
        type=intern(spec.get("type", "ClusterIP") or "ClusterIP"),
        cluster_ip=spec.get("clusterIP", "") or "",
        selector=label_map(sel) if sel else None,
        ports=tuple(
            ServicePort(
                p.get("name", "") or "",
                _int(p.get("port")),
                _port_value(p.get("targetPort")) or _int(p.get("port")),
                p.get("protocol", "TCP") or "TCP",
            )
            for p in spec.get("ports") or ()
        ),
        publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
        external_name=spec.get("externalName", "") or "",
    )


def _ports(raw_ports: Any) -> tuple[tuple[str, int, str], ...]:
    return tuple(
        (p.get("name", "") or "", _int(p.get("port")), p.get("protocol", "TCP") or "TCP")
        for p in raw_ports or ()
    )


def endpointslice(raw: Raw) -> EndpointSlice:
    meta = raw.get("metadata") or {}
    eps = []
    for e in raw.get("endpoints") or ():
        cond = e.get("conditions") or {}
        ready = cond.get("ready")
        ready = True if ready is None else bool(ready)  # nil means ready (API docs)
        serving = cond.get("serving")
        target = e.get("targetRef") or {}
        eps.append(
            SliceEndpoint(
                addresses=tuple(e.get("addresses") or ()),
                ready=ready,
                serving=ready if serving is None else bool(serving),
                terminating=bool(cond.get("terminating")),
                node=e.get("nodeName", "") or "",
                target_kind=target.get("kind", "") or "",
                target_name=target.get("name", "") or "",
            )
        )
    return EndpointSlice(
        namespace=intern(meta.get("namespace", "default")),
        name=meta.get("name", ""),
        service=str((meta.get("labels") or {}).get("kubernetes.io/service-name", "")),
        address_type=raw.get("addressType", "IPv4") or "IPv4",
        endpoints=tuple(eps),
        ports=_ports(raw.get("ports")),
    )


def endpoints(raw: Raw) -> Endpoints:
    meta = raw.get("metadata") or {}

    def addrs(items: Any) -> tuple[EndpointAddress, ...]:
        return tuple(
            EndpointAddress(
                a.get("ip", "") or "",
                (a.get("targetRef") or {}).get("name", ""),
                a.get("nodeName", "") or "",
            )
            for a in items or ()
        )

    ready: list[EndpointAddress] = []
    not_ready: list[EndpointAddress] = []
    ports: list[tuple[str, int, str]] = []
    for subset in raw.get("subsets") or ():
        ready.extend(addrs(subset.get("addresses")))
        not_ready.extend(addrs(subset.get("notReadyAddresses")))
        ports.extend(_ports(subset.get("ports")))
    annotations = {
        k: ""
        for k in (meta.get("annotations") or {})
        if k == "control-plane.alpha.kubernetes.io/leader"
    }
    return Endpoints(
        namespace=intern(meta.get("namespace", "default")),
        name=meta.get("name", ""),
        ready=tuple(ready),
        not_ready=tuple(not_ready),
        ports=tuple(dict.fromkeys(ports)),
        annotations=annotations,
    )


def _policy_rules(rules: Any, peer_key: str) -> tuple[PolicyRule, ...]:
    out = []
    for rule in rules or ():
        peers = []
        for peer in rule.get(peer_key) or ():
            block = peer.get("ipBlock") or {}
            peers.append(
                PolicyPeer(
                    pod_selector=selector(peer["podSelector"]) if "podSelector" in peer else None,
                    namespace_selector=selector(peer["namespaceSelector"])
                    if "namespaceSelector" in peer
                    else None,
                    ip_block=block.get("cidr"),
                    ip_except=tuple(block.get("except") or ()),
                )
            )
        ports = tuple(
            PolicyPort(
                p.get("protocol", "TCP") or "TCP",
                _port_value(p.get("port")),
                _int(p.get("endPort")) or None,
            )
            for p in rule.get("ports") or ()
        )
        out.append(PolicyRule(tuple(peers), ports))
    return tuple(out)


def networkpolicy(raw: Raw) -> NetworkPolicy:
    meta, spec = raw.get("metadata") or {}, raw.get("spec") or {}
    types = spec.get("policyTypes")
    if not types:  # the API's defaulting: Ingress always, Egress when egress rules exist
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    return NetworkPolicy(
        namespace=intern(meta.get("namespace", "default")),
        name=meta.get("name", ""),
        pod_selector=selector(spec.get("podSelector")),
        policy_types=tuple(types),
        ingress=_policy_rules(spec.get("ingress"), "from"),
        egress=_policy_rules(spec.get("egress"), "to"),
    )


def daemonset(raw: Raw) -> DaemonSet:
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    return DaemonSet(
        namespace=intern(meta.get("namespace", "default")),
        name=meta.get("name", ""),
        labels=_labels(meta),
        desired=_int(status.get("desiredNumberScheduled")),
        current=_int(status.get("currentNumberScheduled")),
        ready=_int(status.get("numberReady")),
        available=_int(status.get("numberAvailable")),
        node_selector=label_map(template.get("nodeSelector")),
    )


def nodenetworkconfig(raw: Raw) -> NodeNetworkConfig:
    meta, spec, status = raw.get("metadata") or {}, raw.get("spec") or {}, raw.get("status") or {}
    scaler = status.get("scaler") or {}
    containers = tuple(
        NetworkContainer(
            id=nc.get("id", "") or "",
            assignment_mode=nc.get("assignmentMode", "") or "",
            type=nc.get("type", "") or "",
            subnet_name=nc.get("subnetName", "") or "",
            subnet_cidr=nc.get("subnetAddressSpace", "") or "",
            ip_count=len(nc.get("ipAssignments") or ()),
            status=nc.get("status", "") or "",
            primary_ip=nc.get("primaryIP", "") or "",
        )
        for nc in status.get("networkContainers") or ()
    )
    return NodeNetworkConfig(
        name=meta.get("name", ""),
        requested=_int(spec.get("requestedIPCount")),
        assigned=_int(status.get("assignedIPCount")),
        batch_size=_int(scaler.get("batchSize"), 16) or 16,
        release_threshold_percent=_int(scaler.get("releaseThresholdPercent"), 150) or 150,
        request_threshold_percent=_int(scaler.get("requestThresholdPercent"), 50) or 50,
        max_ip_count=_int(scaler.get("maxIPCount")),
        status=status.get("status", "") or "",
        containers=containers,
    )


def namespace(raw: Raw) -> Namespace:
    meta = raw.get("metadata") or {}
    labels = _labels(meta)
    name = meta.get("name", "")
    labels.setdefault("kubernetes.io/metadata.name", name)
    return Namespace(name=name, labels=labels)


def serviceaccount(raw: Raw) -> ServiceAccount:
    meta = raw.get("metadata") or {}
    return ServiceAccount(intern(meta.get("namespace", "") or ""), meta.get("name", "") or "")


def configmap(raw: Raw) -> ConfigMap:
    meta = raw.get("metadata") or {}
    data = {str(k): str(v) for k, v in (raw.get("data") or {}).items()}
    return ConfigMap(meta.get("namespace", ""), meta.get("name", ""), redact_mapping(data, 4000))


def _rules(raw: Raw) -> tuple[RbacRule, ...]:
    return tuple(
        RbacRule(
            verbs=tuple(r.get("verbs") or ()),
            api_groups=tuple(r.get("apiGroups") or ()),
            resources=tuple(r.get("resources") or ()),
            resource_names=tuple(r.get("resourceNames") or ()),
            non_resource_urls=tuple(r.get("nonResourceURLs") or ()),
        )
        for r in raw.get("rules") or ()
    )


def role(raw: Raw) -> Role:
    meta = raw.get("metadata") or {}
    aggregation = (raw.get("aggregationRule") or {}).get("clusterRoleSelectors") or ()
    return Role(
        meta.get("namespace", "") or "",
        meta.get("name", ""),
        _rules(raw),
        labels=_labels(meta),
        aggregation=tuple(selector(s) for s in aggregation),
    )


def rolebinding(raw: Raw) -> RoleBinding:
    meta = raw.get("metadata") or {}
    ref = raw.get("roleRef") or {}
    return RoleBinding(
        namespace=meta.get("namespace", "") or "",
        name=meta.get("name", ""),
        role_kind=ref.get("kind", ""),
        role_name=ref.get("name", ""),
        subjects=tuple(
            Subject(s.get("kind", ""), s.get("name", ""), s.get("namespace", "") or "")
            for s in raw.get("subjects") or ()
        ),
    )


PROJECTORS: dict[str, Callable[[Raw], Any]] = {
    "pods": pod,
    "services": service,
    "endpoints": endpoints,
    "endpointslices": endpointslice,
    "events": event,
    "nodes": node,
    "networkpolicies": networkpolicy,
    "daemonsets": daemonset,
    "nodenetworkconfigs": nodenetworkconfig,
    "namespaces": namespace,
    "serviceaccounts": serviceaccount,
    "configmaps": configmap,
    "roles": role,
    "rolebindings": rolebinding,
    "clusterroles": role,
    "clusterrolebindings": rolebinding,
}
PROJECTORS.update(POLICY_PROJECTORS)  # Cilium and Calico policy kinds


# ---------------------------------------------------------------- what the projectors read
# Every field each projector above reads, as `diagnostics.allowlist` paths. `aksdiag capture`
# writes only these. A projector that reads a new field adds it here (the capture round-trip
# test fails until it does).
_META = ("metadata.name", "metadata.namespace")
_SELECTOR = (
    "matchLabels{}",
    "matchExpressions[].key",
    "matchExpressions[].operator",
    "matchExpressions[].values[]",
)
_RBAC_RULE = ("verbs[]", "apiGroups[]", "resources[]", "resourceNames[]", "nonResourceURLs[]")
_PEER = (
    "ipBlock.cidr",
    "ipBlock.except[]",
    *(f"{s}.{f}" for s in ("podSelector", "namespaceSelector") for f in _SELECTOR),
)
_POLICY_PORT = ("ports[].protocol", "ports[].port", "ports[].endPort")
_STATE = "status.containerStatuses[]"
FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        *_META,
        "metadata.labels{}",
        "metadata.creationTimestamp",
        "metadata.deletionTimestamp",
        "metadata.ownerReferences[].kind",
        "metadata.ownerReferences[].name",
        "metadata.ownerReferences[].controller",
        "spec.nodeName",
        "spec.hostNetwork",
        "spec.serviceAccountName",
        "spec.containers[].name",
        "spec.containers[].ports[].name",
        "spec.containers[].ports[].containerPort",
        "spec.containers[].ports[].protocol",
        "status.phase",
        "status.podIP",
        f"{_STATE}.restartCount",
        f"{_STATE}.state.waiting.reason",
        f"{_STATE}.state.terminated.finishedAt",
        "status.conditions[].type",
        "status.conditions[].status",
    ),
    "services": (
        *_META,
        "spec.type",
        "spec.clusterIP",
        "spec.selector{}",
        "spec.ports[].name",
        "spec.ports[].port",
        "spec.ports[].targetPort",
        "spec.ports[].protocol",
        "spec.publishNotReadyAddresses",
        "spec.externalName",
    ),
    "endpoints": (
        *_META,
        "metadata.annotations{control-plane.alpha.kubernetes.io/leader}",
        *(
            f"subsets[].{a}[].{f}"
            for a in ("addresses", "notReadyAddresses")
            for f in ("ip", "targetRef.name", "nodeName")
        ),
        "subsets[].ports[].name",
        "subsets[].ports[].port",
        "subsets[].ports[].protocol",
    ),
    "endpointslices": (
        *_META,
        "metadata.labels{kubernetes.io/service-name}",
        "addressType",
        "endpoints[].addresses[]",
        "endpoints[].conditions.ready",
        "endpoints[].conditions.serving",
        "endpoints[].conditions.terminating",
        "endpoints[].nodeName",
        "endpoints[].targetRef.kind",
        "endpoints[].targetRef.name",
        "ports[].name",
        "ports[].port",
        "ports[].protocol",
    ),
    "events": (
        "metadata.namespace",
        "metadata.creationTimestamp",
        *(
            f"{o}.{f}"
            for o in ("involvedObject", "regarding")
            for f in ("namespace", "kind", "name")
        ),
        "count",
        "series.count",
        "series.lastObservedTime",
        "firstTimestamp",
        "eventTime",
        "lastTimestamp",
        "source.host",
        "reportingInstance",
        "reason",
        "message",
        "note",
        "type",
    ),
    "nodes": (
        "metadata.name",
        "metadata.labels{}",
        "metadata.creationTimestamp",
        "spec.podCIDRs[]",
        "spec.providerID",
        "spec.podCIDR",
        "spec.unschedulable",
        "status.conditions[].type",
        "status.conditions[].status",
        "status.addresses[].type",
        "status.addresses[].address",
        "status.allocatable.pods",
        "status.capacity.pods",
    ),
    "networkpolicies": (
        *_META,
        *(f"spec.podSelector.{f}" for f in _SELECTOR),
        "spec.policyTypes[]",
        *(f"spec.ingress[].from[].{f}" for f in _PEER),
        *(f"spec.ingress[].{f}" for f in _POLICY_PORT),
        *(f"spec.egress[].to[].{f}" for f in _PEER),
        *(f"spec.egress[].{f}" for f in _POLICY_PORT),
    ),
    "daemonsets": (
        *_META,
        "metadata.labels{}",
        "status.desiredNumberScheduled",
        "status.currentNumberScheduled",
        "status.numberReady",
        "status.numberAvailable",
        "spec.template.spec.nodeSelector{}",
    ),
    "nodenetworkconfigs": (
        "metadata.name",
        "metadata.namespace",
        "spec.requestedIPCount",
        "status.assignedIPCount",
        *(
            f"status.scaler.{f}"
            for f in (
                "batchSize",
                "releaseThresholdPercent",
                "requestThresholdPercent",
                "maxIPCount",
            )
        ),
        "status.status",
        *(
            f"status.networkContainers[].{f}"
            for f in (
                "id",
                "assignmentMode",
                "type",
                "subnetName",
                "subnetAddressSpace",
                "status",
                "primaryIP",
                "ipAssignments[].ip",
            )
        ),
    ),
    "namespaces": ("metadata.name", "metadata.labels{}"),
    "serviceaccounts": _META,
    "configmaps": (*_META, "data{}"),
    "roles": (
        *_META,
        "metadata.labels{}",
        *(f"rules[].{f}" for f in _RBAC_RULE),
        *(f"aggregationRule.clusterRoleSelectors[].{f}" for f in _SELECTOR),
    ),
    "rolebindings": (
        *_META,
        "roleRef.kind",
        "roleRef.name",
        "subjects[].kind",
        "subjects[].name",
        "subjects[].namespace",
    ),
}
FIELDS["clusterroles"] = FIELDS["roles"]
FIELDS["clusterrolebindings"] = FIELDS["rolebindings"]
FIELDS.update(POLICY_FIELDS)
