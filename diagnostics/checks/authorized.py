"""Authorized IP ranges, shared by `apiserver` (clients) and `node-api` (the cluster's egress):
parsing the ranges, whether an address or CIDR is covered, and the replacement list that
`az aks update --api-server-authorized-ip-ranges` needs (the flag replaces the whole list)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


def as_cidr(client: str) -> str:
    """An address as a one-host CIDR (/32 or /128); a CIDR as it is."""
    if "/" in client:
        return client
    return f"{client}/{128 if ':' in client else 32}"


def replacement_list(existing: Iterable[str], additions: Iterable[str]) -> str:
    """The full comma-separated list to pass to --api-server-authorized-ip-ranges."""
    return ",".join([*existing, *(as_cidr(a) for a in additions)])
