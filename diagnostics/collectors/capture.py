"""`aksdiag capture`: write a snapshot folder (SPEC §3) from a live read, for offline analysis.

The folder holds what people would collect by hand: `cluster.json` (the ARM REST body),
`k8s/<resource>.json` as `kubectl get <resource> -A -o json` prints it, `publicips.json` for
the egress IPs, `arm/` and `egress-endpoints.json` for the network path (capture_net), and
`snapshot.json` saying when and from where. Lists are the same reads a live
diagnosis makes (Warning events only, ConfigMaps and NodeNetworkConfigs in kube-system), streamed
item by item to disk.

Capture is by allowlist: each object keeps only the fields its projection reads
(`diagnostics.projection.FIELDS` for Kubernetes lists, `armjson.ARM_FIELDS` for cluster.json),
every string redacted and capped on the way (`diagnostics.allowlist.keep`). Env values, args,
probes, lifecycle hooks, volumes, annotations, tags are never read by a check, so never written.
Secret objects are never read. A new capture item is one call: `write_kept` for one JSON
document, `write_list` for a Kubernetes list, each with its own field list.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diagnostics.allowlist import keep
from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.armjson import ARM_FIELDS, parse_versions, to_rest_body
from diagnostics.collectors.capture_net import capture_network
from diagnostics.collectors.k8s import ListRequest, ReadError
from diagnostics.collectors.live import NO_AZURE, LiveSource, list_requests
from diagnostics.collectors.logs_capture import capture_control_plane
from diagnostics.projection import FIELDS
from diagnostics.resources import CLUSTER, K8S_RESOURCES, PUBLIC_IPS, VERSIONS
from diagnostics.snapshot import ClusterInfo

# what parse_versions reads of `az aks get-versions` (the REST body has the same names)
VERSION_FIELDS = (
    "values[].version",
    "values[].isPreview",
    "values[].capabilities.supportPlan[]",
)


class CaptureError(Exception):
    """The folder cannot take a snapshot; the message says why."""


@dataclass
class CaptureResult:
    folder: Path
    counts: dict[str, int] = field(default_factory=dict)  # file -> objects written
    missing: dict[str, str] = field(default_factory=dict)  # source -> why not written
    notes: list[str] = field(default_factory=list)
    captured_at: str = ""


def _prepare(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise CaptureError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / "snapshot.json").is_file():
            raise CaptureError(
                f"{folder} is not empty and holds no snapshot.json: choose an empty or new folder"
            )
        for old in (
            "cluster.json",
            "publicips.json",
            "snapshot.json",
            "egress-endpoints.json",
            "versions.json",
        ):
            (folder / old).unlink(missing_ok=True)
        shutil.rmtree(folder / "k8s", ignore_errors=True)  # a previous capture of ours
        shutil.rmtree(folder / "arm", ignore_errors=True)
    (folder / "k8s").mkdir(parents=True, exist_ok=True)


def write_kept(
    root: Path, out: CaptureResult, name: str, doc: dict[str, Any], fields: tuple[str, ...]
) -> None:
    """Write `name` (relative to the snapshot folder) holding only `fields` of `doc`."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, keep(doc, fields))
    out.counts[name] = 1


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_list(path: Path, req: ListRequest, items: Iterable[dict[str, Any]]) -> int:
    """Stream items into a kubectl `List` file, each item reduced to the fields its projection
    reads (`FIELDS`); the file appears only when every item was read (a failed read leaves no
    half file)."""
    api = req.api
    fields = FIELDS[req.resource]
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(
                '{\n  "apiVersion": "v1",\n  "kind": "List",\n  "metadata": {"resourceVersion": ""},\n  "items": ['
            )
            for raw in items:
                if raw.get("kind") == "Secret":
                    continue
                obj = {"apiVersion": api.api_version, "kind": api.kind, **keep(raw, fields)}
                fh.write(("," if count else "") + "\n    " + json.dumps(obj, ensure_ascii=False))
                count += 1
            fh.write("\n  ]\n}\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def capture(
    source: LiveSource,
    folder: str | Path,
    progress: Callable[[str], None] = lambda _: None,
    since: int | None = None,  # seconds of audit log (default the last hour)
) -> CaptureResult:
    """Read everything a diagnosis may need from `source` and write it to `folder`."""
    root = Path(folder)
    _prepare(root)
    out = CaptureResult(root)
    cluster = _capture_azure(source, root, out, progress)
    _capture_kubernetes(source, root, out, progress, aad=bool(cluster and cluster.aad))
    logs_meta = capture_control_plane(source, root, out, progress, since, NO_AZURE)
    out.captured_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    azure = source.azure
    _write_json(
        root / "snapshot.json",
        {
            "capturedAt": out.captured_at,
            "source": {
                "tool": "aksdiag capture",
                "cluster": source.label,
                "path": source.path,
                "azure": {
                    "subscription": azure.subscription,
                    "resourceGroup": azure.resource_group,
                    "name": azure.name,
                }
                if azure
                else None,
            },
            "fieldSelectors": {
                r.resource: r.field_selector for r in _requests() if r.field_selector
            },
            "logs": logs_meta,
            "counts": out.counts,
            "missing": out.missing,
            "notes": out.notes,
            "redaction": "only the fields the checks read (diagnostics/projection.py FIELDS, "
            "armjson.ARM_FIELDS), every string redacted; no Secret objects",
        },
    )
    return out


