"""Live control-plane log reads: the cluster's diagnostic settings (ARM) and its audit log
(Log Analytics, azure-monitor-query's `LogsQueryClient.query_resource` on the cluster's resource
id, so no workspace id is needed and the caller's table rights decide what it sees).

The query is bounded on every axis: a time window (`--since`, default the last hour), server-side
aggregation to one row per (identity, verb, resource, namespace, code, user agent) with counts
and first/last seen, a row cap, and a server and client timeout inside the collection deadline.
It reads only the 403 and 429 answers, never request or response bodies, and works for both
table modes (resource-specific `AKSAudit`/`AKSAuditAdmin` and legacy `AzureDiagnostics` with
`log_s`): missing tables are skipped (`union isfuzzy=true`), and an event present in two tables
or categories is counted once (by audit id). A partial answer keeps its rows and says so;
throttling, 403 and timeouts become `ReadError`s whose reason is a sentence for the report.

Diagnostic settings are a plain GET through an azure-mgmt-core ARM pipeline (`ArmClient.rest`):
the installed azure-mgmt-monitor 7.x has no `diagnostic_settings` operation group (8.x has it).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from datetime import timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.rest import HttpRequest

from diagnostics.collectors.arm import ArmClient, arm_error
from diagnostics.collectors.k8s import ReadError, secs
from diagnostics.collectors.settings import LiveSettings
from diagnostics.controlplane import (
    AuditLog,
    DiagnosticSetting,
    audit_destination,
    parse_audit_rows,
    parse_diagnostic_settings,
)

DEFAULT_SINCE = 3600
DIAGNOSTIC_SETTINGS_API = "2021-05-01-preview"
DIAGNOSTIC_SETTINGS_PATH = "/providers/Microsoft.Insights/diagnosticSettings"
AUDIT_TABLES = ("AKSAudit", "AKSAuditAdmin", "AzureDiagnostics")

_RESOURCE_SPECIFIC_LEG = """({table}
 | extend Code = toint(ResponseStatus.code)
 | where Code in (403, 429)
 | project TimeGenerated, AuditId = tostring(AuditId), Identity = tostring(User.username),
   Verb = tostring(Verb), Res = tostring(ObjectRef.resource), Sub = tostring(ObjectRef.subresource),
   ApiGroup = tostring(ObjectRef.apiGroup), Namespace = tostring(ObjectRef.namespace), Code,
   UserAgent = tostring(UserAgent), Uri = tostring(RequestUri))"""
_LEGACY_LEG = """(AzureDiagnostics
 | where Category in ("kube-audit", "kube-audit-admin")
 | extend e = parse_json(tostring(column_ifexists("log_s", "")))
 | extend Code = toint(e.responseStatus.code)
 | where Code in (403, 429)
 | project TimeGenerated, AuditId = tostring(e.auditID), Identity = tostring(e.user.username),
   Verb = tostring(e.verb), Res = tostring(e.objectRef.resource), Sub = tostring(e.objectRef.subresource),
   ApiGroup = tostring(e.objectRef.apiGroup), Namespace = tostring(e.objectRef.namespace), Code,
   UserAgent = tostring(e.userAgent), Uri = tostring(e.requestURI))"""


def audit_query(max_rows: int) -> str:
    """The KQL: 403/429 audit events of both table modes, deduplicated, aggregated, capped."""
    legs = [_RESOURCE_SPECIFIC_LEG.format(table=t) for t in AUDIT_TABLES[:2]] + [_LEGACY_LEG]
    return (
        "union isfuzzy=true\n"
        + ",\n".join(legs)
        + """
| extend AuditId = iff(isempty(AuditId), tostring(new_guid()), AuditId)
| summarize arg_min(TimeGenerated, Identity, Verb, Res, Sub, ApiGroup, Namespace, Code, UserAgent, Uri) by AuditId
| extend Resource = iff(isempty(Res), tostring(split(Uri, "?")[0]), iff(isempty(Sub), Res, strcat(Res, "/", Sub)))
| summarize Requests = count(), FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated)
    by Identity, Verb, Resource, ApiGroup, Namespace, Code, UserAgent
