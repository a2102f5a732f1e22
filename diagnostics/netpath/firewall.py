"""Azure Firewall rule processing for one flow, as the firewall does it: network rules before
application rules; within each, rule collection groups by priority (a parent policy's groups
before the child's: inherited rules always come first), then collections by priority; the first
matching rule's collection action decides; nothing matching is denied. Application rules match
HTTP/HTTPS by target FQDN (wildcards) or FQDN tag; `AzureKubernetesService` covers the names
AKS needs."""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.netpath.match import (
    Endpoint,
    fqdn_matches,
    port_matches,
    protocol_matches,
)
from diagnostics.netpath.model import AzureNetwork, Firewall, FwCollection, FwRule

AKS_FQDN_TAG = "azurekubernetesservice"
# The names the AzureKubernetesService FQDN tag allows (outbound-rules-control-egress).
AKS_TAG_FQDNS = (
    "*.azmk8s.io",
    "mcr.microsoft.com",
    "*.data.mcr.microsoft.com",
    "mcr-0001.mcr-msedge.net",
    "management.azure.com",
    "login.microsoftonline.com",
    "packages.microsoft.com",
    "acs-mirror.azureedge.net",
    "packages.aks.azure.com",
)


@dataclass(frozen=True, slots=True)
class FwVerdict:
    allowed: bool
    collection: FwCollection | None = None
    rule: FwRule | None = None

    def describe(self) -> str:
        c = self.collection
        if c is None:
            return "no rule matches: Azure Firewall denies by default"
        where = f"policy {c.policy}, rule collection group {c.group}, " if c.group else ""
        rule = f", rule {self.rule.name}" if self.rule else ""
        return f"{where}{c.kind} rule collection {c.name} (priority {c.priority}, {c.action}){rule}"


def ordered_collections(net: AzureNetwork, fw: Firewall) -> list[FwCollection] | str:
    """The firewall's collections in processing order (network first), or why unknown."""
    if not fw.policy_id:
        colls = list(fw.collections)
    else:
        chain = net.policy_chain(fw.policy_id)
        if isinstance(chain, str):
            return chain
        colls = []
        for policy in chain:  # base first: inherited rules are processed first
            groups = []
            for gid in policy.group_ids:
                group = net.groups.get(gid.lower())
                if group is None:
                    return f"rule collection group {gid.rsplit('/', 1)[-1]}: {net.why_missing(gid)}"
                groups.append(group)
            for group in sorted(groups, key=lambda g: g.priority):
                colls += sorted(group.collections, key=lambda c: c.priority)
    if not fw.policy_id:
        colls.sort(key=lambda c: c.priority)
    rank = {"network": 0, "application": 1}
    return sorted((c for c in colls if c.kind in rank), key=lambda c: rank[c.kind])


def _source_ok(rule: FwRule, src: Endpoint) -> bool:
    if not rule.sources:
        return False
    return any(s.startswith("ipgroup:") or src.matches_prefix(s) for s in rule.sources)


def rule_matches(rule: FwRule, src: Endpoint, dst: Endpoint, protocol: str, port: int) -> bool:
    if not _source_ok(rule, src):
        return False
    if rule.kind == "network":
        if not any(protocol_matches(p, protocol) for p in rule.protocols):
            return False
        if not port_matches(rule.ports, port):
            return False
        if any(dst.matches_prefix(d) for d in rule.destinations if not d.startswith("ipgroup:")):
            return True
        return bool(dst.fqdn) and any(fqdn_matches(f, dst.fqdn) for f in rule.fqdns)
    if protocol.lower() != "tcp" or not dst.fqdn:
        return False
    ports_ok = (
        any(int(p.rsplit(":", 1)[-1] or 0) == port for p in rule.protocols if ":" in p)
        or not rule.protocols
    )
    if not ports_ok:
        return False
    if any(fqdn_matches(f, dst.fqdn) for f in rule.fqdns):
        return True
    return AKS_FQDN_TAG in {t.lower() for t in rule.fqdn_tags} and any(
        fqdn_matches(f, dst.fqdn) for f in AKS_TAG_FQDNS
    )


def evaluate(
    collections: list[FwCollection], src: Endpoint, dst: Endpoint, protocol: str, port: int
) -> FwVerdict:
    for coll in collections:
        for rule in coll.rules:
            if rule_matches(rule, src, dst, protocol, port):
                return FwVerdict(coll.action.lower() == "allow", coll, rule)
    return FwVerdict(False)
