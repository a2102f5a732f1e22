"""ManagedCluster JSON -> ClusterInfo, through azure-mgmt-containerservice's own models.

Two shapes reach us: the ARM REST body (`properties` wrapper, `authorizedIPRanges`) and
`az aks show -o json` (flattened, SDK attribute names re-camel-cased: `authorizedIpRanges`).
The SDK model silently drops the az spellings, so a case-insensitive key normaliser built from
the SDK's own field table puts both into the REST shape first.

`ARM_FIELDS` lists every REST field `parse_cluster` reads: `aksdiag capture` writes only these
into cluster.json (`diagnostics.allowlist.keep`), never the whole body. A check that needs a new
ManagedCluster field adds it to `parse_cluster` and here.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

from azure.mgmt.containerservice import models as aks
from azure.mgmt.core.tools import parse_resource_id

from diagnostics.snapshot import AgentPool, ClusterInfo, KubernetesVersion

# Top-level ARM resource keys; everything else in az output lives under `properties`.
_ENVELOPE = {
    "id",
    "name",
    "type",
    "location",
    "tags",
    "sku",
    "identity",
    "extendedlocation",
    "etag",
    "systemdata",
    "kind",
    "properties",
    "zones",
}


@cache
def _rest_names() -> dict[str, str]:
    """lowercased REST key -> its REST spelling, over every model of the SDK."""
    names: dict[str, str] = {}
    for _, cls in inspect.getmembers(aks, inspect.isclass):
        if not hasattr(cls, "as_dict"):
            continue
        try:
            cls({})  # type: ignore[call-arg]  # the field table is computed when the first instance is made
        except Exception:  # noqa: S112 - abstract or discriminated bases; skip them
            continue
        for field in getattr(cls, "_attr_to_rest_field", {}).values():
            rest = getattr(field, "_rest_name", None)
            if rest:
                names.setdefault(rest.lower(), rest)
    return names


def _normalise_keys(value: Any) -> Any:
    if isinstance(value, dict):
        names = _rest_names()
        return {names.get(str(k).lower(), k): _normalise_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise_keys(v) for v in value]
    return value


def to_rest_body(data: dict[str, Any]) -> dict[str, Any]:
    """Either shape of cluster.json -> the ARM REST body."""
    if not isinstance(data, dict):
        raise ValueError("cluster.json must hold a JSON object (az aks show -o json)")
    if "properties" in data and isinstance(data["properties"], dict):
        body = dict(data)
    else:
        body = {k: v for k, v in data.items() if k.lower() in _ENVELOPE}
        body["properties"] = {k: v for k, v in data.items() if k.lower() not in _ENVELOPE}
    return _normalise_keys(body)  # type: ignore[no-any-return]


_AP = "properties.apiServerAccessProfile"
_NET = "properties.networkProfile"
_POOL = "properties.agentPoolProfiles[]"
ARM_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "type",
    "location",
    "resourceGroup",
    "properties.provisioningState",
    "properties.powerState.code",
    "properties.currentKubernetesVersion",
    "properties.kubernetesVersion",
    "properties.fqdn",
    "properties.privateFQDN",
    f"{_AP}.authorizedIPRanges[]",
    f"{_AP}.enablePrivateCluster",
    f"{_AP}.privateDNSZone",
    f"{_AP}.enablePrivateClusterPublicFQDN",
    f"{_AP}.disableRunCommand",
    f"{_AP}.enableVnetIntegration",
    f"{_NET}.networkPlugin",
    f"{_NET}.networkPluginMode",
    f"{_NET}.networkPolicy",
    f"{_NET}.networkDataplane",
    f"{_NET}.podCidrs[]",
    f"{_NET}.podCidr",
    f"{_NET}.serviceCidrs[]",
    f"{_NET}.serviceCidr",
    f"{_NET}.dnsServiceIP",
    f"{_NET}.outboundType",
    f"{_NET}.loadBalancerProfile.effectiveOutboundIPs[].id",
    f"{_NET}.natGatewayProfile.effectiveOutboundIPs[].id",
    *(
        f"{_POOL}.{f}"
        for f in (
            "name",
            "count",
            "minCount",
            "maxCount",
            "enableAutoScaling",
            "maxPods",
            "vnetSubnetID",
            "podSubnetID",
            "osType",
            "mode",
            "vmSize",
            "upgradeSettings.maxSurge",
            "powerState.code",
            "provisioningState",
            "podIPAllocationMode",
        )
    ),
    "properties.aadProfile.managed",
    "properties.disableLocalAccounts",
    "properties.nodeResourceGroup",
    "properties.supportPlan",
    "systemData.lastModifiedAt",
    f"{_NET}.loadBalancerProfile.outboundIPPrefixes.publicIPPrefixes[].id",
    *(f"{_POOL}.{f}" for f in ("enableNodePublicIP", "nodePublicIPPrefixID")),
    *(
        f"{where}.status.provisioningError.{f}"
        for where in ("properties", _POOL)
        for f in ("code", "message", "details[].code", "details[].message")
    ),
)


def _str(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _ids(refs: Any) -> tuple[str, ...]:
    return tuple(str(r.get("id") if isinstance(r, dict) else r.id) for r in refs or () if r)


def _parse_id(resource_id: str) -> tuple[str, str]:
    """(subscription, resource group) of an ARM id; empty strings for what it lacks."""
    parts = parse_resource_id(resource_id)
    return str(parts.get("subscription", "")), str(parts.get("resource_group", ""))


def parse_cluster(data: dict[str, Any]) -> ClusterInfo:
    """Parse either cluster.json shape into the projection checks use."""
    mc = aks.ManagedCluster(to_rest_body(data))
    props = mc.properties or aks.ManagedClusterProperties({})
    access = props.api_server_access_profile
    net = props.network_profile
    lb = net.load_balancer_profile if net else None
    nat = net.nat_gateway_profile if net else None
    sub, rg = _parse_id(mc.id or "")
    # `az aks show` also prints resourceGroup; prefer it when the id is absent.
    rg = rg or str(data.get("resourceGroup") or "")
    pools = tuple(
        AgentPool(
            name=p.name or "",
            count=p.count or 0,
            min_count=p.min_count,
            max_count=p.max_count,
            autoscaling=bool(p.enable_auto_scaling),
            max_pods=p.max_pods or 0,
            vnet_subnet_id=p.vnet_subnet_id or "",
            pod_subnet_id=p.pod_subnet_id or "",
            os_type=_str(p.os_type) or "Linux",
            mode=_str(p.mode),
            vm_size=p.vm_size or "",
            max_surge=(p.upgrade_settings.max_surge if p.upgrade_settings else None) or "",
            power_state=_str(p.power_state.code) if p.power_state else "",
            provisioning_state=p.provisioning_state or "",
            pod_ip_allocation_mode=_str(getattr(p, "pod_ip_allocation_mode", None)),
            provisioning_error=_error(p.status.provisioning_error if p.status else None),
            node_public_ip=bool(p.enable_node_public_ip),
            node_public_ip_prefix_id=p.node_public_ip_prefix_id or "",
        )
        for p in props.agent_pool_profiles or ()
    )
    return ClusterInfo(
        id=mc.id or "",
        name=mc.name or "",
        resource_group=rg,
        subscription=sub,
        location=mc.location or "",
        provisioning_state=props.provisioning_state or "",
        power_state=_str(props.power_state.code) if props.power_state else None,
        kubernetes_version=props.current_kubernetes_version or props.kubernetes_version or "",
        fqdn=props.fqdn or "",
        private_fqdn=props.private_fqdn or "",
        authorized_ip_ranges=tuple(access.authorized_ip_ranges or ()) if access else (),
        private_cluster=bool(access and access.enable_private_cluster),
        private_dns_zone=(access.private_dns_zone or "") if access else "",
        private_public_fqdn=bool(access and access.enable_private_cluster_public_fqdn),
        run_command_disabled=bool(access and access.disable_run_command),
        vnet_integration=bool(access and access.enable_vnet_integration),
        network_plugin=_str(net.network_plugin) if net else "",
        network_plugin_mode=_str(net.network_plugin_mode) if net else "",
        network_policy=_str(net.network_policy) if net else "",
        network_dataplane=_str(net.network_dataplane) if net else "",
        pod_cidrs=tuple(net.pod_cidrs or ([net.pod_cidr] if net.pod_cidr else [])) if net else (),
        service_cidrs=tuple(net.service_cidrs or ([net.service_cidr] if net.service_cidr else []))
        if net
        else (),
        dns_service_ip=(net.dns_service_ip or "") if net else "",
        outbound_type=_str(net.outbound_type) if net else "",
        lb_outbound_ip_ids=_ids(lb.effective_outbound_i_ps) if lb else (),
        nat_outbound_ip_ids=_ids(nat.effective_outbound_i_ps) if nat else (),
        agent_pools=pools,
        aad=props.aad_profile is not None,
        local_accounts_disabled=bool(props.disable_local_accounts),
        node_resource_group=props.node_resource_group or "",
        provisioning_error=_error(props.status.provisioning_error if props.status else None),
        support_plan=_str(props.support_plan),
        last_modified=mc.system_data.last_modified_at.timestamp()
        if mc.system_data and mc.system_data.last_modified_at
        else None,
        lb_outbound_prefix_ids=_ids(lb.outbound_ip_prefixes.public_ip_prefixes)
        if lb and lb.outbound_ip_prefixes
        else (),
    )


def _error(err: Any) -> str:
    """An ARM ErrorDetail as one line: `code: message`, then the details' codes and messages."""
    if not err:
        return ""
    text = ": ".join(str(x) for x in (err.code, err.message) if x)
    details = [": ".join(str(x) for x in (d.code, d.message) if x) for d in err.details or ()]
    return "; ".join([text, *(d for d in details if d)])


def parse_versions(data: Any) -> list[KubernetesVersion]:
    """`az aks get-versions --location LOC -o json` (or the REST body: `properties.values`)
    -> the minor versions AKS offers there, with their support plans."""
    if isinstance(data, dict) and isinstance(data.get("properties"), dict):
        data = data["properties"]
    values = data.get("values") if isinstance(data, dict) else data
    if not isinstance(values, list):
        raise ValueError("expected `values`: a list of versions (az aks get-versions -o json)")
    out = []
    for v in values:
        if not isinstance(v, dict) or not v.get("version"):
            continue
        caps = v.get("capabilities") or {}
        plans = caps.get("supportPlan") or caps.get("supportPlans") or ()
        out.append(
            KubernetesVersion(
                minor=".".join(str(v["version"]).split(".")[:2]),
                support_plans=tuple(str(p) for p in plans),
                preview=bool(v.get("isPreview")),
            )
        )
    return out
