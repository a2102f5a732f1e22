"""`apiserver`: why a client cannot reach the API server (the article's first section).

Cluster state, authorized IP ranges against the clients (`--from` or the cluster's configured
operator networks), private cluster and private DNS, and the live probe's outcome.
"""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.authorized import (
    ONLY_OUTBOUND,
    covering,
    lb_allowed,
    lb_allowed_line,
    max_ranges,
    not_public,
    parse_ranges,
    replacement_list,
)
from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.diagnosis import Link
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER, PROBE, PUBLIC_IPS
from diagnostics.snapshot import ClusterInfo

SCENARIO = "apiserver"


def _cluster(ctx: CheckContext) -> ClusterInfo:
    assert ctx.snapshot.cluster is not None  # guaranteed by needs=(CLUSTER,)
    return ctx.snapshot.cluster


def authorized_ranges(ctx: CheckContext) -> Iterator[Finding]:
    c = _cluster(ctx)
    if c.private_cluster:
        return  # authorized ranges do not apply to a private endpoint
    if not c.authorized_ip_ranges:
        yield _ranges_disabled(ctx, c)
        return
    ranges, bad = parse_ranges(c.authorized_ip_ranges)
    only_outbound = [str(r) for r in ranges] == [ONLY_OUTBOUND]
    listed = ", ".join(c.authorized_ip_ranges)
    clients = list(ctx.args.from_ips) or list(ctx.operator_networks)
    source = "--from" if ctx.args.from_ips else "the cluster's operator networks"
    unseen = [(ip, why) for ip in clients if (why := not_public(ip))]
    for ip, why in unseen:
        yield _client_not_public(ctx, c, ip, why, source)
    public = [ip for ip in clients if not not_public(ip)]
    auto, auto_unknown = lb_allowed(c, ctx.snapshot.public_ips)
    auto_nets, _ = parse_ranges(cidr for cidr, _ in auto)
    auto_line = lb_allowed_line(auto, auto_unknown)
    excluded = [
        ip for ip in public if covering(ip, ranges) is None and covering(ip, auto_nets) is None
    ]
    limit = max_ranges(c.vnet_integration)
    for ip in excluded:
        new_list = replacement_list(c.authorized_ip_ranges, [ip])
        evidence = [
            f"authorized IP ranges ({len(c.authorized_ip_ranges)}): {listed}",
            f"client {ip} (from {source}) is in none of them",
        ]
        if auto_line:
            evidence.append(f"{auto_line} (the client is in none of them either)")
        if only_outbound:
            evidence.append(
                "0.0.0.0/32 alone means: only the cluster's own outbound IP may connect; az "
                "refuses it next to other ranges, so the new list replaces it"
            )
        if bad:
            evidence.append(f"ranges that are not valid CIDRs: {', '.join(bad)}")
        steps = [
            Step(
                "Confirm the ranges the API server accepts now (the article's command).",
                ctx.az_aks("show", "--query apiServerAccessProfile.authorizedIpRanges"),
            ),
            Step(
                "Add the client. The flag replaces the whole list, so the command repeats every "
                "existing range; AKS takes up to 2 minutes to apply it.",
                ctx.az_aks("update", f"--api-server-authorized-ip-ranges {q(new_list)}"),
            ),
        ]
        if len(new_list.split(",")) > limit:
            steps.append(
                Step(
                    f"AKS allows at most {limit:,} ranges"
                    + ("" if c.vnet_integration else " (2,000 with API Server VNet Integration)")
                    + ": merge ranges into wider CIDRs first."
                )
            )
        yield Finding(
            code="apiserver.authorized-ip.client-excluded",
            severity=Severity.CRITICAL,
            title=f"Client {ip} is not in the API server's authorized IP ranges",
            subject=f"{c.id or c.name}#client={ip}",
            evidence=tuple(evidence),
            cause="With authorized IP ranges on, the API server drops connections from any other "
            "address: kubectl sees `dial tcp API_SERVER_IP:443: i/o timeout`.",
            remediation=tuple(steps),
            docs=DOCS["authorized-ip"],
        )
    covered = [(ip, covering(ip, ranges)) for ip in public if ip not in excluded]
    evidence = [f"authorized IP ranges ({len(c.authorized_ip_ranges)}): {listed}"]
    evidence += [f"client {ip} is covered by {r}" for ip, r in covered if r]
    evidence += [
        f"client {ip} is in {r}, an outbound IP or prefix of the cluster's standard load "
        "balancer: AKS allows it besides the ranges"
        for ip, r in ((ip, covering(ip, auto_nets)) for ip, r in covered if not r)
    ]
    if auto_line:
        evidence.append(auto_line)
    if not clients:
        evidence.append("no client IP was given: pass `--from IP` to check a specific client")
    if only_outbound:
        evidence.append("0.0.0.0/32 alone means: only the cluster's own outbound IP may connect")
    if not excluded:
        yield Finding(
            code="apiserver.authorized-ip.enabled",
            severity=Severity.INFO,
            title="Authorized IP ranges are on"
            + (" and cover every client checked" if public else ""),
            subject=c.id or c.name,
            evidence=tuple(evidence),
            cause="Only these ranges can reach the public API server endpoint.",
            remediation=(
                Step(
                    "Find the public IP of the machine that fails, then compare.",
                    "curl -s https://ifconfig.me",
                ),
            ),
            docs=DOCS["authorized-ip"],
        )


