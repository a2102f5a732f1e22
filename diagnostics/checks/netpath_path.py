"""The network path to the API server, hop by hop, for the report (`Report.path`): node subnet
-> NSGs -> route -> firewall / appliance / Internet -> private DNS -> API server, with the
verdict at each hop; and every path element that could not be read, as `unavailable`."""

from __future__ import annotations

from diagnostics.checks.netpath_common import api_ips, name_of
from diagnostics.model import Hop, Report, Unavailable
from diagnostics.netpath.analysis import Flow, SubnetPath, subnet_paths
from diagnostics.netpath.dns import evaluate as dns_links
from diagnostics.netpath.egress import appliance_egress, firewall_egress
from diagnostics.snapshot import Snapshot

PASS, BLOCKED, UNKNOWN = "pass", "blocked", "unknown"
_CODES = {
    "egress IP": ("nodeapi.authorized-ip.egress-excluded",),
    "NSG": ("nodeapi.nsg-blocks-egress",),
    "route table": ("nodeapi.route-blackhole", "nodeapi.firewall-rules-missing"),
    "firewall": ("nodeapi.firewall-rules-missing",),
    "rule collection": ("nodeapi.firewall-rules-missing",),
    "private DNS zone": ("nodeapi.private-dns-link", "apiserver.private-dns-link"),
    "the VNet hosting": ("nodeapi.private-dns-link", "apiserver.private-dns-link"),
    "node VNet": ("nodeapi.private-dns-link", "apiserver.private-dns-link"),
}


_DNS_UNKNOWN = ("private DNS zone", "the VNet hosting", "node VNet", "peered VNet")


def _unavailable(text: str) -> Unavailable:
    what, _, why = text.partition(": ")
    codes = next((c for k, c in _CODES.items() if what.startswith(k) or k in what), ())
    return Unavailable(f"network path: {what}", why or "could not be read", codes)


def _flow_hops(sp: SubnetPath, flow: Flow) -> list[Hop]:
    prefixes = ", ".join(sp.subnet.prefixes) if sp.subnet else "?"
    hops = [
        Hop(
            f"node subnet {sp.name}",
            "subnet",
            PASS,
            f"{prefixes} in VNet "
            f"{sp.vnet.name if sp.vnet else name_of(sp.subnet_id.split('/subnets/')[0])}",
        )
    ]
    for v in flow.nsg:
        hops.append(Hop(f"NSG {v.nsg.name}", "nsg", PASS if v.allowed else BLOCKED, v.describe()))
    for u in sp.unknown:
        if u.startswith("NSG "):
            hops.append(Hop(u.split(":")[0], "nsg", UNKNOWN, u.partition(": ")[2]))
    r = flow.route
    if r is None:
        hops.append(Hop("route", "route", UNKNOWN, "the subnet's route table could not be read"))
        return hops
    name = f"route table {r.table.name}" if r.table else "system routes"
    hop = r.hop.lower()
    hops.append(Hop(name, "route", BLOCKED if hop == "none" else PASS, r.describe()))
    if flow.appliance_ip:
        fw, fv = flow.firewall, flow.fw_verdict
        if fw is not None and fv is not None:
            hops.append(
                Hop(
                    f"Azure Firewall {fw.name}",
                    "firewall",
                    PASS if fv.allowed else BLOCKED,
                    f"{flow.target.text}: {fv.describe()}",
                )
            )
        elif fw is not None:
            why = next(
                (u for u in flow.unknown if u.startswith(("firewall ", "rule collection"))),
                "rules unreadable",
            )
            hops.append(Hop(f"Azure Firewall {fw.name}", "firewall", UNKNOWN, why))
        else:
            hops.append(
                Hop(
                    f"appliance {flow.appliance_ip}",
                    "appliance",
                    UNKNOWN,
                    "not an Azure Firewall aksdiag could read (a third-party appliance, "
                    "on-premises, or no permission): its rules are not verified",
                )
            )
    elif hop == "internet":
        hops.append(Hop("Internet", "internet", PASS, "Azure's default outbound path"))
    elif hop in ("vnetlocal", "vnetpeering"):
        name = {"vnetlocal": "the VNet", "vnetpeering": "a peered VNet"}[hop]
        hops.append(Hop(name, "vnet", PASS, r.describe()))
    elif hop == "virtualnetworkgateway":
        hops.append(
            Hop(
                "the VPN / ExpressRoute gateway",
                "gateway",
                UNKNOWN,
                "on-premises: what lies beyond is not visible to aksdiag",
            )
        )
    return hops


