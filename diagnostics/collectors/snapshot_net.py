"""The Azure network path in a snapshot folder: `arm/*.json` (each file one resource or a list,
as `az network ... show|list -o json` prints them or as ARM REST bodies) and
`egress-endpoints.json` (`az aks egress-endpoints list -o json`). Unknown resource types are
skipped; an unreadable file is named in the snapshot's `missing`, never raised."""

from __future__ import annotations

import json
from pathlib import Path

from diagnostics.netpath.model import AzureNetwork
from diagnostics.netpath.parse import add_resource, parse_egress_endpoints, resources_in
from diagnostics.resources import EGRESS_ENDPOINTS, NETWORK, PRIVATE_DNS
from diagnostics.snapshot import Snapshot


def _load(path: Path) -> object:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return json.loads(raw.decode("utf-16"))
    return json.loads(raw.decode("utf-8-sig"))


def read_private_dns(root: Path, snap: Snapshot) -> None:
    """The private DNS part (apiserver): nothing to read for a public cluster or a cluster with
    `privateDNSZone: none`; else arm/, unless the whole network path was read already."""
    c = snap.cluster
    if c is None:
        snap.missing[PRIVATE_DNS] = "needs cluster.json, which could not be read"
        return
    zone = c.private_dns_zone.strip().lower()
    if snap.network is None and c.private_cluster and zone != "none":
        read_network(root, snap, PRIVATE_DNS)
        return
    snap.read.append(PRIVATE_DNS)


def read_network(root: Path, snap: Snapshot, source: str = NETWORK) -> None:
    folder = root / "arm"
    if not folder.is_dir():
        snap.missing[source] = "not collected in this snapshot (no arm/ folder)"
        return
    net = AzureNetwork()
    bad: list[str] = []
    for path in sorted(folder.glob("*.json")):
        try:
            for obj in resources_in(_load(path)):
                add_resource(net, obj)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            bad.append(f"arm/{path.name}: {exc}")
    for rid, why in _recorded_errors(folder).items():
        net.unreadable[rid.lower()] = why
    if bad:
        snap.missing[source] = "could not parse " + "; ".join(bad)
    elif not (
        net.vnets or net.subnets or net.nsgs or net.route_tables or net.zones or net.unreadable
    ):
        # arm/ may hold only other items (diagnostic settings): the path was not collected
        snap.missing[source] = "not collected in this snapshot (no network resources in arm/)"
        return
    snap.network = net
    snap.read.append(source)


def _recorded_errors(folder: Path) -> dict[str, str]:
    """`arm/_unreadable.json`, written by capture: what could not be read live, and why."""
    path = folder / "_unreadable.json"
    try:
        doc = _load(path) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def read_egress_endpoints(root: Path, snap: Snapshot) -> None:
    path = root / "egress-endpoints.json"
    if not path.is_file():
        snap.missing[EGRESS_ENDPOINTS] = "not collected in this snapshot (no egress-endpoints.json)"
        return
    try:
        snap.egress_endpoints = parse_egress_endpoints(_load(path))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        snap.missing[EGRESS_ENDPOINTS] = f"egress-endpoints.json could not be parsed: {exc}"
        return
    snap.read.append(EGRESS_ENDPOINTS)
