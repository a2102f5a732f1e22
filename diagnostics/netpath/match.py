"""What nodes send and where: `Endpoint` (an address, the prefixes it stands for, the service
tags it belongs to, an FQDN) and the matching Azure applies to address prefixes, service tags,
ports, protocols and FQDN patterns. CIDR math is `ipaddress`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4096)
def network(text: str) -> Net | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def contains(prefixes: tuple[str, ...] | list[str], ip: str) -> bool:
    addr = network(ip)
    if addr is None:
        return False
    for p in prefixes:
        n = network(p)
        if n is not None and n.version == addr.version and addr.subnet_of(n):  # type: ignore[arg-type]
            return True
    return False


def overlaps(a: str, b: str) -> bool:
    na, nb = network(a), network(b)
    return bool(na and nb and na.version == nb.version and na.overlaps(nb))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a flow. `ip` when the address is known; `prefixes` when it stands for a
    range (a node subnet); `tags` the service tags it belongs to (lowercased)."""

    label: str
    ip: str = ""
    prefixes: tuple[str, ...] = ()
    tags: frozenset[str] = field(default_factory=frozenset)
    fqdn: str = ""

    def matches_prefix(self, prefix: str) -> bool:
        """Does an NSG / firewall / route address prefix cover this endpoint?"""
        p = prefix.strip()
        low = p.lower()
        if low in ("*", "any", "0.0.0.0/0"):
            return True
        n = network(p)
        if n is None:  # a service tag
            return low in self.tags
        if self.ip:
            a = network(self.ip)
            return bool(a and a.version == n.version and a.subnet_of(n))  # type: ignore[arg-type]
        return any(overlaps(p, own) for own in self.prefixes)


def port_matches(ranges: tuple[str, ...], port: int) -> bool:
    for r in ranges:
        r = r.strip()
        if r in ("*", "Any", "any", ""):
            return True
        lo, _, hi = r.partition("-")
        try:
            if int(lo) <= port <= int(hi or lo):
                return True
        except ValueError:
            continue
    return False


def protocol_matches(allowed: str, protocol: str) -> bool:
    a = allowed.strip().lower()
    return a in ("*", "any") or a == protocol.lower()


def fqdn_matches(pattern: str, fqdn: str) -> bool:
    """Azure Firewall target FQDNs: exact, `*`, or a leading wildcard (`*.contoso.com`)."""
    p, f = pattern.strip().lower().rstrip("."), fqdn.strip().lower().rstrip(".")
    if not p or not f:
        return False
    if p == "*":
        return True
    if p.startswith("*"):
        return f.endswith(p[1:])
    return p == f


def sample_name(fqdn: str, location: str = "") -> str:
    """A concrete name for a wildcard requirement (`*.data.mcr.microsoft.com`)."""
    return f"{location or 'westeurope'}{fqdn[1:]}" if fqdn.startswith("*") else fqdn


_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)


def is_public(ip: str) -> bool:
    """Outside the private, shared and link-local ranges (documentation ranges count as
    public here: the examples use them for public addresses)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not any(addr.version == n.version and addr in n for n in _NOT_PUBLIC)