def _ranges_disabled(ctx: CheckContext, c: ClusterInfo) -> Finding:
    public = [n for n in ctx.operator_networks if not not_public(n)]
    return Finding(
        code="apiserver.authorized-ip.disabled",
        severity=Severity.INFO,
        title="The public API server accepts connections from any IP address",
        subject=c.id or c.name,
        evidence=("apiServerAccessProfile.authorizedIpRanges is empty",),
        cause="Hygiene, not an outage: authorized IP ranges (or a private cluster) limit "
        "who can even try to authenticate.",
        remediation=(
            Step(
                "Restrict the API server to your networks' public IPv4 ranges (the list "
                "replaces any previous one).",
                ctx.az_aks(
                    "update", f"--api-server-authorized-ip-ranges {q(replacement_list((), public))}"
                ),
            )
            if public
            else Step(
                "Restrict the API server to your networks' public IPv4 ranges. This command "
                "allows only the machine it runs on: add every other network that must reach "
                "the API server (CI runners, VPN or office egress) to the comma-separated list.",
                ctx.az_aks(
                    "update",
                    '--api-server-authorized-ip-ranges "$(curl -s https://ifconfig.me)/32"',
                ),
            ),
        ),
        docs=DOCS["authorized-ip"],
    )


def _client_not_public(
    ctx: CheckContext, c: ClusterInfo, ip: str, why: str, source: str
) -> Finding:
    """A client address the public API server can never see: an answer, not an outage."""
    return Finding(
        code="apiserver.authorized-ip.client-not-public",
        severity=Severity.INFO,
        title=f"{ip} cannot be checked against authorized IP ranges: {why.split(':')[0]}",
        subject=f"{c.id or c.name}#client={ip}",
        evidence=(
            f"client {ip} (from {source}): {why}",
            f"authorized IP ranges ({len(c.authorized_ip_ranges)}): "
            + ", ".join(c.authorized_ip_ranges),
        ),
        cause="The public API server only ever sees public IPv4 source addresses, and az "
        "refuses private, reserved and IPv6 ranges. Check the public address the client leaves "
        "from instead.",
        remediation=(
            Step(
                "On the client, find the public address it leaves from, then run this scenario "
                "again with `--from` that address.",
                "curl -s https://ifconfig.me",
            ),
        ),
        docs=DOCS["authorized-ip"],
    )


def _probe_failed(ctx: CheckContext) -> bool:
    p = ctx.snapshot.probe
    return p is not None and p.outcome != "ok"


