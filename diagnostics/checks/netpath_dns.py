"""A private cluster's DNS zone links: `nodeapi.private-dns-link` (the nodes' resolvers cannot
see the zone) and `apiserver.private-dns-link` (clients resolving through the same servers
cannot either). Not raised with `privateDNSZone: none` (public DNS holds the name), nor for
nodes with API Server VNet Integration (they dial the internal IP, no DNS)."""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.netpath_common import rg_of, sub_flag
from diagnostics.checks.nodeapi_common import cluster_of, egress_symptoms
from diagnostics.model import Finding, Severity, Step
from diagnostics.netpath.dns import DnsLinks, evaluate
from diagnostics.resources import CLUSTER, NETWORK, PRIVATE_DNS


def _finding(ctx: CheckContext, code: str, links: DnsLinks, who: str) -> Iterator[Finding]:
    c = cluster_of(ctx)
    zone = links.zone
    if zone is None:
        return
    rg, flag = q(rg_of(zone.id)), sub_flag(zone.id, ctx)
    for need in links.unlinked:
        vnet = need.vnet_id.rstrip("/").rsplit("/", 1)[-1]
        evidence = [
            f"private DNS zone {zone.name} ({zone.id})",
            f"{need.why}; the zone is not linked to it",
            f"API server private FQDN: {c.private_fqdn or 'unknown'}",
        ]
        net = ctx.snapshot.network
        linked = sorted(k.vnet_id.rsplit("/", 1)[-1] for k in net.links_of(zone.id)) if net else []
        evidence.append(f"zone linked to: {', '.join(linked) or 'no VNet'}")
        if code.startswith("nodeapi."):
            evidence += egress_symptoms(ctx.snapshot)
        steps = [
            Step(
                f"Link the zone to VNet {vnet}.",
                f"az network private-dns link vnet create --resource-group {rg} --zone-name "
                f"{q(zone.name)} --name {q('link-' + vnet)} --virtual-network {q(need.vnet_id)} "
                f"--registration-enabled false{flag}",
            ),
            Step(
                "Check the links.",
                f"az network private-dns link vnet list --resource-group {rg} --zone-name "
                f"{q(zone.name)} -o table{flag}",
            ),
        ]
        if links.dns_servers:
            steps.append(
                Step(
                    f"The custom DNS servers ({', '.join(links.dns_servers)}) must also forward "
                    f"{zone.name} (or everything) to Azure DNS 168.63.129.16; ARM cannot show that. "
                    f"Check from a VM in the VNet: `nslookup {c.private_fqdn or 'PRIVATE_FQDN'} "
                    f"{links.dns_servers[0]}` must answer with a private IP."
                )
            )
        yield Finding(
            code=code,
            severity=Severity.CRITICAL,
            title=f"Private DNS zone {zone.name} is not linked to VNet {vnet}: {who} cannot "
            "resolve the API server",
            subject=f"{zone.id}#{need.vnet_id.lower()}",
            evidence=tuple(evidence),
            cause="A private DNS zone answers only queries that come from VNets linked to it. "
            "The resolvers here sit in an unlinked VNet, so the API server's private name does "
            "not resolve (NXDOMAIN) and connections never start.",
            remediation=tuple(steps),
            docs=DOCS["private-dns"],
        )


def _no_record(ctx: CheckContext, code: str, links: DnsLinks) -> Iterator[Finding]:
    c, zone, label = cluster_of(ctx), links.zone, links.missing_record
    if zone is None or not label:
        return
    from diagnostics.checks.netpath_common import api_ips

    ip = next(iter(api_ips(ctx.snapshot)), "") or "API_SERVER_PRIVATE_IP"
    rg, flag = q(rg_of(zone.id)), sub_flag(zone.id, ctx)
    yield Finding(
        code=code,
        severity=Severity.CRITICAL,
        title=f"Private DNS zone {zone.name} has no A record for the API server ({label})",
        subject=f"{zone.id}#record:{label}",
        evidence=(
            f"private DNS zone {zone.name} ({zone.id})",
            f"API server private FQDN: {c.private_fqdn}; no A record named {label} in the zone",
        ),
        cause="The zone answers NXDOMAIN for the API server's private name: the record was "
        "deleted, or the private endpoint's DNS registration failed (a custom zone whose "
        "identity lacks Private DNS Zone Contributor).",
        remediation=(
            Step(
                "Recreate the record with the private endpoint's address"
                + (" (from default/kubernetes)." if ip[0].isdigit() else "."),
                f"az network private-dns record-set a add-record --resource-group {rg} "
                f"--zone-name {q(zone.name)} --record-set-name {q(label)} --ipv4-address {ip}{flag}",
            ),
        ),
        docs=DOCS["private-dns"],
    )


def nodeapi_link(ctx: CheckContext) -> Iterator[Finding]:
    c = cluster_of(ctx)
    net = ctx.snapshot.network
    if net is None or c.vnet_integration:
        return
    links = evaluate(c, net)
    if links is not None:
        yield from _finding(ctx, "nodeapi.private-dns-link", links, "nodes")
        yield from _no_record(ctx, "nodeapi.private-dns-link", links)


def apiserver_link(ctx: CheckContext) -> Iterator[Finding]:
    c = cluster_of(ctx)
    net = ctx.snapshot.network
    if net is None:
        return
    links = evaluate(c, net)
    if links is not None:
        yield from _finding(
            ctx, "apiserver.private-dns-link", links, "clients using these resolvers"
        )
        yield from _no_record(ctx, "apiserver.private-dns-link", links)


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.private_dns_link",
        scenario="node-api",
        codes=("nodeapi.private-dns-link",),
        fn=nodeapi_link,
        needs=(CLUSTER, NETWORK),
        uses=("pods", "nodes", "events"),
    ),
    Check(
        name="apiserver.private_dns_link",
        scenario="apiserver",
        codes=("apiserver.private-dns-link",),
        fn=apiserver_link,
        needs=(CLUSTER, PRIVATE_DNS),
    ),
)
