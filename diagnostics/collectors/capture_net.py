"""`aksdiag capture` for the Azure network path: `arm/<type>.json` (lists of resources, each
projected onto the field allowlist next to the parser, `diagnostics.netpath.parse.FIELDS`, every
string redacted),
`arm/_unreadable.json` (what could not be read and why, so the snapshot says so too) and
`egress-endpoints.json` (projected onto `EGRESS_FIELDS`). Nothing else of a resource is
written."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from diagnostics.allowlist import MAX_VALUE
from diagnostics.collectors import armnet
from diagnostics.collectors.k8s import ReadError
from diagnostics.netpath.parse import EGRESS_FIELDS, flatten, keep
from diagnostics.redact import redact_text
from diagnostics.resources import EGRESS_ENDPOINTS, NETWORK
from diagnostics.snapshot import ClusterInfo


class _Result(Protocol):
    counts: dict[str, int]
    missing: dict[str, str]


def _redacted(value: Any) -> Any:
    """Every string of an allowlisted body through `diagnostics.redact`, as for Kubernetes
    objects (`diagnostics.allowlist`): ARM strings are outside text too."""
    if isinstance(value, str):
        return redact_text(value, MAX_VALUE)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


def _write(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_redacted(doc), indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def capture_network(
    arm: Any, cluster: ClusterInfo, root: Path, out: _Result, progress: Callable[[str], None]
) -> None:
    """Read the cluster's network path and egress endpoints and write them under `root`."""
    shutil.rmtree(root / "arm", ignore_errors=True)
    (root / "egress-endpoints.json").unlink(missing_ok=True)
    read = armnet.read_network(arm, cluster)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for body in read.resources.values():
        kind = str(body["type"]).lower().removeprefix("microsoft.network/").replace("/", "-")
        by_type.setdefault(kind, []).append(body)
    (root / "arm").mkdir()
    for kind, bodies in sorted(by_type.items()):
        _write(root / "arm" / f"{kind}.json", bodies)
        out.counts[f"arm/{kind}.json"] = len(bodies)
    if read.network.unreadable:
        _write(root / "arm" / "_unreadable.json", read.network.unreadable)
        out.missing[NETWORK] = "; ".join(f"{k}: {v}" for k, v in read.network.unreadable.items())
    progress(
        f"  arm/: {len(read.resources)} network resource(s) in {read.rounds} round(s), "
        f"{len(read.network.unreadable)} unreadable"
    )
    try:
        _, items = armnet.read_egress_endpoints(arm, cluster)
    except ReadError as exc:
        out.missing[EGRESS_ENDPOINTS] = exc.reason
        progress(f"  egress-endpoints.json: not written: {exc.reason}")
        return
    _write(root / "egress-endpoints.json", [keep(flatten(i), EGRESS_FIELDS) for i in items])
    out.counts["egress-endpoints.json"] = len(items)
    progress(f"  egress-endpoints.json: {len(items)} categor(ies)")