def hops(snap: Snapshot) -> tuple[list[Hop], list[str]]:
    """The API server path of the first node subnet, and every unreadable path element."""
    c, net = snap.cluster, snap.network
    if c is None or net is None:
        return [], []
    paths = subnet_paths(snap, api_ips(snap))
    unknown = [u for sp in paths for u in sp.unknown]
    if not paths:
        return [], unknown
    sp = paths[0]
    api = next((f for f in sp.flows if f.target.api_server), None)
    out = (
        _flow_hops(sp, api)
        if api
        else [Hop(f"node subnet {sp.name}", "subnet", UNKNOWN, "; ".join(sp.unknown))]
    )
    public = not c.private_cluster and not c.vnet_integration
    if api and api.appliance_ip and public and c.authorized_ip_ranges:
        egress = (
            firewall_egress(net, api.firewall, snap.public_ips)
            if api.firewall
            else appliance_egress(net, api.appliance_ip)
        )
        unknown += egress.unknown if egress else []
    links = dns_links(c, net) if not c.vnet_integration else None
    if links is not None:
        unknown += links.unknown
        if links.zone is None:
            out.append(
                Hop(
                    f"private DNS zone {links.zone_name or '(system)'}",
                    "dns",
                    UNKNOWN,
                    "; ".join(links.unknown),
                )
            )
        else:
            bad = [*links.unlinked, *([links.missing_record] if links.missing_record else [])]
            detail = "; ".join(
                f"{n.why}: {'linked' if n.linked else 'NOT linked'}" for n in links.needs
            )
            if links.missing_record:
                detail += f"; NO A record {links.missing_record} for the API server"
            out.append(
                Hop(
                    f"private DNS zone {links.zone.name}",
                    "dns",
                    BLOCKED if bad else (UNKNOWN if links.unknown else PASS),
                    detail or "; ".join(links.unknown),
                )
            )
    if api is not None:
        verdicts = [h.verdict for h in out]
        final = BLOCKED if BLOCKED in verdicts else UNKNOWN if UNKNOWN in verdicts else PASS
        out.append(Hop(f"API server {api.target.text}", "apiserver", final, api.target.why))
        others = [f for f in sp.flows if not f.target.api_server]
        blocked = [
            f.target.text
            for f in others
            if f.nsg_block
            or (f.route and f.route.hop.lower() == "none")
            or (f.fw_verdict is not None and not f.fw_verdict.allowed)
        ]
        if others:
            out.append(
                Hop(
                    "other required egress",
                    "egress",
                    BLOCKED if blocked else PASS,
                    (
                        f"blocked: {', '.join(blocked)}"
                        if blocked
                        else f"all {len(others)} other required destination(s) pass their NSGs, routes and firewall"
                    ),
                )
            )
    return out, unknown


def annotate(report: Report, snap: Snapshot, scenario: str) -> None:
    """Add the path (node-api and health; apiserver on private clusters) and the path elements
    that could not be read to a report."""
    c = snap.cluster
    if snap.network is None or c is None:
        return
    if scenario not in ("node-api", "health") and not (
        scenario == "apiserver" and c.private_cluster
    ):
        return
    path, unknown = hops(snap)
    if scenario != "apiserver":
        report.path = path
    else:  # clients resolve the name: the DNS part of the path only
        dns = [h for h in path if h.kind == "dns"]
        subnet = [h for h in path if h.kind == "subnet"][:1]
        api = [h for h in path if h.kind == "apiserver"][:1]
        verdict = dns[0].verdict if dns else UNKNOWN
        report.path = subnet + dns + [Hop(h.name, h.kind, verdict, h.detail) for h in api]
        unknown = [u for u in unknown if u.startswith(_DNS_UNKNOWN)]
    seen = {u.source for u in report.unavailable}
    for text in dict.fromkeys(unknown):
        u = _unavailable(text)
        if u.source not in seen:
            report.unavailable.append(u)
            seen.add(u.source)
