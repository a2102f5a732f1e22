"""`node-api`, the way out of the nodes: the cluster's egress IPs against the API server's
authorized IP ranges, and egress through a firewall (outbound type `userDefinedRouting`).
"""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.nodeapi_common import (
    SCENARIO,
    api_host,
    cluster_of,
    egress_symptoms,
    failing_tunnel_pods,
    node_command,
    not_ready_nodes,
    subnet_ids,
    tunnel_app,
    tunnel_pods,
)
from diagnostics.checks.nodeapi_egress_ips import (
    compare_egress,
    firewall_unverified,
    path_egress,
    unverified,
)
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER, EGRESS_ENDPOINTS, NETWORK, PUBLIC_IPS

NAT_OUTBOUND = ("managednatgateway", "userassignednatgateway")
UDR = "userdefinedrouting"


# ---------------------------------------------------------------- authorized IP ranges
def egress_in_authorized_ranges(ctx: CheckContext) -> Iterator[Finding]:
    c = cluster_of(ctx)
    if c.private_cluster or c.vnet_integration or not c.authorized_ip_ranges:
        return  # no public path from the nodes that the ranges could block
    outbound = c.outbound_type.lower()
    listed = ", ".join(c.authorized_ip_ranges)
    egress = path_egress(ctx)  # a route to an appliance overrides any outbound type
    if egress is not None and egress.unknown:
        yield firewall_unverified(ctx, egress)
        return
    if egress is not None and egress.sources:
        sources = [(s.address, s.resource_id) for s in egress.sources]
        prefixes = {s.address: (s.prefix, s.prefix_id) for s in egress.sources if s.prefix}
        yield from compare_egress(ctx, sources, egress.via, prefixes)
        return
    if outbound == UDR:
        yield unverified(
            ctx,
            "the firewall's public IP",
            (
                "outboundType = userDefinedRouting: nodes leave through the next hop of their "
                "route table (a firewall or NVA), whose public IP is not part of the cluster resource",
                f"authorized IP ranges: {listed}",
            ),
            (
                *(route_steps(subnet_ids(ctx)[:1])),
                Step(
                    "Then the firewall's public IPs (Azure Firewall shown; for an NVA, its public "
                    "IP configuration). " + FIREWALL_LIST_NOTE,
                    FIREWALL_LIST,
                ),
            ),
        )
        return
    if outbound not in NAT_OUTBOUND:
        return  # the standard load balancer's outbound IPs and prefixes: AKS allows them itself
    if not c.nat_outbound_ip_ids:
        subnets = subnet_ids(ctx)
        yield unverified(
            ctx,
            "the NAT gateway's public IPs",
            (
                f"outboundType = {c.outbound_type}: the NAT gateway on the node subnet is not part "
                "of the cluster resource, so its IPs are unknown here",
                f"authorized IP ranges: {listed}",
            ),
            (
                Step(
                    "Find the NAT gateway of the node subnet, then its public IPs.",
                    f"az network vnet subnet show --ids {q(subnets[0])} --query natGateway.id -o tsv"
                    if subnets
                    else None,
                ),
            ),
        )
        return
    pairs: list[tuple[str, str]] = []
    for rid in c.nat_outbound_ip_ids:
        ip = ctx.snapshot.public_ips.get(rid.lower())
        prefix = "/publicipprefixes/" in rid.lower()
        if not ip:
            yield unverified(
                ctx,
                f"NAT gateway {'IP prefix' if prefix else 'IP'} {rid.rsplit('/', 1)[-1]}",
                (
                    f"outbound {'IP prefix' if prefix else 'IP'} {rid} has no "
                    f"{'range' if prefix else 'address'} in publicips.json",
                    f"authorized IP ranges: {listed}",
                ),
                (
                    Step(
                        "Look its range up, then compare it with the ranges."
                        if prefix
                        else "Look its address up, then compare it with the ranges.",
                        f"az network public-ip prefix show --ids {q(rid)} --query ipPrefix -o tsv"
                        if prefix
                        else f"az network public-ip show --ids {q(rid)} --query ipAddress -o tsv",
                    ),
                ),
            )
        else:
            pairs.append((ip, rid))
    yield from compare_egress(ctx, pairs, "NAT gateway")


