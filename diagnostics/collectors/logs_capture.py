"""`aksdiag capture`, control-plane logs: `arm/diagnostic-settings.json` (the cluster's diagnostic
settings, only the fields aksdiag reads) and `logs/kube-audit.json` (the aggregated 403/429 rows
of the audit query, never request or response bodies; identities and user agents redacted).
The query's window and limits go into snapshot.json (`logs`), so the folder reads as live did.
When no audit category reaches a workspace no rows are written: an empty file would read as
"no 403s".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diagnostics.collectors import logs
from diagnostics.collectors.k8s import ReadError
from diagnostics.collectors.logs_dir import AUDIT_FILE, SETTINGS_FILE
from diagnostics.controlplane import (
    audit_destination,
    is_diagnostic_setting,
    parse_diagnostic_settings,
    row_to_json,
)
from diagnostics.resources import AUDIT_LOG, DIAGNOSTIC_SETTINGS

_SETTING_FIELDS = (
    "workspaceId",
    "logAnalyticsDestinationType",
    "storageAccountId",
    "eventHubAuthorizationRuleId",
    "eventHubName",
)


def _write(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _setting(item: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = item["properties"] if isinstance(item.get("properties"), dict) else item
    kept = {k: props[k] for k in _SETTING_FIELDS if props.get(k)}
    kept["logs"] = [
        {k: log.get(k) for k in ("category", "categoryGroup", "enabled")}
        for log in props.get("logs") or ()
        if isinstance(log, dict)
    ]
    return {
        "id": item.get("id"),
        "name": item.get("name"),
        "type": "Microsoft.Insights/diagnosticSettings",
        "properties": kept,
    }


def capture_control_plane(
    source: Any,  # a LiveSource
    root: Path,
    out: Any,  # a CaptureResult: counts, missing, notes
    progress: Callable[[str], None],
    since: int | None = None,
    no_azure: str = "",
) -> dict[str, Any] | None:
    """Write the settings and the audit rows; return what snapshot.json records about them."""
    for old in (root / SETTINGS_FILE, root / AUDIT_FILE):
        old.unlink(missing_ok=True)
    if source.azure is None:
        out.missing[DIAGNOSTIC_SETTINGS] = out.missing[AUDIT_LOG] = no_azure
        return None
    cid = source.azure.id
    progress("reading the cluster's diagnostic settings")
    try:
        body = logs.diagnostic_settings_body(source.clients.arm(), cid)
    except ReadError as exc:
        out.missing[DIAGNOSTIC_SETTINGS] = exc.reason
        out.missing[AUDIT_LOG] = (
            f"not read: the diagnostic settings could not be read ({exc.reason})"
        )
        progress(f"  {SETTINGS_FILE}: not written: {exc.reason}")
        return None
    items = body.get("value") if isinstance(body, dict) else body
    kept = [_setting(i) for i in items or () if is_diagnostic_setting(i)]
    _write(root / SETTINGS_FILE, kept)
    out.counts[SETTINGS_FILE] = len(kept)
    progress(f"  {SETTINGS_FILE}: {len(kept)} setting(s)")
    sent, _ = audit_destination(parse_diagnostic_settings(kept))
    if not sent:
        out.missing[AUDIT_LOG] = (
            "not read: no diagnostic setting sends kube-audit or kube-audit-admin to a Log "
            "Analytics workspace"
        )
        return None
    window = since or logs.DEFAULT_SINCE
    progress(f"querying the audit log (403 and 429 answers, the last {window} s)")
    try:
        audit = source.clients.logs().audit(cid, window, tuple(sent))
    except ReadError as exc:
        out.missing[AUDIT_LOG] = exc.reason
        progress(f"  {AUDIT_FILE}: not written: {exc.reason}")
        return None
    _write(root / AUDIT_FILE, [row_to_json(r) for r in audit.rows])
    out.counts[AUDIT_FILE] = len(audit.rows)
    progress(f"  {AUDIT_FILE}: {len(audit.rows)} aggregated row(s)")
    if audit.partial:
        out.notes.append(f"the audit query answered partially: {audit.partial}")
    return {
        "kube-audit": {
            "sinceSeconds": window,
            "categories": list(sent),
            "truncated": audit.truncated,
            "partial": audit.partial,
        }
    }