def _requests() -> list[ListRequest]:
    return list_requests(set(K8S_RESOURCES), ScenarioArgs())


def _capture_azure(
    source: LiveSource, root: Path, out: CaptureResult, progress: Callable[[str], None]
) -> ClusterInfo | None:
    if source.azure is None:
        out.missing[CLUSTER] = out.missing[PUBLIC_IPS] = out.missing[VERSIONS] = NO_AZURE
        return None
    target = source.azure
    progress(
        f"reading managed cluster {target.resource_group}/{target.name} from Azure Resource Manager"
    )
    try:
        info, body = source.clients.arm().cluster(target.resource_group, target.name)
    except ReadError as exc:
        out.missing[CLUSTER] = out.missing[PUBLIC_IPS] = out.missing[VERSIONS] = exc.reason
        progress(f"  cluster.json: not written: {exc.reason}")
        return None
    write_kept(root, out, "cluster.json", to_rest_body(body), ARM_FIELDS)
    progress("  cluster.json written")
    egress = source.clients.arm().egress(info)
    ips = dict(egress.addresses)
    _write_json(root / "publicips.json", ips)
    out.counts["publicips.json"] = len(ips)
    if egress.unresolved:
        out.missing[PUBLIC_IPS] = "could not resolve " + "; ".join(
            f"{k}: {v}" for k, v in egress.unresolved.items()
        )
    if egress.nat_ids:
        # cluster.json only names effectiveOutboundIPs; say where these came from
        out.notes.append(
            "egress through a user-assigned NAT gateway (found through the node subnets); its "
            "public IPs are in publicips.json: " + ", ".join(egress.nat_ids)
        )
    progress(f"  publicips.json: {len(ips)} egress IP(s) and prefix(es) resolved")
    _capture_versions(source, info, root, out, progress)
    capture_network(source.clients.arm(), info, root, out, progress)
    return info


def _capture_versions(
    source: LiveSource,
    info: ClusterInfo,
    root: Path,
    out: CaptureResult,
    progress: Callable[[str], None],
) -> None:
    """versions.json as `az aks get-versions --location LOC -o json` prints it (the fields
    parse_versions reads); without it `cluster.version-outdated` falls back to a dated table."""
    try:
        if not info.location:
            raise ReadError("the managed cluster names no location")
        body = source.clients.arm().kubernetes_versions_body(info.location)
        count = len(parse_versions(body))
    except ReadError as exc:
        out.missing[VERSIONS] = exc.reason
        progress(f"  versions.json: not written: {exc.reason}")
        return
    except (ValueError, TypeError, AttributeError) as exc:
        out.missing[VERSIONS] = f"unexpected answer from ARM: {exc}"
        progress(f"  versions.json: not written: {exc}")
        return
    write_kept(root, out, "versions.json", body, VERSION_FIELDS)
    progress(f"  versions.json: {count} version(s) offered in {info.location}")


def _capture_kubernetes(
    source: LiveSource,
    root: Path,
    out: CaptureResult,
    progress: Callable[[str], None],
    aad: bool = False,
) -> None:
    reqs = _requests()
    if source.kube.mode == "none":
        for r in reqs:
            out.missing[r.resource] = "not read: no Kubernetes access is configured"
        return
    if source.kube.mode == "run-command":
        progress(f"reading {len(reqs)} lists through ARM run command (this takes a while)")
        try:
            results: dict[str, Any] = source.clients.run_command_reader(lambda: aad).read(reqs)
        except ReadError as exc:
            results = {r.key: exc for r in reqs}
        for r in reqs:
            value = results.get(r.key)
            if isinstance(value, ReadError) or value is None:
                out.missing[r.resource] = value.reason if value else "no output"
                progress(f"  {r.resource}: not written: {out.missing[r.resource]}")
                continue
            _write_one(root, r, value, out, progress)
        return
    try:
        api = source.clients.kube_api()
    except ReadError as exc:
        for r in reqs:
            out.missing[r.resource] = exc.reason
        progress(f"Kubernetes API: {exc.reason}")
        return
    progress(f"reading {len(reqs)} lists from {api.server}")
    down: ReadError | None = None
    for r in reqs:
        if down is not None:
            out.missing[r.resource] = down.reason
            continue
        try:
            _write_one(root, r, api.iter_items(r), out, progress)
        except ReadError as exc:
            out.missing[r.resource] = exc.reason
            progress(f"  {r.resource}: not written: {exc.reason}")
            if exc.unreachable:
                down = exc


def _write_one(
    root: Path,
    req: ListRequest,
    items: Iterable[dict[str, Any]],
    out: CaptureResult,
    progress: Callable[[str], None],
) -> None:
    n = write_list(root / "k8s" / f"{req.resource}.json", req, items)
    out.counts[f"k8s/{req.resource}.json"] = n
    progress(f"  k8s/{req.resource}.json: {n} object(s)")
