"""ARM network JSON -> `AzureNetwork`, and the field allowlist `aksdiag capture` writes.

Two shapes reach us, as for cluster.json: the ARM REST body (a `properties` wrapper on every
resource and sub-resource, `privateIPAddress`) and `az network ... show -o json` (flattened,
`privateIpAddress`). `flatten` lifts `properties` and matches keys case-insensitively, ignoring
underscores (the SDK's `as_dict()` keys work too); `keep` then projects a resource onto its
type's allowlist in `FIELDS`, the only fields the parsers below read and the only ones capture
writes. A resource is known by its `type` (or, without one, by its id), case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from diagnostics.netpath.model import (
    AzureNetwork,
    DnsZone,
    EgressEndpoint,
    Firewall,
    FirewallPolicy,
    FwCollection,
    FwRule,
    LbFrontend,
    LoadBalancer,
    NatGateway,
    Nic,
    Nsg,
    NsgRule,
    Route,
    RouteTable,
    RuleCollectionGroup,
    Subnet,
    VirtualNetwork,
    VnetLink,
)

Spec = dict[str, Any]  # field name -> True, or the Spec of a nested object / list of objects
ID: Spec = {"id": True}
_SUBNET: Spec = {
    "id": True,
    "name": True,
    "type": True,
    "addressPrefix": True,
    "addressPrefixes": True,
    "networkSecurityGroup": ID,
    "routeTable": ID,
    "natGateway": ID,
}
_NSG_RULE: Spec = {
    "name": True,
    "priority": True,
    "direction": True,
    "access": True,
    "protocol": True,
    "sourceAddressPrefix": True,
    "sourceAddressPrefixes": True,
    "destinationAddressPrefix": True,
    "destinationAddressPrefixes": True,
    "destinationPortRange": True,
    "destinationPortRanges": True,
}
_PROTOCOL: Spec = {"protocolType": True, "port": True}
_RULE: Spec = {
    "name": True,
    "ruleType": True,
    "sourceAddresses": True,
    "sourceIpGroups": True,
    "protocols": True,
    "ipProtocols": True,
    "targetFqdns": True,
    "fqdnTags": True,
    "destinationAddresses": True,
    "destinationFqdns": True,
    "destinationPorts": True,
    "destinationIpGroups": True,
}
_COLLECTION: Spec = {
    "name": True,
    "priority": True,
    "ruleCollectionType": True,
    "action": {"type": True},
    "rules": _RULE,
}

VNET = "microsoft.network/virtualnetworks"
SUBNET = "microsoft.network/virtualnetworks/subnets"
NSG = "microsoft.network/networksecuritygroups"
NIC = "microsoft.network/networkinterfaces"
ROUTE_TABLE = "microsoft.network/routetables"
FIREWALL = "microsoft.network/azurefirewalls"
POLICY = "microsoft.network/firewallpolicies"
GROUP = "microsoft.network/firewallpolicies/rulecollectiongroups"
ZONE = "microsoft.network/privatednszones"
LINK = "microsoft.network/privatednszones/virtualnetworklinks"
PUBLIC_IP = "microsoft.network/publicipaddresses"
IP_PREFIX = "microsoft.network/publicipprefixes"
NAT_GATEWAY = "microsoft.network/natgateways"
LOAD_BALANCER = "microsoft.network/loadbalancers"
A_RECORD = "microsoft.network/privatednszones/a"

FIELDS: dict[str, Spec] = {
    VNET: {
        "id": True,
        "name": True,
        "type": True,
        "addressSpace": {"addressPrefixes": True},
        "dhcpOptions": {"dnsServers": True},
        "subnets": _SUBNET,
        "virtualNetworkPeerings": {"name": True, "remoteVirtualNetwork": ID, "peeringState": True},
    },
    SUBNET: _SUBNET,
    NSG: {
        "id": True,
        "name": True,
        "type": True,
        "securityRules": _NSG_RULE,
        "networkInterfaces": ID,
    },
    NIC: {
        "id": True,
        "name": True,
        "type": True,
        "networkSecurityGroup": ID,
        "ipConfigurations": {"name": True, "privateIPAddress": True, "subnet": ID},
    },
    ROUTE_TABLE: {
        "id": True,
        "name": True,
        "type": True,
        "routes": {
            "name": True,
            "addressPrefix": True,
            "nextHopType": True,
            "nextHopIpAddress": True,
        },
    },
    FIREWALL: {
        "id": True,
        "name": True,
        "type": True,
        "firewallPolicy": ID,
        "virtualHub": ID,
        "ipConfigurations": {
            "name": True,
            "privateIPAddress": True,
            "publicIPAddress": ID,
            "subnet": ID,
        },
        "hubIPAddresses": {
            "privateIPAddress": True,
            "publicIPs": {"addresses": {"address": True}},
        },
        "applicationRuleCollections": {**_COLLECTION, "rules": {**_RULE, "protocols": _PROTOCOL}},
        "networkRuleCollections": _COLLECTION,
    },
    POLICY: {"id": True, "name": True, "type": True, "basePolicy": ID, "ruleCollectionGroups": ID},
    GROUP: {
        "id": True,
        "name": True,
        "type": True,
        "priority": True,
        "ruleCollections": {**_COLLECTION, "rules": {**_RULE, "protocols": True}},
    },
    ZONE: {"id": True, "name": True, "type": True},
    LINK: {
        "id": True,
        "name": True,
        "type": True,
        "virtualNetwork": ID,
        "virtualNetworkLinkState": True,
    },
    PUBLIC_IP: {"id": True, "name": True, "type": True, "ipAddress": True, "publicIPPrefix": ID},
    IP_PREFIX: {"id": True, "name": True, "type": True, "ipPrefix": True},
    LOAD_BALANCER: {
        "id": True,
        "name": True,
        "type": True,
        "frontendIPConfigurations": {
            "id": True,
            "privateIPAddress": True,
            "publicIPAddress": ID,
            "publicIPPrefix": ID,
        },
        "backendAddressPools": {"id": True, "backendIPConfigurations": ID},
        "outboundRules": {"frontendIPConfigurations": ID},
    },
    NAT_GATEWAY: {
        "id": True,
        "name": True,
        "type": True,
        "publicIpAddresses": ID,
        "publicIpPrefixes": ID,
    },
    A_RECORD: {"id": True, "name": True, "type": True, "aRecords": {"ipv4Address": True}},
}


def _norm(key: str) -> str:
    return key.replace("_", "").lower()


def flatten(value: Any) -> Any:
    """Lift every `properties` wrapper into its object, recursively."""
    if isinstance(value, dict):
        out = {k: flatten(v) for k, v in value.items() if k != "properties"}
        props = value.get("properties")
        if isinstance(props, dict):
            out.update({k: flatten(v) for k, v in props.items()})
        return out
    if isinstance(value, list):
        return [flatten(v) for v in value]
    return value


def keep(value: Any, spec: Spec | bool) -> Any:
    """`value` (flattened) projected onto `spec`, keys spelled as in the spec."""
    if spec is True or not isinstance(spec, dict):
        return value
    if isinstance(value, list):
        return [keep(v, spec) for v in value if isinstance(v, dict)]
    if not isinstance(value, dict):
        return None
    by_norm = {_norm(k): v for k, v in value.items()}
    out = {}
    for name, sub in spec.items():
        v = by_norm.get(_norm(name))
        if v is not None:
            out[name] = keep(v, sub)
    return out


def resource_type(obj: dict[str, Any]) -> str:
    """The lowercased ARM type: the `type` field, or what the id says."""
    declared = next((v for k, v in obj.items() if k.lower() == "type"), None)
    if isinstance(declared, str) and "/" in declared:
        return declared.lower()
    rid = str(next((v for k, v in obj.items() if k.lower() == "id"), "") or "")
    segs = [s for s in rid.split("/") if s]
    low = [s.lower() for s in segs]
    if "providers" not in low:
        return ""
    rest = segs[low.index("providers") + 1 :]
    if not rest:
        return ""
    return "/".join([rest[0], *rest[1::2]]).lower()


def project(obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """One resource in either shape -> (type, allowlisted flattened body); None if unknown."""
    kind = resource_type(obj)
    spec = FIELDS.get(kind)
    if spec is None:
        return None
    return kind, keep(flatten(obj), spec)


# ---------------------------------------------------------------- parsers
def _s(v: Any) -> str:
    return "" if v is None else str(v)


def _ref(v: Any) -> str:
    return _s(v.get("id")) if isinstance(v, dict) else ""


def _strs(*values: Any) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if isinstance(v, list):
            out += [_s(x) for x in v if x not in (None, "")]
        elif v not in (None, ""):
            out.append(_s(v))
    return tuple(out)


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _subnet(d: dict[str, Any]) -> Subnet:
    return Subnet(
        _s(d.get("id")),
        _s(d.get("name")),
        _strs(d.get("addressPrefix"), d.get("addressPrefixes")),
        _ref(d.get("networkSecurityGroup")),
        _ref(d.get("routeTable")),
        _ref(d.get("natGateway")),
    )


def _vnet(d: dict[str, Any]) -> VirtualNetwork:
    return VirtualNetwork(
        _s(d.get("id")),
        _s(d.get("name")),
        _strs((d.get("addressSpace") or {}).get("addressPrefixes")),
        _strs((d.get("dhcpOptions") or {}).get("dnsServers")),
        tuple(_subnet(s) for s in d.get("subnets") or ()),
        tuple(
            r
            for p in d.get("virtualNetworkPeerings") or ()
            if (r := _ref(p.get("remoteVirtualNetwork")))
        ),
    )


def _nsg(d: dict[str, Any]) -> Nsg:
    rules = tuple(
        NsgRule(
            _s(r.get("name")),
            _int(r.get("priority"), 65535),
            _s(r.get("direction")),
            _s(r.get("access")),
            _s(r.get("protocol")) or "*",
            _strs(r.get("sourceAddressPrefix"), r.get("sourceAddressPrefixes")),
            _strs(r.get("destinationAddressPrefix"), r.get("destinationAddressPrefixes")),
            _strs(r.get("destinationPortRange"), r.get("destinationPortRanges")),
        )
        for r in d.get("securityRules") or ()
    )
    nics = tuple(n for x in d.get("networkInterfaces") or () if (n := _ref(x)))
    return Nsg(_s(d.get("id")), _s(d.get("name")), rules, nics)


def _nic(d: dict[str, Any]) -> Nic:
    configs = d.get("ipConfigurations") or ()
    return Nic(
        _s(d.get("id")),
        _s(d.get("name")),
        _ref(d.get("networkSecurityGroup")),
        tuple(s for c in configs if (s := _ref(c.get("subnet")))),
    )


def _route_table(d: dict[str, Any]) -> RouteTable:
    routes = tuple(
        Route(
            _s(r.get("name")),
            _s(r.get("addressPrefix")),
            _s(r.get("nextHopType")),
            _s(r.get("nextHopIpAddress")),
        )
        for r in d.get("routes") or ()
    )
    return RouteTable(_s(d.get("id")), _s(d.get("name")), routes)


def _protocols(value: Any) -> tuple[str, ...]:
    out = []
    for p in value or ():
        if isinstance(p, dict):
            out.append(f"{_s(p.get('protocolType'))}:{_int(p.get('port'))}")
        elif p:
            out.append(_s(p))
    return tuple(out)


def _rule(r: dict[str, Any], kind: str) -> FwRule:
    rule_type = _s(r.get("ruleType")).lower()
    if rule_type:
        kind = "application" if rule_type.startswith("application") else "network"
    sources = _strs(r.get("sourceAddresses")) + tuple(
        f"ipgroup:{g}" for g in _strs(r.get("sourceIpGroups"))
    )
    destinations = _strs(r.get("destinationAddresses")) + tuple(
        f"ipgroup:{g}" for g in _strs(r.get("destinationIpGroups"))
    )
    if kind == "application":
        return FwRule(
            kind,
            _s(r.get("name")),
            sources,
            _protocols(r.get("protocols")),
            fqdns=_strs(r.get("targetFqdns")),
            fqdn_tags=_strs(r.get("fqdnTags")),
        )
    return FwRule(
        kind,
        _s(r.get("name")),
        sources,
        _strs(r.get("ipProtocols"), r.get("protocols")),
        destinations,
        _strs(r.get("destinationPorts")),
        _strs(r.get("destinationFqdns")),
    )


def _collection(c: dict[str, Any], kind: str, **where: Any) -> FwCollection:
    ctype = _s(c.get("ruleCollectionType")).lower()
    rules = tuple(_rule(r, kind) for r in c.get("rules") or ())
    if "nat" in ctype:
        kind = "nat"
    elif rules:
        kind = rules[0].kind
    action = _s((c.get("action") or {}).get("type")) or "Allow"
    return FwCollection(
        _s(c.get("name")), _int(c.get("priority"), 65000), action, kind, rules, **where
    )


def _firewall(d: dict[str, Any]) -> Firewall:
    ips = _strs(*[c.get("privateIPAddress") for c in d.get("ipConfigurations") or ()])
    hub = d.get("hubIPAddresses") or {}
    ips += _strs(hub.get("privateIPAddress") if isinstance(hub, dict) else None)
    colls = tuple(_collection(c, "application") for c in d.get("applicationRuleCollections") or ())
    colls += tuple(_collection(c, "network") for c in d.get("networkRuleCollections") or ())
    configs = d.get("ipConfigurations") or ()
    pip_ids = tuple(r for c in configs if (r := _ref(c.get("publicIPAddress"))))
    hub_pips = (hub.get("publicIPs") or {}) if isinstance(hub, dict) else {}
    literal = _strs(*[a.get("address") for a in hub_pips.get("addresses") or ()])
    return Firewall(
        _s(d.get("id")),
        _s(d.get("name")),
        ips,
        _ref(d.get("firewallPolicy")),
        colls,
        _ref(d.get("virtualHub")),
        pip_ids,
        literal,
        tuple(dict.fromkeys(r for c in configs if (r := _ref(c.get("subnet"))))),
    )


def _load_balancer(d: dict[str, Any]) -> LoadBalancer:
    frontends = tuple(
        LbFrontend(
            _s(f.get("id")),
            _s(f.get("privateIPAddress")),
            _ref(f.get("publicIPAddress")),
            _ref(f.get("publicIPPrefix")),
        )
        for f in d.get("frontendIPConfigurations") or ()
    )
    nics = tuple(
        dict.fromkeys(
            r.lower().split("/ipconfigurations/")[0]
            for pool in d.get("backendAddressPools") or ()
            for c in pool.get("backendIPConfigurations") or ()
            if (r := _ref(c))
        )
    )
    outbound = tuple(
        r
        for rule in d.get("outboundRules") or ()
        for f in rule.get("frontendIPConfigurations") or ()
        if (r := _ref(f))
    )
    return LoadBalancer(_s(d.get("id")), _s(d.get("name")), frontends, nics, outbound)


def _group(d: dict[str, Any]) -> RuleCollectionGroup:
    rid, name, prio = _s(d.get("id")), _s(d.get("name")), _int(d.get("priority"), 65000)
    policy = rid.split("/")[-3] if rid.count("/") >= 3 else ""
    colls = tuple(
        _collection(c, "network", group=name, group_priority=prio, policy=policy)
        for c in d.get("ruleCollections") or ()
    )
    return RuleCollectionGroup(rid, name, prio, colls)


def add_resource(net: AzureNetwork, obj: dict[str, Any]) -> bool:
    """Parse one resource (either shape) into `net`; False when it is not a type aksdiag reads."""
    projected = project(obj)
    if projected is None:
        return False
    kind, d = projected
    rid = _s(d.get("id")).lower()
    if kind == VNET:
        net.add_vnet(_vnet(d))
    elif kind == SUBNET:
        net.subnets[rid] = _subnet(d)
    elif kind == NSG:
        net.nsgs[rid] = _nsg(d)
    elif kind == NIC:
        net.nics[rid] = _nic(d)
    elif kind == ROUTE_TABLE:
        net.route_tables[rid] = _route_table(d)
    elif kind == FIREWALL:
        net.firewalls[rid] = _firewall(d)
    elif kind == POLICY:
        net.policies[rid] = FirewallPolicy(
            _s(d.get("id")),
            _s(d.get("name")),
            _ref(d.get("basePolicy")),
            tuple(g for x in d.get("ruleCollectionGroups") or () if (g := _ref(x))),
        )
    elif kind == GROUP:
        net.groups[rid] = _group(d)
    elif kind == ZONE:
        net.zones[rid] = DnsZone(_s(d.get("id")), _s(d.get("name")))
    elif kind == LINK:
        net.links[rid] = VnetLink(
            _s(d.get("id")),
            _s(d.get("name")),
            _ref(d.get("virtualNetwork")),
            _s(d.get("virtualNetworkLinkState")),
        )
    elif kind == A_RECORD:
        zone = rid.split("/a/")[0]
        ips = _strs(*[r.get("ipv4Address") for r in d.get("aRecords") or ()])
        net.a_records.setdefault(zone, {})[_s(d.get("name")).lower()] = ips
    elif kind == PUBLIC_IP:
        net.public_ips[rid] = _s(d.get("ipAddress"))  # "" when read but not allocated
        if prefix := _ref(d.get("publicIPPrefix")):
            net.ip_prefix_of[rid] = prefix
    elif kind == IP_PREFIX and d.get("ipPrefix"):
        net.ip_prefixes[rid] = _s(d.get("ipPrefix"))
    elif kind == LOAD_BALANCER:
        net.balancers[rid] = _load_balancer(d)
    elif kind == NAT_GATEWAY:
        net.nat_gateways[rid] = NatGateway(
            _s(d.get("id")),
            _s(d.get("name")),
            tuple(r for x in d.get("publicIpAddresses") or () if (r := _ref(x))),
            tuple(r for x in d.get("publicIpPrefixes") or () if (r := _ref(x))),
        )
    return True


def resources_in(doc: Any) -> Iterable[dict[str, Any]]:
    """The resources in one JSON document: an object, a list, or `{"value": [...]}`."""
    if isinstance(doc, list):
        yield from (d for d in doc if isinstance(d, dict))
    elif isinstance(doc, dict):
        if isinstance(doc.get("value"), list) and "id" not in doc:
            yield from (d for d in doc["value"] if isinstance(d, dict))
        else:
            yield doc


def parse_egress_endpoints(doc: Any) -> list[EgressEndpoint]:
    """`az aks egress-endpoints list -o json` (a list) or the REST body (`{"value": [...]}`)."""
    out: list[EgressEndpoint] = []
    for cat in resources_in(doc):
        c = flatten(cat)
        by = {_norm(k): v for k, v in c.items()}
        for ep in by.get("endpoints") or ():
            e = {_norm(k): v for k, v in ep.items()}
            for det in e.get("endpointdetails") or [{}]:
                dd = {_norm(k): v for k, v in det.items()}
                out.append(
                    EgressEndpoint(
                        _s(by.get("category")),
                        _s(e.get("domainname")),
                        _int(dd.get("port"), 443),
                        _s(dd.get("protocol")) or "Https",
                        _s(dd.get("description")),
                    )
                )
    return out


EGRESS_FIELDS: Spec = {
    "category": True,
    "endpoints": {
        "domainName": True,
        "endpointDetails": {"port": True, "protocol": True, "description": True},
    },
}
