"""Raw Kubernetes JSON (as `kubectl get X -o json` or the API returns it) -> snapshot records.

Pure functions shared by the snapshot reader and the live collectors. They keep only what the
checks use, intern repeated strings, and redact free text on the way in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from sys import intern
from typing import Any

from diagnostics.policy_projection import PROJECTORS as POLICY_PROJECTORS
from diagnostics.redact import redact_mapping, redact_text
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


def _labels(meta: Raw, key: str = "labels") -> dict[str, str]:
    raw = meta.get(key) or {}
    return {intern(str(k)): intern(str(v)) for k, v in raw.items()}


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
        match_labels=tuple(
            sorted((str(k), str(v)) for k, v in (raw.get("matchLabels") or {}).items())
        ),
        expressions=tuple(
            Requirement(
                str(e.get("key", "")), str(e.get("operator", "")), tuple(e.get("values") or ())
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
        message=redact_text(message[:MAX_MESSAGE]),
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
        selector={str(k): str(v) for k, v in sel.items()} if sel else None,
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
        service=(meta.get("labels") or {}).get("kubernetes.io/service-name", ""),
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
        node_selector={str(k): str(v) for k, v in (template.get("nodeSelector") or {}).items()},
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


def configmap(raw: Raw) -> ConfigMap:
    meta = raw.get("metadata") or {}
    data = {str(k): str(v)[:4000] for k, v in (raw.get("data") or {}).items()}
    return ConfigMap(meta.get("namespace", ""), meta.get("name", ""), redact_mapping(data))


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
    "configmaps": configmap,
    "roles": role,
    "rolebindings": rolebinding,
    "clusterroles": role,
    "clusterrolebindings": rolebinding,
}
PROJECTORS.update(POLICY_PROJECTORS)  # Cilium and Calico policy kinds
