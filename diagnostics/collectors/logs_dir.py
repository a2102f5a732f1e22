"""Control-plane logs in a snapshot folder (SPEC §3): `logs/kube-audit.json`, the rows of an
audit query as `az monitor log-analytics query` prints them (aggregated by aksdiag, or raw
`AKSAudit` / `AzureDiagnostics` rows), and the cluster's diagnostic settings among the `arm/`
resources (`az monitor diagnostic-settings list --resource CLUSTER_ID -o json`), recognised by
type or id whatever the file is called; other resource types in `arm/` are left alone.
A missing or unreadable file is recorded as unavailable, never raised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from diagnostics.controlplane import (
    AuditLog,
    is_diagnostic_setting,
    parse_audit_rows,
    parse_diagnostic_setting,
)
from diagnostics.resources import AUDIT_LOG, DIAGNOSTIC_SETTINGS
from diagnostics.snapshot import Snapshot

AUDIT_FILE = "logs/kube-audit.json"
SETTINGS_FILE = "arm/diagnostic-settings.json"  # what capture writes; any arm/*.json is read
LOG_SOURCES = (DIAGNOSTIC_SETTINGS, AUDIT_LOG)


def _load(path: Path) -> Any:
    raw = path.read_bytes()
    for bom, enc in (
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
        (b"\xef\xbb\xbf", "utf-8-sig"),
    ):
        if raw.startswith(bom):
            return json.loads(raw.decode(enc))
    return json.loads(raw)


def _items(doc: Any) -> list[Any]:
    if isinstance(doc, dict) and isinstance(doc.get("value"), list):
        return list(doc["value"])
    if isinstance(doc, dict) and isinstance(doc.get("tables"), list):  # the REST query answer
        out = []
        for t in doc["tables"]:
            names = [c.get("name") for c in t.get("columns", [])]
            out += [dict(zip(names, row, strict=False)) for row in t.get("rows", [])]
        return out
    return doc if isinstance(doc, list) else [doc]


def read_control_plane(root: Path, snap: Snapshot, wanted: set[str]) -> None:
    if DIAGNOSTIC_SETTINGS in wanted:
        _read_settings(root, snap)
    if AUDIT_LOG in wanted:
        _read_audit(root / AUDIT_FILE, snap)


def _read_settings(root: Path, snap: Snapshot) -> None:
    found = False
    for path in sorted((root / "arm").glob("*.json")) if (root / "arm").is_dir() else ():
        try:
            items = _items(_load(path))
        except (OSError, ValueError) as exc:
            if path.name == Path(SETTINGS_FILE).name:
                snap.missing[DIAGNOSTIC_SETTINGS] = f"{SETTINGS_FILE} is not valid JSON: {exc}"
                return
            continue  # another resource file: its own reader reports it
        settings = [parse_diagnostic_setting(i) for i in items if is_diagnostic_setting(i)]
        # An empty list in the settings file means "the cluster has none", not "not collected".
        found = found or bool(settings) or path.name == Path(SETTINGS_FILE).name
        snap.diagnostic_settings += settings
    if found:
        snap.read.append(DIAGNOSTIC_SETTINGS)
    else:
        snap.missing[DIAGNOSTIC_SETTINGS] = (
            f"not collected in this snapshot (no diagnostic settings in arm/*.json; "
            f"save `az monitor diagnostic-settings list --resource CLUSTER_ID -o json` as "
            f"{SETTINGS_FILE})"
        )


def _meta(root: Path) -> dict[str, Any]:
    """What `capture` recorded about the audit query in snapshot.json (`logs.kube-audit`)."""
    try:
        meta = _load(root / "snapshot.json")["logs"]["kube-audit"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _read_audit(path: Path, snap: Snapshot) -> None:
    if not path.is_file():
        snap.missing[AUDIT_LOG] = f"not collected in this snapshot (no {AUDIT_FILE})"
        return
    try:
        items = _items(_load(path))
        meta = _meta(path.parent.parent)
        snap.audit = AuditLog(
            rows=parse_audit_rows(items),
            window_seconds=int(meta["sinceSeconds"]) if meta.get("sinceSeconds") else None,
            categories=tuple(str(c) for c in meta.get("categories") or ()),
            truncated=bool(meta.get("truncated")),
            partial=str(meta.get("partial") or ""),
        )
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        snap.missing[AUDIT_LOG] = f"{AUDIT_FILE} could not be parsed: {exc}"
        return
    snap.read.append(AUDIT_LOG)
