"""Control-plane logs as plain data: the cluster's diagnostic settings (where its logs go) and
the API server's audit log, aggregated to one row per (identity, verb, resource, namespace,
status code, user agent) with a count and first/last seen.

One parser for every shape these arrive in: the ARM REST body or `az monitor diagnostic-settings
list -o json` for the settings; for the audit log, the aggregated rows aksdiag's own query
returns (live and `capture`), and raw rows of `AKSAudit` / `AKSAuditAdmin` (resource-specific
tables) or `AzureDiagnostics` (legacy, the event as JSON in `log_s`) as `az monitor
log-analytics query` prints them, where every value may be a string and dynamic columns JSON
strings. Identities and user agents are free text from the cluster: they are redacted here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from diagnostics.redact import redact_text

AUDIT_CATEGORIES = ("kube-audit", "kube-audit-admin")
APISERVER_CATEGORY = "kube-apiserver"
RESOURCE_SPECIFIC = "resource-specific"  # AKSAudit, AKSAuditAdmin, AKSControlPlane
LEGACY = "AzureDiagnostics"  # one table, the event as JSON in log_s
CODES = (403, 429)


def parse_time(value: Any) -> float | None:
    """RFC 3339 text (Log Analytics writes 7 fraction digits) or a datetime -> epoch seconds."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if not value or not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


# ---------------------------------------------------------------- diagnostic settings
@dataclass(frozen=True, slots=True)
class DiagnosticSetting:
    """One diagnostic setting of the cluster: the log categories it enables and where they go."""

    name: str
    categories: tuple[str, ...]  # enabled categories; category groups as "group:allLogs"
    workspace_id: str = ""
    storage: bool = False
    event_hub: bool = False
    mode: str = LEGACY  # RESOURCE_SPECIFIC when logAnalyticsDestinationType is Dedicated

    def sends(self, category: str) -> bool:
        """Whether the category goes to a Log Analytics workspace through this setting."""
        if not self.workspace_id:
            return False
        groups = {"group:alllogs"} | ({"group:audit"} if category in AUDIT_CATEGORIES else set())
        return category in self.categories or bool(groups & {c.lower() for c in self.categories})

    def describe(self) -> str:
        where = (
            [f"workspace {self.workspace_id.rsplit('/', 1)[-1]} ({self.mode})"]
            if (self.workspace_id)
            else []
        )
        where += ["a storage account"] * self.storage + ["an event hub"] * self.event_hub
        cats = ", ".join(self.categories) or "no log category"
        return (
            f"diagnostic setting {self.name!r} sends {cats} to {' and '.join(where) or 'nowhere'}"
        )


def _props(item: Mapping[str, Any]) -> Mapping[str, Any]:
    props = item.get("properties")
    return props if isinstance(props, Mapping) else item


def is_diagnostic_setting(item: Any) -> bool:
    return isinstance(item, Mapping) and (
        str(item.get("type", "")).lower() == "microsoft.insights/diagnosticsettings"
        or "/providers/microsoft.insights/diagnosticsettings/" in str(item.get("id", "")).lower()
    )


def parse_diagnostic_setting(item: Mapping[str, Any]) -> DiagnosticSetting:
    p = _props(item)
    cats: list[str] = []
    for log in p.get("logs") or ():
        if not isinstance(log, Mapping) or log.get("enabled") is False:
            continue
        if log.get("category"):
            cats.append(str(log["category"]))
        elif log.get("categoryGroup"):
            cats.append(f"group:{log['categoryGroup']}")
    dest = str(p.get("logAnalyticsDestinationType") or "")
    return DiagnosticSetting(
        name=str(item.get("name") or ""),
        categories=tuple(dict.fromkeys(cats)),
        workspace_id=str(p.get("workspaceId") or ""),
        storage=bool(p.get("storageAccountId")),
        event_hub=bool(p.get("eventHubAuthorizationRuleId") or p.get("eventHubName")),
        mode=RESOURCE_SPECIFIC if dest.lower() == "dedicated" else LEGACY,
    )


def parse_diagnostic_settings(doc: Any) -> list[DiagnosticSetting]:
    """A list, `{"value": [...]}` (the REST list and older az) or one setting."""
    if isinstance(doc, Mapping) and isinstance(doc.get("value"), list):
        doc = doc["value"]
    items = doc if isinstance(doc, list) else [doc]
    return [parse_diagnostic_setting(i) for i in items if isinstance(i, Mapping)]


def audit_destination(settings: Iterable[DiagnosticSetting]) -> tuple[list[str], str]:
    """(audit categories sent to a workspace, table mode) across the settings."""
    sent: list[str] = []
    mode = ""
    for s in settings:
        for cat in AUDIT_CATEGORIES:
            if s.sends(cat):
                sent.append(cat)
                mode = mode or s.mode
    return list(dict.fromkeys(sent)), mode


# ---------------------------------------------------------------- the audit log
@dataclass(frozen=True, slots=True)
class AuditRow:
    identity: str
    verb: str
    resource: str  # "pods", "pods/log"; a non-resource URL ("/api") when there is no object
    namespace: str  # "" for cluster scope
    code: int
    user_agent: str
    count: int
    first: float | None
    last: float | None
    api_group: str = ""


