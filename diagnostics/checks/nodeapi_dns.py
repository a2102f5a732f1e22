"""`node-api`: a private cluster's DNS, as the nodes (the VNet's DNS servers) and pods
(CoreDNS and its `coredns-custom` forwards) resolve the API server's private name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.nodeapi_common import (
    SCENARIO,
    cluster_of,
    egress_symptoms,
    node_command,
    not_ready_nodes,
    subnet_ids,
)
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER
from diagnostics.snapshot import ClusterInfo, ConfigMap


def _vnet_of(subnet_id: str) -> str:
    return subnet_id.split("/subnets/")[0] if "/subnets/" in subnet_id else ""


_ZONE_HEADER = re.compile(r"^\s*([A-Za-z0-9._-]+?)(?::\d+)?\s*\{", re.MULTILINE)
_FORWARD = re.compile(r"^\s*forward\s+\S+\s+([^\n}]+)", re.MULTILINE)


def coredns_forwards(configmaps: list[ConfigMap]) -> list[tuple[str, str]]:
    """(zone, forward targets) from kube-system/coredns-custom's `*.server` entries."""
    out = []
    for cm in configmaps:
        if cm.namespace != "kube-system" or cm.name != "coredns-custom":
            continue
        for key, text in cm.data.items():
            if not key.endswith(".server"):
                continue
            blocks = list(_ZONE_HEADER.finditer(text))
            for i, m in enumerate(blocks):
                body = text[m.end() : blocks[i + 1].start() if i + 1 < len(blocks) else len(text)]
                fwd = _FORWARD.search(body)
                out.append((m.group(1).rstrip("."), fwd.group(1).strip() if fwd else ""))
    return out


def _zone_name(c: ClusterInfo) -> str:
    zone = c.private_dns_zone.strip()
    if "/privatednszones/" in zone.lower():
        return zone.rsplit("/", 1)[-1]
    return ""


def private_dns(ctx: CheckContext) -> Iterator[Finding]:
    c = cluster_of(ctx)
    if not c.private_cluster or c.vnet_integration:
        return  # API Server VNet Integration: nodes dial the internal IP, no DNS on the path
    snap = ctx.snapshot
    zone = c.private_dns_zone.strip()
    custom_zone = zone.lower() not in ("", "system")
    host = c.private_fqdn or c.fqdn
    forwards = [
        (z, t)
        for z, t in coredns_forwards(snap.configmaps)
        if z.endswith("azmk8s.io") or (host and host.endswith("." + z))
    ]
    if not custom_zone and not forwards:
        return
    symptoms = egress_symptoms(snap)
    evidence = []
    if custom_zone:
        evidence.append(
            f"privateDnsZone = {zone}"
            + (
                " (no private DNS zone: nodes resolve the public FQDN, published in public "
                "DNS with the private IP; no zone link is needed)"
                if zone.lower() == "none"
                else " (custom zone)"
            )
        )
    evidence.append(f"API server private FQDN: {host or 'unknown'}")
    evidence += [f"kube-system/coredns-custom forwards {z} to {t or '?'}" for z, t in forwards]
    if snap.has("configmaps") and not forwards:
        evidence.append("kube-system/coredns-custom forwards no zone of the API server name")
    evidence.append(
        "the VNet's custom DNS servers are not part of the cluster resource: check them below"
    )
    evidence += symptoms
    steps = []
    vnets = list(dict.fromkeys(v for v in map(_vnet_of, subnet_ids(ctx)) if v))
    if vnets:
        steps.append(
            Step(
                "See which DNS servers the nodes use (empty means Azure DNS).",
                f"az network vnet show --ids {q(vnets[0])} --query dhcpOptions.dnsServers",
            )
        )
    node = next((n.name for n in not_ready_nodes(snap)), None) or (
        snap.nodes[0].name if snap.nodes else None
    )
    if node and host:
        steps.append(
            Step(
                f"Resolve the API server name on node {node} (kubelet's resolver), "
                "read-only through Azure: it must give a private IP.",
                node_command(ctx, node, f"getent hosts {host}"),
            )
        )
    if host:
        steps.append(
            Step(
                "Resolve it from a pod, through CoreDNS (creates a short-lived pod).",
                "kubectl run aksdiag-dns-test --namespace default --rm -i --restart=Never "
                f"--image=mcr.microsoft.com/azurelinux/busybox:1.36 -- nslookup {q(host)}",
            )
        )
    steps.append(
        Step(
            "With privateDNSZone none the name is in public DNS: custom DNS servers must "
            "resolve public names and must not drop public answers that carry a private IP "
            "(DNS rebinding protection); no zone link is involved."
            if zone.lower() == "none"
            else "Custom DNS servers must forward the zone (or everything) to Azure DNS "
            "168.63.129.16 from a virtual network linked to the private DNS zone "
            "(hub and spoke with custom DNS)."
        )
    )
    zone_name = _zone_name(c)
    if zone_name:
        zone_rg = zone.split("/")[4] if len(zone.split("/")) > 4 else ""
        steps.append(
            Step(
                "List the virtual networks linked to the zone.",
                f"az network private-dns link vnet list --resource-group {q(zone_rg)} "
                f"--zone-name {q(zone_name)} -o table",
            )
        )
    yield Finding(
        code="nodeapi.private-dns",
        severity=Severity.WARNING if symptoms else Severity.INFO,
        title="Private cluster with custom DNS: nodes must resolve the API server's private name"
        + (" (tunnel pods or nodes are failing)" if symptoms else ""),
        subject=f"{c.id or c.name}#private-dns",
        evidence=tuple(evidence),
        cause="Nodes and pods reach a private API server by its private FQDN. With custom DNS, "
        "that name resolves only if the DNS servers forward its zone to Azure DNS from a linked "
        "network; otherwise kubelets and the tunnel cannot find the API server.",
        remediation=tuple(steps),
        docs=DOCS["private-dns"],
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.private_dns",
        scenario=SCENARIO,
        codes=("nodeapi.private-dns",),
        fn=private_dns,
        needs=(CLUSTER,),
        uses=("configmaps", "pods", "nodes", "events"),
    ),
)
