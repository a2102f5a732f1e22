"""`node-api`: the egress addresses the public API server sees, against its authorized IP
ranges: where the appliance on the nodes' path sends from (an Azure Firewall's public IPs or the
NAT gateway on its subnet, appliances behind a load balancer), compared by containment (a public
IP prefix is allowed whole), and what could not be resolved, with the az command that reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.authorized import covering, parse_ranges, replacement_list
from diagnostics.checks.base import DOCS, CheckContext, q
from diagnostics.checks.nodeapi_common import cluster_of, egress_symptoms
from diagnostics.model import Finding, Severity, Step
from diagnostics.netpath.egress import FirewallEgress, appliance_egress
from diagnostics.netpath.egress import firewall_egress as egress_of


def path_egress(ctx: CheckContext) -> FirewallEgress | None:
    """Where the appliance on the nodes' path to the API server sends from: an Azure Firewall
    (its public IPs, or the NAT gateway on its subnet), or appliances behind an internal load
    balancer (the public load balancer's outbound rules); None when neither is on that path."""
    net = ctx.snapshot.network
    if net is None:
        return None
    from diagnostics.checks.netpath_common import paths

    for sp in paths(ctx):
        for flow in sp.flows:
            if not flow.target.api_server or not flow.appliance_ip:
                continue
            if flow.firewall is not None:
                return egress_of(net, flow.firewall, ctx.snapshot.public_ips)
            return appliance_egress(net, flow.appliance_ip)
    return None


def _lookup(rid: str) -> str:
    """The az command that reads an egress address (or where it comes from) by hand."""
    kind = rid.lower()
    if "/publicipprefixes/" in kind:
        return f"az network public-ip prefix show --ids {q(rid)} --query ipPrefix -o tsv"
    if "/natgateways/" in kind:
        return (
            f"az network nat gateway show --ids {q(rid)} "
            '--query "{ips:publicIpAddresses[].id, prefixes:publicIpPrefixes[].id}" -o json'
        )
    return (
        f"az network public-ip show --ids {q(rid)} "
        '--query "{ip:ipAddress, prefix:publicIPPrefix.id}" -o json'
    )


def firewall_unverified(ctx: CheckContext, egress: FirewallEgress) -> Finding:
    c = cluster_of(ctx)
    return unverified(
        ctx,
        f"every egress IP of {egress.via}",
        (
            f"outboundType = {c.outbound_type}: nodes reach the public API server from the "
            f"{egress.via}'s IPs",
            *(
                u.partition(": ")[0] + " could not be resolved: " + u.partition(": ")[2]
                for u in egress.unknown
            ),
            f"authorized IP ranges: {', '.join(c.authorized_ip_ranges)}",
        ),
        tuple(
            Step(f"Read {rid.rsplit('/', 1)[-1]}, then compare it with the ranges.", _lookup(rid))
            for rid in dict.fromkeys(egress.unresolved)
        ),
    )


def compare_egress(
    ctx: CheckContext,
    pairs: list[tuple[str, str]],
    who: str,
    prefixes: dict[str, tuple[str, str]] | None = None,
) -> Iterator[Finding]:
    """The egress IPs (or prefix CIDRs) `who` (a NAT gateway, an Azure Firewall) sends from,
    against the ranges, by containment; an address from a public IP prefix is fixed by
    allowing the whole prefix (`prefixes`: address -> (prefix CIDR, prefix id))."""
    prefixes = prefixes or {}
    c = cluster_of(ctx)
    listed = ", ".join(c.authorized_ip_ranges)
    ranges, _ = parse_ranges(c.authorized_ip_ranges)
    covered = [ip for ip, _ in pairs if covering(ip, ranges)]
    excluded = [(ip, rid) for ip, rid in pairs if ip not in covered]
    if not excluded:
        return
    adds = [prefixes[ip][0] if ip in prefixes else ip for ip, _ in excluded]
    new_list = replacement_list(c.authorized_ip_ranges, adds)
    evidence = [
        f"outboundType = {c.outbound_type}: nodes reach the public API server from the "
        f"{who}'s IPs, which AKS does not add to the ranges by itself",
        f"authorized IP ranges ({len(c.authorized_ip_ranges)}): {listed}",
    ]
    evidence += [excluded_line(who, ip, rid, prefixes.get(ip)) for ip, rid in excluded]
    evidence += [f"{who} {'prefix' if _is_prefix(ip) else 'IP'} {ip} is covered" for ip in covered]
    evidence += egress_symptoms(ctx.snapshot)
    ips = ", ".join(ip for ip, _ in excluded)
    yield Finding(
        code="nodeapi.authorized-ip.egress-excluded",
        severity=Severity.CRITICAL,
        title=f"The cluster's own egress IP {ips} is not in the API server's authorized ranges",
        subject=f"{c.id or c.name}#egress",
        evidence=tuple(evidence),
        cause="With authorized IP ranges on, the API server drops connections from addresses "
        "outside them — including the nodes' own when they leave through "
        f"{'a NAT gateway' if who == 'NAT gateway' else 'a firewall'}. "
        "Kubelets, the konnectivity agents and every pod that calls the API server time out.",
        remediation=(
            Step(
                "Confirm the ranges the API server accepts now.",
                ctx.az_aks("show", "--query apiServerAccessProfile.authorizedIpRanges"),
            ),
            Step(
                "Add the egress IPs (a public IP prefix as its CIDR). The flag replaces the whole list, so the command repeats "
                "every existing range; AKS takes up to 2 minutes to apply it.",
                ctx.az_aks("update", f"--api-server-authorized-ip-ranges {q(new_list)}"),
            ),
            Step("Then watch the nodes return to Ready.", "kubectl get nodes -o wide"),
        ),
        docs=DOCS["authorized-ip"],
    )


def _is_prefix(ip: str) -> bool:
    """A public IP prefix's CIDR (wider than one address), not a single IP."""
    return "/" in ip and not ip.endswith(("/32", "/128"))


def excluded_line(who: str, ip: str, rid: str, prefix: tuple[str, str] | None) -> str:
    name = rid.rsplit("/", 1)[-1]
    if prefix is None and _is_prefix(ip):  # a prefix's CIDR (publicips.json, a NAT gateway's)
        return f"{who} prefix {ip} ({name}) is not wholly inside any of them"
    if prefix is None:
        return f"{who} IP {ip} ({name}) is in none of them"
    cidr, prefix_id = prefix
    pname = prefix_id.rsplit("/", 1)[-1]
    if ip == cidr:
        return f"{who} sends from public IP prefix {pname} ({cidr}), which no range holds whole"
    return (
        f"{who} IP {ip} ({name}) is in none of them; it comes from public IP prefix {pname} "
        f"({cidr}), which the fix allows whole"
    )


def unverified(
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