def private_cluster(ctx: CheckContext) -> Iterator[Finding]:
    c = _cluster(ctx)
    if not c.private_cluster:
        return
    failed = _probe_failed(ctx)
    evidence = [
        "apiServerAccessProfile.enablePrivateCluster = true",
        f"private FQDN: {c.private_fqdn or 'unknown'}",
    ]
    if c.private_public_fqdn and c.fqdn:
        evidence.append(f"public FQDN (resolves to the private IP): {c.fqdn}")
    if failed and ctx.snapshot.probe:
        evidence.append(
            f"probe from aksdiag: {ctx.snapshot.probe.outcome} ({ctx.snapshot.probe.detail})"
        )
    steps = [
        Step(
            "Connect from a machine in the cluster's virtual network or a peered network "
            "(a jump box, VPN or ExpressRoute), not from the internet."
        ),
    ]
    if c.run_command_disabled:
        steps.append(
            Step("`az aks command invoke` is disabled on this cluster (disableRunCommand).")
        )
    else:
        steps.append(
            Step(
                "Or run kubectl through Azure without network access to the VNet.",
                ctx.az_aks("command invoke", "--command 'kubectl get nodes -o wide'"),
            )
        )
    yield Finding(
        code="apiserver.private-cluster",
        severity=Severity.WARNING if failed else Severity.INFO,
        title=f"{c.name} is a private cluster: its API server has no public endpoint",
        subject=c.id or c.name,
        evidence=tuple(evidence),
        cause="A private cluster's API server answers only on a private IP inside the VNet; "
        "clients elsewhere time out or cannot resolve the name.",
        remediation=tuple(steps),
        docs=DOCS["private-cluster"],
    )


def private_dns(ctx: CheckContext) -> Iterator[Finding]:
    c = _cluster(ctx)
    zone = c.private_dns_zone.strip()
    if not c.private_cluster or zone.lower() in ("", "system") or c.vnet_integration:
        return  # VNet Integration: nodes dial the internal IP; links are checked from arm/
    dns_failed = ctx.snapshot.probe is not None and ctx.snapshot.probe.outcome == "dns-failed"
    if zone.lower() == "none":
        kind = "none: no private DNS zone; the private FQDN is published in public DNS"
        cause = (
            "Without a private DNS zone the API server name must resolve through public DNS "
            "(enablePrivateClusterPublicFQDN); resolvers that block public answers for private "
            "IPs, or custom DNS without forwarding, leave clients unable to resolve it."
        )
    else:
        kind = f"custom zone {zone}"
        cause = (
            "With a custom (bring-your-own) private DNS zone, every network that must reach the "
            "API server needs the zone linked, or DNS forwarding (hub and spoke) that resolves "
            "the private FQDN."
        )
    host = c.private_fqdn or c.fqdn
    yield Finding(
        code="apiserver.private-dns",
        severity=Severity.WARNING if dns_failed else Severity.INFO,
        title=f"Private cluster with private DNS zone {('none' if zone.lower() == 'none' else 'custom')}",
        subject=c.id or c.name,
        evidence=(f"privateDnsZone = {kind}", f"private FQDN: {host or 'unknown'}"),
        cause=cause,
        remediation=(
            Step(
                "From the client's network, check that the name resolves to a private IP.",
                f"nslookup {q(host)}" if host else None,
            ),
            Step(
                "List the virtual networks linked to the zone (custom zones).",
                _link_list(zone) if zone.lower() != "none" else None,
            ),
        ),
        docs=DOCS["private-dns"],
    )


def _link_list(zone_id: str) -> str | None:
    """`link vnet list` needs the zone's resource group and name (`--ids` is not accepted)."""
    parts = zone_id.split("/")
    low = [p.lower() for p in parts]
    if "resourcegroups" not in low or "privatednszones" not in low:
        return None
    rg, name = parts[low.index("resourcegroups") + 1], parts[low.index("privatednszones") + 1]
    sub = parts[low.index("subscriptions") + 1] if "subscriptions" in low else ""
    flag = f" --subscription {q(sub)}" if sub else ""
    return f"az network private-dns link vnet list --resource-group {q(rg)} --zone-name {q(name)} -o table{flag}"


PROBE_OUTCOMES = ("ok", "dns-failed", "tcp-timeout", "tcp-refused", "tls-failed", "http-error")
_PROBE_CAUSE = {
    "dns-failed": "The API server name does not resolve from where aksdiag runs.",
    "tcp-timeout": "Nothing answered on TCP 443: authorized IP ranges, a private endpoint, a "
    "firewall or NSG drops the traffic (the article's `dial tcp ...:443: i/o timeout`).",
    "tcp-refused": "The address answered but refused TCP 443: the control plane is down or "
    "the name resolves to the wrong address.",
    "tls-failed": "TCP 443 opened but the TLS handshake failed: a TLS-inspecting proxy or "
    "firewall sits in the path, or the certificate does not match.",
    "http-error": "The API server answered but /healthz did not report ok.",
    "ok": "The API server answered /healthz from where aksdiag runs.",
}