# ---------------------------------------------------------------- firewall (UDR)
FIREWALL_LIST = (
    'az network firewall list --query "[].{name:name, privateIp:ipConfigurations[0].privateIPAddress, '
    'hubPrivateIp:hubIPAddresses.privateIPAddress, publicIps:ipConfigurations[].publicIPAddress.id}" -o json'
)
FIREWALL_LIST_NOTE = (
    "`az network firewall` needs the azure-firewall extension (`az extension add --name "
    "azure-firewall`); it lists the current subscription only (add `--subscription HUB_SUBSCRIPTION` "
    "for a hub elsewhere); a Virtual WAN hub firewall shows its private IP as hubPrivateIp."
)


def route_steps(subnets: list[str]) -> list[Step]:
    """The node subnet's routes with their next hops (`routeTable.id` alone is not a hop)."""
    return [
        Step(
            f"See the routes of subnet {s.rsplit('/', 1)[-1]} and their next hops (the longest "
            "prefix that covers a destination wins; 0.0.0.0/0 is the default).",
            f'az network route-table show --ids "$(az network vnet subnet show --ids {q(s)} '
            '--query routeTable.id -o tsv)" --query "routes[].{name:name, prefix:addressPrefix, '
            'nextHop:nextHopType, ip:nextHopIpAddress}" -o table',
        )
        for s in subnets
    ]


def _appliance_flows(ctx: CheckContext) -> tuple[list[str], bool]:
    """(appliance IPs on the node subnets' paths that aksdiag could not evaluate, whether any
    flow goes through an appliance at all), from the Azure network path when it was read."""
    if ctx.snapshot.network is None:
        return [], False
    from diagnostics.checks.netpath_common import paths

    unverified: list[str] = []
    through = False
    for sp in paths(ctx):
        for flow in sp.flows:
            hop = flow.route.hop.lower() if flow.route else ""
            label = ""
            if flow.appliance_ip:
                through = True
                label = flow.appliance_ip if flow.fw_verdict is None else ""
            elif hop == "virtualnetworkgateway":
                through, label = True, "the VPN / ExpressRoute gateway (on-premises)"
            elif flow.route is None:
                label = f"unknown (the route table of subnet {sp.name} could not be read)"
            if label and label not in unverified:
                unverified.append(label)
    return unverified, through


def _test_script(hosts: list[str], api: str) -> str:
    """curl, not nc: a TLS-inspecting appliance that strips ALPN passes a TCP test but breaks
    the konnectivity tunnel; curl -v shows the ALPN the server accepted."""
    script = (
        f"for h in {' '.join(hosts)}; do curl -sS -o /dev/null --max-time 10 "
        '-w "$h %{http_code}\\n" https://$h/ || echo "$h FAILED"; done'
    )
    if api:
        script += f"; curl -sv --max-time 10 https://{api}/healthz 2>&1 | grep -Ei 'ALPN|HTTP/'"
    return script


