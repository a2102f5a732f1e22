"""Read a snapshot folder (README.md, "Snapshots") into a Snapshot.

`cluster.json` in either shape, `k8s/<resource>.json` as `kubectl get <resource> -A -o json`
writes it, optional `publicips.json` and `snapshot.json`. Lists are streamed item by item
(ijson) and projected as they are read, so a 150,000-pod file never sits in memory whole.
A missing or unreadable file is recorded as unavailable, never raised.
"""

from __future__ import annotations

import codecs
import gc
import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from diagnostics import projection
from diagnostics.collectors import snapshot_net
from diagnostics.collectors.armjson import parse_cluster, parse_versions
from diagnostics.collectors.logs_dir import read_control_plane
from diagnostics.resources import (
    ACCESS_REVIEW,
    ALL_SOURCES,
    CLUSTER,
    EGRESS_ENDPOINTS,
    K8S_RESOURCES,
    NETWORK,
    PRIVATE_DNS,
    PROBE,
    PUBLIC_IPS,
    VERSIONS,
)
from diagnostics.snapshot import Snapshot


class SnapshotError(Exception):
    """The folder is not a snapshot at all (missing, not a folder, nothing readable in it)."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Allocation-heavy parsing triggers the collector over and over; pause it meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _open_utf8(path: Path) -> BinaryIO:
    """The file as UTF-8 bytes. Windows PowerShell's `>` writes UTF-16 with a byte-order mark
    and some editors add a UTF-8 one; both are common in files people attach to incidents."""
    fh = path.open("rb")
    head = fh.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        data = head + fh.read()
        fh.close()
        return io.BytesIO(data.decode("utf-16").encode("utf-8"))
    fh.seek(3 if head.startswith(codecs.BOM_UTF8) else 0)
    return fh


def _read_json(path: Path) -> Any:
    with _open_utf8(path) as fh:
        return json.load(fh)


def _iter_list(path: Path) -> Iterator[dict[str, Any]]:
    """Items of a `kubectl get -o json` List; a bare JSON array and a single object work too."""
    with _open_utf8(path) as fh:
        start = fh.tell()
        head = fh.read(4096).lstrip()
        fh.seek(start)
        if head.startswith(b"["):
            yield from ijson.items(fh, "item", use_float=True)
            return
        found = False
        for item in ijson.items(fh, "items.item", use_float=True):
            found = True
            yield item
        if not found:
            fh.seek(start)
            doc = json.load(fh)
            if (
                isinstance(doc, dict)
                and "items" not in doc
                and doc.get("kind") not in (None, "List")
            ):
                yield doc  # one object (kubectl get X NAME -o json)
            elif not isinstance(doc, dict):
                raise ValueError("expected a Kubernetes List (kubectl get ... -o json)")


def read_snapshot(
    folder: str | Path, label: str | None = None, sources: Iterable[str] | None = None
) -> Snapshot:
    """Read the sources asked for (all by default) from a snapshot folder."""
    root = Path(folder)
    if not root.exists():
        raise SnapshotError(f"snapshot folder {root} does not exist")
    if not root.is_dir():
        raise SnapshotError(
            f"{root} is not a folder; a snapshot is a folder (see `aksdiag capture`)"
        )
    wanted = set(sources) if sources is not None else set(ALL_SOURCES) - {PROBE, ACCESS_REVIEW}
    snap = Snapshot(label=label or root.name, path=f"snapshot {root}")

    meta_file = root / "snapshot.json"
    if meta_file.is_file():
        try:
            meta = _read_json(meta_file)
            snap.captured_at = projection.parse_time(meta.get("capturedAt"))
        except (OSError, ValueError, AttributeError) as exc:
            snap.missing["snapshot.json"] = f"unreadable: {exc}"

    if PROBE in wanted:
        snap.missing[PROBE] = "an active probe of the API server runs only against a live cluster"
    if ACCESS_REVIEW in wanted:
        snap.missing[ACCESS_REVIEW] = "access reviews run only against a live cluster"
    if CLUSTER in wanted:
        _read_cluster(root / "cluster.json", snap)
    if PUBLIC_IPS in wanted:
        _read_public_ips(root / "publicips.json", snap)
    read_control_plane(root, snap, wanted)
    if NETWORK in wanted:
        snapshot_net.read_network(root, snap)
    if EGRESS_ENDPOINTS in wanted:
        snapshot_net.read_egress_endpoints(root, snap)
    if PRIVATE_DNS in wanted:
        snapshot_net.read_private_dns(root, snap)

    k8s_dir = root / "k8s"
    with gc_paused():
        for name, api in K8S_RESOURCES.items():
            if name not in wanted:
                continue
            path = k8s_dir / f"{name}.json"
            if not path.is_file():
                if api.engine and not _runs_engine(snap, api.engine):
                    snap.read.append(name)  # the cluster runs no such engine: none exist
                    continue
                snap.missing[name] = f"not collected in this snapshot (no k8s/{name}.json)"
                continue
            project = projection.PROJECTORS[name]
            try:
                setattr(snap, api.field, [project(item) for item in _iter_list(path)])
            except (OSError, ValueError, ijson.JSONError, AttributeError, TypeError) as exc:
                snap.missing[name] = f"k8s/{name}.json is not valid kubectl JSON: {exc}"
                continue
            snap.read.append(name)

    snap.note_unevaluated()
    if not snap.read and not (root / "cluster.json").exists() and not k8s_dir.exists():
        raise SnapshotError(
            f"{root} holds neither cluster.json nor k8s/*.json; is it a snapshot folder?"
        )
    return snap


def _runs_engine(snap: Snapshot, engine: str) -> bool:
    """Whether the cluster (as cluster.json says) may run this policy engine: Cilium as the
    data plane or policy engine, Calico as the policy engine, or anything without cluster.json
    or with a bring-your-own CNI (network plugin none)."""
    c = snap.cluster
    if c is None or c.network_plugin.lower() in ("", "none"):
        return True
    return engine in (c.network_policy.lower(), c.network_dataplane.lower())


def _read_cluster(path: Path, snap: Snapshot) -> None:
    if not path.is_file():
        snap.missing[CLUSTER] = "not collected in this snapshot (no cluster.json)"
        return
    try:
        data = _read_json(path)
        if isinstance(data, list):  # `az aks list -o json`: fine when it holds one cluster
            if len(data) != 1:
                raise ValueError(
                    f"it holds a list of {len(data)} clusters (az aks list); save one with "
                    "`az aks show -g RG -n NAME -o json`"
                )
            data = data[0]
        snap.cluster = parse_cluster(data)
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        snap.missing[CLUSTER] = f"cluster.json could not be parsed: {exc}"
        return
    snap.read.append(CLUSTER)
    versions = path.parent / "versions.json"  # optional: az aks get-versions -l LOC -o json
    if versions.is_file():
        try:
            snap.kubernetes_versions = parse_versions(_read_json(versions))
            snap.read.append(VERSIONS)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            snap.missing[VERSIONS] = f"versions.json could not be parsed: {exc}"


def _read_public_ips(path: Path, snap: Snapshot) -> None:
    if not path.is_file():
        snap.missing[PUBLIC_IPS] = "not collected in this snapshot (no publicips.json)"
        return
    try:
        data = _read_json(path)
        if not isinstance(data, dict):
            raise ValueError("expected an object of resource id -> IP address")
        snap.public_ips = {str(k).lower(): str(v) for k, v in data.items()}
    except (OSError, ValueError) as exc:
        snap.missing[PUBLIC_IPS] = f"publicips.json could not be parsed: {exc}"
        return
    snap.read.append(PUBLIC_IPS)


class SnapshotSource:
    """A snapshot folder as a ClusterSource (see diagnostics.runner)."""

    def __init__(self, folder: str | Path, label: str | None = None) -> None:
        self.folder = Path(folder)
        self.label = label or self.folder.name

    def collect(self, sources: set[str], args: object = None, *, fresh: bool = False) -> Snapshot:
        return read_snapshot(self.folder, self.label, sources)
