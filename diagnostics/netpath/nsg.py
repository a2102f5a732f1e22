"""NSG evaluation as Azure does it: the rules of one direction in priority order, first match
wins, Azure's default rules last (65000-65500). A flow passes only when the subnet's NSG and
the NIC's NSG both allow it."""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.netpath.match import Endpoint, port_matches, protocol_matches
from diagnostics.netpath.model import Nsg, NsgRule

_DEFAULTS = {
    "Outbound": (
        NsgRule(
            "AllowVnetOutBound",
            65000,
            "Outbound",
            "Allow",
            "*",
            ("VirtualNetwork",),
            ("VirtualNetwork",),
            ("*",),
            True,
        ),
        NsgRule(
            "AllowInternetOutBound",
            65001,
            "Outbound",
            "Allow",
            "*",
            ("*",),
            ("Internet",),
            ("*",),
            True,
        ),
        NsgRule("DenyAllOutBound", 65500, "Outbound", "Deny", "*", ("*",), ("*",), ("*",), True),
    ),
    "Inbound": (
        NsgRule(
            "AllowVnetInBound",
            65000,
            "Inbound",
            "Allow",
            "*",
            ("VirtualNetwork",),
            ("VirtualNetwork",),
            ("*",),
            True,
        ),
        NsgRule(
            "AllowAzureLoadBalancerInBound",
            65001,
            "Inbound",
            "Allow",
            "*",
            ("AzureLoadBalancer",),
            ("*",),
            ("*",),
            True,
        ),
        NsgRule("DenyAllInBound", 65500, "Inbound", "Deny", "*", ("*",), ("*",), ("*",), True),
    ),
}


@dataclass(frozen=True, slots=True)
class NsgVerdict:
    nsg: Nsg
    rule: NsgRule

    @property
    def allowed(self) -> bool:
        return self.rule.access.lower() == "allow"

    def describe(self) -> str:
        r = self.rule
        kind = "default rule" if r.default else "rule"
        return (
            f"{self.nsg.name}: {kind} {r.name} (priority {r.priority}, {r.access} "
            f"{r.protocol} to {','.join(r.destinations)} port {','.join(r.destination_ports)})"
        )


def rule_matches(rule: NsgRule, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
    return (
        protocol_matches(rule.protocol, protocol)
        and port_matches(rule.destination_ports, port)
        and any(src.matches_prefix(p) for p in rule.sources)
        and any(dst.matches_prefix(p) for p in rule.destinations)
    )


def evaluate(
    nsg: Nsg, direction: str, src: Endpoint, dst: Endpoint, protocol: str, port: int
) -> NsgVerdict:
    """The rule that decides a flow through `nsg` in `direction` (Inbound / Outbound)."""
    rules = sorted(
        (r for r in nsg.rules if r.direction.lower() == direction.lower()), key=lambda r: r.priority
    )
    for rule in (*rules, *_DEFAULTS[direction]):
        if rule_matches(rule, src, dst, protocol, port):
            return NsgVerdict(nsg, rule)
    return NsgVerdict(nsg, _DEFAULTS[direction][-1])