"""
        + f"| top {int(max_rows)} by Requests desc"
    )


# ---------------------------------------------------------------- diagnostic settings
def diagnostic_settings(arm: ArmClient, cluster_id: str) -> list[DiagnosticSetting]:
    """`az monitor diagnostic-settings list --resource CLUSTER_ID`, through the SDK pipeline."""
    return parse_diagnostic_settings(diagnostic_settings_body(arm, cluster_id))


def diagnostic_settings_body(arm: ArmClient, cluster_id: str) -> Any:
    what = "the cluster's diagnostic settings"
    request = HttpRequest(
        "GET",
        f"{arm.endpoint}{cluster_id}{DIAGNOSTIC_SETTINGS_PATH}",
        params={"api-version": DIAGNOSTIC_SETTINGS_API},
    )
    try:
        response = arm.rest.send_request(request)
        response.raise_for_status()
        return response.json()
    except Exception as exc:
        raise arm_error(exc, what) from None


# ---------------------------------------------------------------- the audit log
def logs_error(exc: Exception, timeout: float) -> ReadError:
    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", "") or exc).split("\n")[0][:300]
    if status == 429:
        return ReadError(
            f"Log Analytics throttled the audit query (429) after retries: {message}",
            "overload",
            429,
        )
    if status in (401, 403):
        return ReadError(
            f"forbidden: the audit log (Log Analytics, {status}): {message}; the identity needs "
            "Microsoft.Insights/logs/<table>/read on the cluster (see deploy/azure), and the "
            "workspace must allow resource-context access",
            "forbidden",
            status,
        )
    if isinstance(exc, ServiceResponseError | ServiceRequestError) and status is None:
        kind = "timeout" if "timed out" in str(exc).lower() else "unreachable"
        return ReadError(
            f"Log Analytics did not answer the audit query within {secs(timeout)}: "
            f"{str(exc)[:200]}",
            kind,
        )
    return ReadError(
        f"the audit log (Log Analytics): {type(exc).__name__}: {message}", "error", status
    )


class LogsReader:
    """One LogsQueryClient per cluster source, built on first use."""

    def __init__(
        self, credential: Any, settings: LiveSettings, connection_verify: str | bool | None = None
    ) -> None:
        self.settings = settings
        self._credential = credential
        self._verify = connection_verify
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from azure.monitor.query import LogsQueryClient

            s = self.settings
            kw: dict[str, Any] = {
                "endpoint": s.logs_endpoint,
                "retry_total": s.retries,
                "retry_backoff_max": 10,
                "connection_timeout": min(s.logs_timeout, 10.0),
                "read_timeout": s.logs_timeout,
            }
            if self._verify is not None:
                kw["connection_verify"] = self._verify
            self._client = LogsQueryClient(self._credential, **kw)
        return self._client

    def audit(self, cluster_id: str, since: int, categories: tuple[str, ...] = ()) -> AuditLog:
        s = self.settings
        try:
            result = self.client.query_resource(
                cluster_id,
                audit_query(s.logs_max_rows),
                timespan=timedelta(seconds=since),
                server_timeout=max(1, int(s.logs_timeout)),
            )
        except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
            raise logs_error(exc, s.logs_timeout) from None
        tables = getattr(result, "tables", None)
        partial = ""
        if tables is None:  # LogsQueryPartialResult
            tables = result.partial_data or []
            err = result.partial_error
            partial = f"{getattr(err, 'code', '')}: {getattr(err, 'message', '')}".strip(": ")
            partial = partial or "partial result"
        rows = [dict(zip(t.columns, row, strict=False)) for t in tables for row in t.rows]
        return AuditLog(
            rows=parse_audit_rows(rows),
            window_seconds=since,
            tables=AUDIT_TABLES,
            categories=categories,
            truncated=len(rows) >= s.logs_max_rows,
            partial=partial,
        )


def audit_task(
    reader: Callable[[], LogsReader],
    cluster_id: str,
    since: int,
    settings_read: Future[Any],
    wait: float,
) -> Callable[[], AuditLog]:
    """The audit read, after the diagnostic settings: when they say no audit category reaches a
    workspace (or cannot be read), an empty answer would read as "no 403s", so the source is
    unavailable instead of queried."""

    def task() -> AuditLog:
        wait_all([settings_read], timeout=wait)
        if not settings_read.done() or settings_read.exception() is not None:
            exc = settings_read.exception() if settings_read.done() else None
            why = exc.reason if isinstance(exc, ReadError) else "they were not read in time"
            raise ReadError(
                "not read: where the audit log goes is unknown, because the diagnostic settings "
                f"could not be read ({why})",
                "error",
            )
        sent, _ = audit_destination(settings_read.result().value)
        if not sent:
            raise ReadError(
                "not read: no diagnostic setting sends kube-audit or kube-audit-admin to "
                "a Log Analytics workspace (see cluster.control-plane-logs-off)",
                "not-found",
            )
        return reader().audit(cluster_id, since, tuple(sent))

    return task
