"""`node-api`, the way out of the nodes: the cluster's egress IPs against the API server's
authorized IP ranges, and egress through a firewall (outbound type `userDefinedRouting`).
"""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.authorized import covering, parse_ranges, replacement_list
from diagnostics.checks.base import DOCS, Check, CheckContext, CheckRegistry, q
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
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER, PUBLIC_IPS
from diagnostics.snapshot import ClusterInfo

NAT_OUTBOUND = ("managednatgateway", "userassignednatgateway")
UDR = "userdefinedrouting"


# ---------------------------------------------------------------- authorized IP ranges
def egress_in_authorized_ranges(ctx: CheckContext) -> Iterator[Finding]:
    c = cluster_of(ctx)
    if c.private_cluster or c.vnet_integration or not c.authorized_ip_ranges:
        return  # no public path from the nodes that the ranges could block
    outbound = c.outbound_type.lower()
    listed = ", ".join(c.authorized_ip_ranges)
    if outbound == UDR:
        yield _unverified(
            ctx,
            "the firewall's public IP",
            (
                "outboundType = userDefinedRouting: nodes leave through the next hop of their "
                "route table (a firewall or NVA), whose public IP is not part of the cluster resource",
                f"authorized IP ranges: {listed}",
            ),
            (
                Step(
                    "Find the next hop of the node subnet's default route.",
                    f"az network vnet subnet show --ids {q(subnet_ids(ctx)[0])} --query routeTable.id -o tsv"
                    if subnet_ids(ctx)
                    else None,
                ),
                Step(
                    "Then the firewall's public IPs (Azure Firewall shown; for an NVA, its public "
                    "IP configuration).",
                    "az network firewall list --query '[].ipConfigurations[].publicIPAddress.id' -o tsv",
                ),
            ),
        )
        return
    if outbound not in NAT_OUTBOUND:
        return  # the standard load balancer's outbound IPs are allowed by AKS itself
    if not c.nat_outbound_ip_ids:
        subnets = subnet_ids(ctx)
        yield _unverified(
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
    ranges, _ = parse_ranges(c.authorized_ip_ranges)
    excluded: list[tuple[str, str]] = []
    covered: list[str] = []
    for rid in c.nat_outbound_ip_ids:
        ip = ctx.snapshot.public_ips.get(rid.lower())
        if not ip:
            yield _unverified(
                ctx,
                f"NAT gateway IP {rid.rsplit('/', 1)[-1]}",
                (
                    f"effective outbound IP {rid} has no address in publicips.json",
                    f"authorized IP ranges: {listed}",
                ),
                (
                    Step(
                        "Look its address up, then compare it with the ranges.",
                        f"az network public-ip show --ids {q(rid)} --query ipAddress -o tsv",
                    ),
                ),
            )
        elif covering(ip, ranges):
            covered.append(ip)
        else:
            excluded.append((ip, rid))
    if not excluded:
        return
    new_list = replacement_list(c.authorized_ip_ranges, [ip for ip, _ in excluded])
    evidence = [
        f"outboundType = {c.outbound_type}: nodes reach the public API server from the "
        "NAT gateway's IPs, which AKS does not add to the ranges by itself",
        f"authorized IP ranges ({len(c.authorized_ip_ranges)}): {listed}",
    ]
    evidence += [
        f"NAT gateway IP {ip} ({rid.rsplit('/', 1)[-1]}) is in none of them" for ip, rid in excluded
    ]
    evidence += [f"NAT gateway IP {ip} is covered" for ip in covered]
    evidence += egress_symptoms(ctx.snapshot)
    ips = ", ".join(ip for ip, _ in excluded)
    yield Finding(
        code="nodeapi.authorized-ip.egress-excluded",
        severity=Severity.CRITICAL,
        title=f"The cluster's own egress IP {ips} is not in the API server's authorized ranges",
        subject=f"{c.id or c.name}#egress",
        evidence=tuple(evidence),
        cause="With authorized IP ranges on, the API server drops connections from addresses "
        "outside them — including the nodes' own when they leave through a NAT gateway. "
        "Kubelets, the konnectivity agents and every pod that calls the API server time out.",
        remediation=(
            Step(
                "Confirm the ranges the API server accepts now.",
                ctx.az_aks("show", "--query apiServerAccessProfile.authorizedIpRanges"),
            ),
            Step(
                "Add the egress IPs. The flag replaces the whole list, so the command repeats "
                "every existing range; AKS takes up to 2 minutes to apply it.",
                ctx.az_aks("update", f"--api-server-authorized-ip-ranges {q(new_list)}"),
            ),
            Step("Then watch the nodes return to Ready.", "kubectl get nodes -o wide"),
        ),
        docs=DOCS["authorized-ip"],
    )


def _unverified(
    ctx: CheckContext, what: str, evidence: tuple[str, ...], steps: tuple[Step, ...]
) -> Finding:
    """An egress IP whose address is unknown: reported as not verifiable, never as a problem."""
    c = cluster_of(ctx)
    return Finding(
        code="nodeapi.authorized-ip.egress-unverified",
        severity=Severity.INFO,
        title=f"Could not verify that {what} is in the authorized IP ranges",
        subject=f"{c.id or c.name}#egress-unverified:{what}",
        evidence=evidence,
        cause="Its address is not in the data collected, so aksdiag cannot compare it with the "
        "ranges. If it is missing from them, nodes cannot reach the API server.",
        remediation=steps,
        docs=DOCS["authorized-ip"],
    )


# ---------------------------------------------------------------- firewall (UDR)
def _required_rules(c: ClusterInfo, tunnels: set[str]) -> list[str]:
    rules = []
    if not c.private_cluster:
        host = c.fqdn or f"*.hcp.{c.location or '<region>'}.azmk8s.io"
        rules.append(
            f"{host} (`*.hcp.{c.location or '<region>'}.azmk8s.io`) HTTPS 443 — nodes "
            "and the konnectivity tunnel to the API server; do not strip TLS ALPN"
        )
    rules += [
        "mcr.microsoft.com, *.data.mcr.microsoft.com, mcr-0001.mcr-msedge.net HTTPS 443 — system images",
        "management.azure.com HTTPS 443 — Azure API",
        "login.microsoftonline.com HTTPS 443 — Microsoft Entra authentication",
        "packages.microsoft.com HTTPS 443 — node packages",
        "acs-mirror.azureedge.net HTTPS 443 — kubelet, CNI and other binaries",
    ]
    if not c.private_cluster and (not tunnels or tunnels & {"tunnelfront", "aks-link"}):
        rules.append(
            "TCP 9000 and UDP 1194 to the API server (service tag AzureCloud."
            f"{c.location or '<region>'}) — the older tunnelfront / aks-link tunnel"
        )
    rules.append("UDP 123 (NTP) and UDP 53 to custom DNS servers, if any")
    if not c.private_cluster:
        rules.append("TCP 443 to the API server's IP, for pods that call the API server")
    return rules


def firewall_egress(ctx: CheckContext) -> Iterator[Finding]:
    c = cluster_of(ctx)
    if c.outbound_type.lower() != UDR:
        return
    snap = ctx.snapshot
    symptoms = egress_symptoms(snap)
    tunnels = {tunnel_app(p) or "" for p in tunnel_pods(snap)} - {""}
    subnets = subnet_ids(ctx)
    evidence = [
        "outboundType = userDefinedRouting: egress follows the node subnet's route "
        "table, usually to a firewall, which must allow what AKS needs"
    ]
    evidence += [f"node subnet: {s.rsplit('/', 1)[-1]} ({s})" for s in subnets]
    evidence += symptoms or ["no failing tunnel pod and no NotReady node in this snapshot"]
    required = _required_rules(c, tunnels)
    hosts = [
        h
        for h in (
            api_host(ctx) if not c.private_cluster else "",
            "mcr.microsoft.com",
            "management.azure.com",
            "login.microsoftonline.com",
            "packages.microsoft.com",
            "acs-mirror.azureedge.net",
        )
        if h
    ]
    node = (
        next((n.name for n in not_ready_nodes(snap)), None)
        or next((p.node for p in failing_tunnel_pods(snap) if p.node), None)
        or (snap.nodes[0].name if snap.nodes else None)
    )
    script = f"for h in {' '.join(hosts)}; do nc -vz -w 5 $h 443; done"
    steps = [
        Step(
            "Required egress (AKS outbound rules; Azure Firewall's `AzureKubernetesService` "
            "FQDN tag covers the FQDNs): " + "; ".join(required) + "."
        ),
    ]
    if subnets:
        steps.append(
            Step(
                "Find the route table (and its next hop) of the node subnet.",
                f"az network vnet subnet show --ids {q(subnets[0])} --query routeTable.id -o tsv",
            )
        )
    steps.append(
        Step(
            f"Test the required destinations from node {node} through Azure (read-only, no tunnel "
            "needed); a timeout names the rule the firewall lacks.",
            node_command(ctx, node, script),
        )
        if node
        else Step(f"Test from a node: `{script}`.")
    )
    steps.append(
        Step(
            "Check the firewall's logs for denied traffic from the node subnet "
            "(Azure Firewall: the AZFWApplicationRule / AZFWNetworkRule tables)."
        )
    )
    yield Finding(
        code="nodeapi.firewall-egress",
        severity=Severity.WARNING if symptoms else Severity.INFO,
        title="Egress goes through a firewall (userDefinedRouting)"
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


def register(registry: CheckRegistry) -> None:
    registry.add(
        Check(
            "nodeapi.egress_authorized_ranges",
            SCENARIO,
            ("nodeapi.authorized-ip.egress-excluded", "nodeapi.authorized-ip.egress-unverified"),
            egress_in_authorized_ranges,
            needs=(CLUSTER,),
            uses=(PUBLIC_IPS, "pods", "nodes", "events"),
        )
    )
    registry.add(
        Check(
            "nodeapi.firewall_egress",
            SCENARIO,
            ("nodeapi.firewall-egress",),
            firewall_egress,
            needs=(CLUSTER,),
            uses=("pods", "nodes", "events"),
        )
    )
