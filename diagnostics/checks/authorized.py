"""Authorized IP ranges, shared by `apiserver` (clients) and `node-api` (the cluster's egress):
parsing the ranges, whether an address or CIDR is covered, whether the public API server can
see it at all, and the replacement list that `az aks update --api-server-authorized-ip-ranges`
needs (the flag replaces the whole list).

Besides the listed ranges, AKS allows the standard load balancer's outbound IPs and outbound
IP prefixes by itself (outbound type `loadBalancer`; learn.microsoft.com/azure/aks/
api-server-authorized-ip-ranges: "AKS allows these IP addresses in addition to the IP addresses
in the --api-server-authorized-ip-ranges parameter"): `lb_allowed` lists them. NAT gateway and
firewall egress, and node public IP prefixes, are not added: they must be in the ranges.

az validates that list before it sends anything (azure-cli `acs/_validators.py`,
`validate_ip_ranges`): `0.0.0.0/32` may not stand next to other ranges, every range must be a
global, non-reserved IPv4 network, written without host bits. The list built here obeys that.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Protocol

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ONLY_OUTBOUND = "0.0.0.0/32"  # "only the cluster's own outbound IP", alone in the list
MAX_RANGES = 200
MAX_RANGES_VNET_INTEGRATION = 2000  # API Server VNet Integration raises the limit
# RFC 5737 documentation networks: the bundled examples and tests use them as stand-ins for
# public addresses, so they are treated as public here (az itself refuses them).
_DOCUMENTATION = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def parse_ranges(texts: Iterable[str]) -> tuple[list[Network], list[str]]:
    """(the valid ranges, the texts that are not CIDRs)."""
    ranges: list[Network] = []
    bad: list[str] = []
    for text in texts:
        try:
            ranges.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            bad.append(text)
    return ranges, bad


def covering(client: str, ranges: Iterable[Network]) -> str | None:
    """The range that holds all of `client` (an address or a CIDR); None when none does or
    `client` is not an address."""
    try:
        net = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return None
    for r in ranges:
        if net.version == r.version and net.subnet_of(r):  # type: ignore[arg-type]
            return str(r)
    return None


def not_public(client: str) -> str | None:
    """Why the public API server can never see `client` as a source address (and az refuses it
    as an authorized range), or None for a public IPv4 address or network."""
    try:
        net = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return "it is not an IP address or CIDR"
    if net.version == 6:
        return (
            "it is an IPv6 address: the API server's public endpoint is IPv4 and authorized "
            "ranges cannot be IPv6"
        )
    if any(net.subnet_of(d) for d in _DOCUMENTATION):  # type: ignore[arg-type]
        return None
    if not net.is_global:
        return (
            "it is a private or reserved address (RFC 1918, 100.64.0.0/10 shared space, "
            "loopback, link-local...): connections reach the public API server from the public "
            "IP the client's network translates them to (its NAT gateway, firewall or proxy)"
        )
    return None


def as_cidr(client: str) -> str:
    """An address as a one-host CIDR (/32 or /128); a CIDR without host bits (az parses ranges
    strictly: 10.1.2.3/24 is refused)."""
    try:
        net = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return client
    return str(net)


def replacement_list(existing: Iterable[str], additions: Iterable[str]) -> str:
    """The full comma-separated list to pass to --api-server-authorized-ip-ranges: every
    existing range plus the additions, without duplicates; `0.0.0.0/32` is dropped once
    anything is added (az refuses it next to other ranges; with real ranges AKS still allows
    the standard load balancer's outbound IPs and prefixes by itself)."""
    added = [as_cidr(a) for a in additions]
    kept = [r.strip() for r in existing if r.strip() and (r.strip() != ONLY_OUTBOUND or not added)]
    return ",".join(dict.fromkeys([*kept, *added]))


def max_ranges(vnet_integration: bool) -> int:
    """How many ranges AKS accepts: 200, or 2,000 with API Server VNet Integration."""
    return MAX_RANGES_VNET_INTEGRATION if vnet_integration else MAX_RANGES


class _Outbound(Protocol):
    outbound_type: str
    lb_outbound_ip_ids: tuple[str, ...]
    lb_outbound_prefix_ids: tuple[str, ...]


def lb_allowed(
    cluster: _Outbound, public_ips: Mapping[str, str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """([(IP or CIDR, resource id)] that AKS allows besides the ranges: the standard load
    balancer's outbound IPs and outbound IP prefixes, resolved through `public_ips`
    (lowercased id -> address or CIDR); [ids whose address is not known])."""
    if cluster.outbound_type.lower() not in ("loadbalancer", ""):  # "" is the default
        return [], []
    known: list[tuple[str, str]] = []
    unknown: list[str] = []
    for rid in dict.fromkeys((*cluster.lb_outbound_ip_ids, *cluster.lb_outbound_prefix_ids)):
        value = public_ips.get(rid.lower())
        if value:
            known.append((as_cidr(value), rid))
        else:
            unknown.append(rid)
    return known, unknown


def lb_allowed_line(allowed: list[tuple[str, str]], unknown: list[str]) -> str:
    """The evidence line that says what AKS allows besides the ranges ("" when nothing)."""
    parts = [f"{cidr} ({rid.rsplit('/', 1)[-1]})" for cidr, rid in allowed]
    parts += [f"{rid.rsplit('/', 1)[-1]} (address not read)" for rid in unknown]
    if not parts:
        return ""
    return (
        "besides these ranges AKS allows the standard load balancer's outbound IPs and "
        "prefixes by itself: " + ", ".join(parts)
    )