def probe(ctx: CheckContext) -> Iterator[Finding]:
    p = ctx.snapshot.probe
    if p is None:
        return
    c = ctx.snapshot.cluster
    ok = p.outcome == "ok"
    timings = ", ".join(f"{k} {v:.0f} ms" for k, v in p.stages_ms.items())
    evidence = [f"{p.host}:{p.port} -> {p.outcome}: {p.detail}"]
    if p.addresses:
        evidence.append(f"resolved to {', '.join(p.addresses)}")
    if timings:
        evidence.append(f"stages: {timings}")
    steps = [
        Step(
            "Repeat the probe from your machine.",
            f"curl -sv --max-time 10 https://{p.host}:{p.port}/healthz",
        )
    ]
    if not ok:
        steps.append(
            Step(
                "Check DNS and the TCP path.",
                f"nslookup {q(p.host)} && nc -vz -w 5 {q(p.host)} {p.port}",
            )
        )
        if c is not None:
            steps.append(
                Step(
                    "Compare with the API server's access profile.",
                    ctx.az_aks("show", "--query apiServerAccessProfile"),
                )
            )
    yield Finding(
        code=f"apiserver.probe.{p.outcome}",
        severity=Severity.INFO if ok else Severity.CRITICAL,
        title=f"API server {'answers' if ok else 'probe failed: ' + p.outcome} at {p.host}",
        subject=f"probe/{p.host}",
        evidence=tuple(evidence),
        cause=_PROBE_CAUSE.get(p.outcome, ""),
        remediation=tuple(steps),
        docs=DOCS["apiserver"],
    )


# What explains what (diagnostics.diagnosis): a stopped cluster explains every probe failure
# and everything read through its API server; authorized ranges that exclude the client explain
# the TCP timeout; a private cluster explains why it cannot be reached from outside its network.
PROBE_FAILURES = "apiserver.probe.[!o]*"  # every outcome but `ok`
EXPLAINS = (
    Link("cluster.stopped", PROBE_FAILURES, effect="the API server does not answer"),
    Link("cluster.stopped", "nodeapi.*", effect="nodes cannot reach the API server"),
    Link("cluster.provisioning-failed", PROBE_FAILURES, effect="the API server does not answer"),
    Link(
        "apiserver.authorized-ip.client-excluded",
        "apiserver.probe.tcp-timeout",
        effect="connections time out (dial tcp :443: i/o timeout)",
    ),
    Link(
        "apiserver.private-cluster",
        "apiserver.probe.dns-failed",
        effect="its name does not resolve from here",
    ),
    Link(
        "apiserver.private-cluster",
        "apiserver.probe.tcp-timeout",
        effect="connections from outside its network time out",
    ),
    Link(
        "apiserver.private-dns",
        "apiserver.probe.dns-failed",
        effect="its name does not resolve from here",
    ),
)


CHECKS: tuple[Check, ...] = (
    Check(
        name="apiserver.authorized_ranges",
        scenario=SCENARIO,
        codes=(
            "apiserver.authorized-ip.client-excluded",
            "apiserver.authorized-ip.enabled",
            "apiserver.authorized-ip.disabled",
            "apiserver.authorized-ip.client-not-public",
        ),
        fn=authorized_ranges,
        needs=(CLUSTER,),
        uses=(PUBLIC_IPS,),
    ),
    Check(
        name="apiserver.private_cluster",
        scenario=SCENARIO,
        codes=("apiserver.private-cluster",),
        fn=private_cluster,
        needs=(CLUSTER,),
        uses=(PROBE,),
    ),
    Check(
        name="apiserver.private_dns",
        scenario=SCENARIO,
        codes=("apiserver.private-dns",),
        fn=private_dns,
        needs=(CLUSTER,),
        uses=(PROBE,),
    ),
    Check(
        name="apiserver.probe",
        scenario=SCENARIO,
        codes=tuple(f"apiserver.probe.{o}" for o in PROBE_OUTCOMES),
        fn=probe,
        needs=(PROBE,),
        live_only=True,
    ),
)
