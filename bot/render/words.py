"""The words every renderer shares, so Slack and the terminal say the same thing: the arguments
asked, readable subjects, "not checked" in human terms, which commands change something, what a
placeholder means, how old the data is, and Slack dates. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from diagnostics.model import Finding, Report, Unavailable

# Sources as a person names them (diagnostics.resources spells them as snapshot files).
SOURCE_NAMES = {
    "cluster": "the cluster's Azure resource",
    "probe": "the live API server probe",
    "publicips": "egress public IPs and prefixes",
    "versions": "the Kubernetes versions AKS offers in the region",
    "pods": "pods",
    "services": "services",
    "endpoints": "endpoints",
    "endpointslices": "EndpointSlices",
    "events": "events",
    "nodes": "nodes",
    "networkpolicies": "network policies",
    "daemonsets": "DaemonSets",
    "nodenetworkconfigs": "NodeNetworkConfigs (Azure CNI IP pools)",
    "namespaces": "namespaces",
    "serviceaccounts": "service accounts",
    "configmaps": "kube-system ConfigMaps",
    "rolebindings": "RBAC bindings",
    "clusterrolebindings": "RBAC bindings",
    "roles": "RBAC roles",
    "clusterroles": "RBAC roles",
    "accessreview": "RBAC access reviews",
    "ciliumnetworkpolicies": "Cilium network policies",
    "ciliumclusterwidenetworkpolicies": "Cilium clusterwide network policies",
    "networkpolicies.crd.projectcalico.org": "Calico network policies",
    "globalnetworkpolicies": "Calico global network policies",
    "diagnosticsettings": "where control-plane logs go (diagnostic settings)",
    "kube-audit": "the API server's audit log",
    "network": "network path",
    "privatedns": "the private DNS zone and its links",
    "egressendpoints": "the cluster's egress endpoints",
    "snapshot.json": "the capture time",
}
PLACEHOLDERS = {
    "NEWPOOL": "a name for the new node pool (lowercase letters and digits, up to 12)",
    "NEW_POD_SUBNET_ID": "the resource id of a new, larger pod subnet",
    "NEW_SUBNET_ID": "the resource id of a new, larger subnet",
    "RESOURCE_GROUP": "the cluster's resource group",
    "POOL": "the node pool's name",
    "NODE": "the node's name",
    "NAMESPACE": "the namespace",
    "SERVICE": "the service's name",
    "POD": "a pod's name",
    "IP": "the address to test",
    "PORT": "the port to test",
}
_PLACEHOLDER = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)(?![\w/-])")
# Verbs that create, change or delete something (read-only verbs are everything else).
_KUBECTL_CHANGES = re.compile(
    r"\bkubectl\s+(?:-\S+\s+\S+\s+)*(delete|patch|apply|create|replace|scale|edit|label|annotate|"
    r"set|rollout\s+restart|cordon|uncordon|drain|taint|debug|run|expose|autoscale)\b"
)
_AZ_CHANGES = re.compile(
    r"\baz\s+[\w\s-]*?\b(create|update|add|delete|remove|start|stop|scale|upgrade|set|"
    r"reconcile|restart|rotate-certs|invoke)\b"
)
_READ_ONLY_INVOKE = re.compile(r"\baz\s+vmss\s+run-command\s+invoke\b")


def args_text(arguments: Mapping[str, Any]) -> str:
    """The arguments as they were typed: `shop/web`, `--node N`, `--as NS/SA`, `--from IPs`."""
    parts = []
    if arguments.get("service"):
        parts.append(str(arguments["service"]))
    if arguments.get("node"):
        parts.append(f"--node {arguments['node']}")
    if arguments.get("as"):
        parts.append(f"--as {arguments['as']}")
    if arguments.get("from"):
        parts.append("--from " + ",".join(arguments["from"]))
    return " ".join(parts)


def asked(report: Report) -> str:
    """`pod-ip broken-podip-cni --node N`: what was asked, in the command's own words."""
    return " ".join(p for p in (report.scenario, report.cluster, args_text(report.arguments)) if p)