@dataclass
class AuditLog:
    """What the audit query returned: rows, the window it covered, and its limits."""

    rows: list[AuditRow] = field(default_factory=list)
    window_seconds: int | None = None  # None: whatever the file holds
    tables: tuple[str, ...] = ()  # where the rows came from, when known
    categories: tuple[str, ...] = ()  # audit categories sent to a workspace, when known
    truncated: bool = False  # the row cap was reached
    partial: str = ""  # why the answer is incomplete (Log Analytics partial error)

    @property
    def reads_visible(self) -> bool:
        """kube-audit-admin leaves out get and list events: 403s on reads are invisible with it alone."""
        return not self.categories or "kube-audit" in self.categories


def _get(row: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in row:
            return row[n]
    low = {str(k).lower(): v for k, v in row.items()}
    for n in names:
        if n.lower() in low:
            return low[n.lower()]
    return None


def _dynamic(value: Any) -> Any:
    """A dynamic column: an object, or the same as a JSON string (az prints it so)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return value if value is not None else {}


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def _text(value: Any) -> str:
    return redact_text(str(value)) if value not in (None, "") else ""


def _resource(ref: Mapping[str, Any], uri: str) -> str:
    res = str(ref.get("resource") or "")
    sub = str(ref.get("subresource") or "")
    if res:
        return f"{res}/{sub}" if sub else res
    return uri.split("?", 1)[0] if uri else ""


def _event_row(event: Mapping[str, Any], when: Any) -> tuple[tuple[Any, ...], float | None]:
    user = _dynamic(event.get("user"))
    ref = _dynamic(event.get("objectRef"))
    status = _dynamic(event.get("responseStatus"))
    ref = ref if isinstance(ref, Mapping) else {}
    key = (
        str(user.get("username", "")) if isinstance(user, Mapping) else "",
        str(event.get("verb") or ""),
        _resource(ref, str(event.get("requestURI") or "")),
        str(ref.get("namespace") or ""),
        _int(status.get("code")) if isinstance(status, Mapping) else 0,
        str(event.get("userAgent") or ""),
        str(ref.get("apiGroup") or ""),
    )
    return key, parse_time(
        when or event.get("stageTimestamp") or event.get("requestReceivedTimestamp")
    )


def _raw_key(row: Mapping[str, Any]) -> tuple[tuple[Any, ...], float | None, str] | None:
    """A raw AKSAudit / AzureDiagnostics row -> (group key, time, audit id)."""
    when = _get(row, "TimeGenerated", "timestamp")
    log_s = _get(row, "log_s")
    if log_s is not None:
        event = _dynamic(log_s)
        if not isinstance(event, Mapping):
            return None
        key, t = _event_row(event, when)
        return key, t, str(event.get("auditID") or "")
    if _get(row, "User", "ResponseStatus") is None:
        return None
    event = {
        "user": _get(row, "User"),
        "verb": _get(row, "Verb"),
        "objectRef": _get(row, "ObjectRef"),
        "responseStatus": _get(row, "ResponseStatus"),
        "userAgent": _get(row, "UserAgent"),
        "requestURI": _get(row, "RequestUri", "RequestURI"),
    }
    key, t = _event_row(event, when)
    return key, t, str(_get(row, "AuditId", "AuditID") or "")


def parse_audit_rows(items: Iterable[Any], codes: tuple[int, ...] = CODES) -> list[AuditRow]:
    """Aggregated rows as they are; raw audit events grouped (duplicates across AKSAudit and
    AKSAuditAdmin, or both categories in AzureDiagnostics, counted once by audit id)."""
    out: list[AuditRow] = []
    groups: dict[tuple[Any, ...], list[Any]] = {}
    seen: set[str] = set()
    for row in items:
        if not isinstance(row, Mapping):
            continue
        if _get(row, "Requests", "count_", "Count") is not None and _get(row, "Identity"):
            code = _int(_get(row, "Code"))
            if code in codes:
                out.append(_aggregated(row, code))
            continue
        raw = _raw_key(row)
        if raw is None:
            continue
        key, t, audit_id = raw
        if key[4] not in codes or (audit_id and audit_id in seen):
            continue
        if audit_id:
            seen.add(audit_id)
        g = groups.setdefault(key, [0, None, None])
        g[0] += 1
        if t is not None:
            g[1] = t if g[1] is None else min(g[1], t)
            g[2] = t if g[2] is None else max(g[2], t)
    for (ident, verb, res, ns, code, ua, group), (n, first, last) in groups.items():
        out.append(AuditRow(_text(ident), verb, res, ns, code, _text(ua), n, first, last, group))
    out.sort(key=lambda r: (-r.count, r.identity, r.verb, r.resource))
    return out


def _aggregated(row: Mapping[str, Any], code: int) -> AuditRow:
    return AuditRow(
        identity=_text(_get(row, "Identity")),
        verb=str(_get(row, "Verb") or ""),
        resource=str(_get(row, "Resource") or ""),
        namespace=str(_get(row, "Namespace") or ""),
        code=code,
        user_agent=_text(_get(row, "UserAgent")),
        count=_int(_get(row, "Requests", "count_", "Count")),
        first=parse_time(_get(row, "FirstSeen")),
        last=parse_time(_get(row, "LastSeen")),
        api_group=str(_get(row, "ApiGroup") or ""),
    )


def row_to_json(row: AuditRow) -> dict[str, Any]:
    """The aggregated row as aksdiag's query names its columns (what `capture` writes)."""

    def iso(t: float | None) -> str | None:
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z") if t else None

    return {
        "Identity": row.identity,
        "Verb": row.verb,
        "Resource": row.resource,
        "ApiGroup": row.api_group,
        "Namespace": row.namespace,
        "Code": row.code,
        "UserAgent": row.user_agent,
        "Requests": row.count,
        "FirstSeen": iso(row.first),
        "LastSeen": iso(row.last),
    }