def firewall_egress(ctx: CheckContext) -> Iterator[Finding]:
    c = cluster_of(ctx)
    unverified, through = _appliance_flows(ctx)
    if ctx.snapshot.network is not None:
        if not unverified or (not through and c.outbound_type.lower() != UDR):
            return  # no appliance, or every one is an Azure Firewall evaluated rule by rule
    elif c.outbound_type.lower() != UDR:
        return
    snap = ctx.snapshot
    symptoms = egress_symptoms(snap)
    subnets = subnet_ids(ctx)
    evidence = []
    if c.outbound_type.lower() == UDR:
        evidence.append(
            "outboundType = userDefinedRouting: egress follows the node subnet's "
            "route table, usually to a firewall, which must allow what AKS needs"
        )
    elif through:
        evidence.append(
            f"outboundType = {c.outbound_type}, but a route sends the nodes' traffic "
            "to a virtual appliance, which overrides the load balancer's outbound path"
        )
    evidence += [
        f"next hop {ip}: not an Azure Firewall aksdiag could read (a third-party "
        "appliance, on-premises, or a firewall it may not read)"
        if ip[:1].isdigit()
        else f"next hop: {ip}"
        for ip in unverified
    ]
    evidence += [f"node subnet: {s.rsplit('/', 1)[-1]} ({s})" for s in subnets]
    evidence += symptoms or ["no failing tunnel pod and no NotReady node in this snapshot"]
    from diagnostics.netpath.analysis import dns_servers
    from diagnostics.netpath.targets import requirement_lines

    required = requirement_lines(c, snap.egress_endpoints, dns_servers(snap))
    tunnels = {tunnel_app(p) or "" for p in tunnel_pods(snap)} - {""}
    if not c.private_cluster and tunnels & {"tunnelfront", "aks-link"}:
        required.append(
            f"TCP 9000 and UDP 1194 to the API server (service tag AzureCloud.{c.location or 'REGION'})"
            " — the older tunnelfront / aks-link tunnel"
        )
    api = api_host(ctx) if not c.private_cluster else ""
    hosts = [h.split(" ", 1)[0] for h in required if " TCP 443 " in h and not h.startswith("*")]
    node = (
        next((n.name for n in not_ready_nodes(snap)), None)
        or next((p.node for p in failing_tunnel_pods(snap) if p.node), None)
        or (snap.nodes[0].name if snap.nodes else None)
    )
    script = _test_script(hosts, api)
    steps = [
        Step(
            "Allow this egress on the appliance, one destination per line (AKS outbound rules; "
            "on Azure Firewall the `AzureKubernetesService` FQDN tag covers the FQDNs):\n"
            + "\n".join(required)
        ),
        *route_steps(subnets[:1]),
    ]
    steps.append(
        Step(
            f"Test the required destinations from node {node} through Azure (read-only, no tunnel "
            "needed); a timeout names the rule the appliance lacks, and the ALPN line shows "
            "whether TLS reaches the API server untouched.",
            node_command(ctx, node, script),
        )
        if node
        else Step(f"Test from a node: `{script}`.")
    )
    steps.append(
        Step(
            "Check the appliance's logs for denied traffic from the node subnet "
            "(Azure Firewall: the AZFWApplicationRule / AZFWNetworkRule tables)."
        )
    )
    yield Finding(
        code="nodeapi.firewall-egress",
        severity=Severity.WARNING if symptoms else Severity.INFO,
        title="Egress goes through a firewall aksdiag cannot evaluate"
        + (
            ": tunnel pods or nodes are failing"
            if symptoms
            else ": it must allow AKS's required rules"
        ),
        subject=f"{c.id or c.name}#outbound",
        evidence=tuple(evidence),
        cause="A missing firewall rule for the API server FQDN or the system image registry "
        "leaves nodes NotReady, the konnectivity tunnel down and new nodes unable to join."
        if symptoms
        else "Context, not a fault: nothing in this snapshot shows blocked egress, but the "
        "firewall has to keep allowing these destinations.",
        remediation=tuple(steps),
        docs=DOCS["egress"],
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.egress_authorized_ranges",
        scenario=SCENARIO,
        codes=("nodeapi.authorized-ip.egress-excluded", "nodeapi.authorized-ip.egress-unverified"),
        fn=egress_in_authorized_ranges,
        needs=(CLUSTER,),
        uses=(PUBLIC_IPS, "pods", "nodes", "events", NETWORK, "endpointslices"),
    ),
    Check(
        name="nodeapi.firewall_egress",
        scenario=SCENARIO,
        codes=("nodeapi.firewall-egress",),
        fn=firewall_egress,
        needs=(CLUSTER,),
        uses=("pods", "nodes", "events", NETWORK, EGRESS_ENDPOINTS, "endpointslices"),
    ),
)