def readable_subject(subject: str) -> str:
    """`node aks-1`, `service shop/web`, `subnet snet-pods`: a subject a person recognises
    (Azure resource ids become their type and name)."""
    text = subject
    if "#" in text:
        text, _, extra = text.partition("#")
        extra = extra.replace("client=", "client ")
    else:
        extra = ""
    if "/subscriptions/" in text.lower() or text.lower().startswith("/subscriptions"):
        parts = [p for p in text.split("/") if p]
        kind = parts[-2] if len(parts) >= 2 else ""
        kind = {
            "managedClusters": "cluster",
            "agentPools": "node pool",
            "subnets": "subnet",
        }.get(kind, kind.rstrip("s"))
        text = f"{kind} {parts[-1]}" if parts else text
    elif "/" in text:
        kind, _, rest = text.partition("/")
        text = f"{kind.lower()} {rest}"
    return f"{text} ({extra})" if extra else text


def changes(command: str) -> bool:
    """Whether a command creates, changes or deletes something (marked as such)."""
    if _READ_ONLY_INVOKE.search(command):
        return False
    return bool(_KUBECTL_CHANGES.search(command) or _AZ_CHANGES.search(command))


def placeholders(command: str) -> list[str]:
    """The placeholders (plain UPPER_CASE words) a command asks the reader to fill in."""
    found = [m.group(1) for m in _PLACEHOLDER.finditer(_unquoted(command))]
    return [p for p in dict.fromkeys(found) if (len(p) >= 2 and p in PLACEHOLDERS) or "_" in p]


def _unquoted(command: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", " ", command)


def placeholder_note(command: str) -> str:
    """`NEWPOOL: a name for the new node pool; …` for the placeholders of a command."""
    return "; ".join(f"{p}: {PLACEHOLDERS.get(p, 'your value')}" for p in placeholders(command))


def source_name(source: str) -> str:
    if source.startswith("check "):
        return f"the {source[6:]} check"
    return SOURCE_NAMES.get(source, source)


def code_words(code: str) -> str:
    """`service.network-policy` -> `network policy`, `apiserver.probe.ok` -> `probe` (for "so
    X was not checked")."""
    parts = code.split(".")
    return (parts[1] if len(parts) > 1 else code).replace("-", " ")


def not_checked(u: Unavailable) -> str:
    """`network policies: not collected in this snapshot — network policy, network policy
    egress not checked` in words, not check ids."""
    reason = u.reason.split(" (", 1)[0] if len(u.reason) > 80 else u.reason
    text = f"{source_name(u.source)}: {reason}"
    if u.checks:
        what = ", ".join(dict.fromkeys(code_words(c) for c in u.checks))
        text += f" (so not checked: {what})"
    return text


def epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def slack_date(iso: str | None) -> str:
    """A Slack date (`<!date^…>`) that each reader sees in their own time zone."""
    ts = epoch(iso)
    if ts is None or not iso:
        return ""
    fallback = iso.replace("T", " ").replace("+00:00", " UTC")
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{fallback}>"


def duration(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 2 * 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} days"


def data_age(report: Report, now: float | None = None) -> float | None:
    """How old the data was when the report was made (or at `now`)."""
    data = epoch(report.data_as_of)
    ref = now if now is not None else epoch(report.started_at)
    if data is None or ref is None:
        return None
    return max(0.0, ref - data)


def stale_note(report: Report, ttl_s: float, now: float | None = None) -> str:
    """`data is 13 days old` when the data is older than the cache TTL, else ''."""
    age = data_age(report, now)
    if age is None or age <= ttl_s:
        return ""
    return f"data is {duration(age)} old"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def problem_counts(report: Report) -> str:
    """`3 critical, 5 warning`; info and ok are context, not counted as findings."""
    counts = report.counts()
    parts = [f"{counts[s]} {s}" for s in ("critical", "warning") if counts[s]]
    return ", ".join(parts)


def listing(items: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def symptom_lines(symptoms: Sequence[Finding], per_code: int = 3) -> list[tuple[Finding, str]]:
    """One line per symptom; a code repeated on more than `per_code` subjects becomes one line
    naming how many (the full list is behind Details). (worst finding, text) pairs."""
    by_code: dict[str, list[Finding]] = {}
    for f in symptoms:
        by_code.setdefault(f.code, []).append(f)
    out: list[tuple[Finding, str]] = []
    for code, group in by_code.items():
        if len(group) <= per_code:
            out += [(f, f.title) for f in group]
            continue
        worst = min(group, key=lambda f: f.severity.rank)
        kind = readable_subject(group[0].subject).split(" ", 1)[0]
        names = listing([readable_subject(f.subject).split(" ", 1)[-1] for f in group], 3)
        out.append((worst, f"{code} on {len(group)} {kind}s: {names}"))
    return out
