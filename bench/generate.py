"""Synthetic big clusters for the benchmarks, in the real kubectl / az shapes.

`write_cluster(folder, nodes, pods_per_node)` writes a snapshot folder; `cluster_objects(...)`
yields the same objects for the Kubernetes API emulator. Deterministic: the same arguments give
the same cluster.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from builders import az_cluster, endpointslice, event, nnc, node, pod, service  # noqa: E402

NAMESPACES = 50


def _node_name(i: int) -> str:
    return f"aks-pool{i // 1000:02d}-38214757-vmss{i % 1000:06x}"


def objects(nodes: int, pods_per_node: int = 30) -> dict[str, Iterator[dict[str, Any]]]:
    """Generators of objects per resource name."""

    def gen_nodes() -> Iterator[dict[str, Any]]:
        for i in range(nodes):
            yield node(_node_name(i), pool=f"pool{i // 1000:02d}", max_pods=pods_per_node + 10,
                       ip=f"10.{224 + i // 65536}.{(i // 256) % 256}.{i % 256}")  # fmt: skip

    def gen_pods() -> Iterator[dict[str, Any]]:
        for i in range(nodes):
            n = _node_name(i)
            for j in range(pods_per_node):
                k = i * pods_per_node + j
                ns = f"team-{k % NAMESPACES:02d}"
                app = f"app-{(k // 7) % 500:03d}"
                yield pod(
                    f"{app}-7d9f8b6c4-{k:06x}", ns, node=n,
                    ip=f"10.{(k >> 16) % 256 + 16}.{(k >> 8) % 256}.{k % 256}",
                    labels={"app": app, "pod-template-hash": "7d9f8b6c4", "tier": "web"},
                    ports=[("http", 8080)], owner=("ReplicaSet", f"{app}-7d9f8b6c4"),
                )  # fmt: skip

    def gen_services() -> Iterator[dict[str, Any]]:
        for ns_i in range(NAMESPACES):
            for a in range(0, 500, 25):
                yield service(f"app-{a:03d}", f"team-{ns_i:02d}", selector={"app": f"app-{a:03d}"},
                              ports=[("http", 80, "http")], cluster_ip=f"10.0.{ns_i}.{a % 250}")  # fmt: skip

    def gen_slices() -> Iterator[dict[str, Any]]:
        for ns_i in range(NAMESPACES):
            for a in range(0, 500, 25):
                yield endpointslice(f"app-{a:03d}", f"team-{ns_i:02d}",
                                    endpoints=[(f"10.16.0.{e}", True, f"app-{a:03d}-x{e}") for e in range(3)])  # fmt: skip

    def gen_events() -> Iterator[dict[str, Any]]:
        for i in range(0, nodes, 50):
            yield event("FailedCreatePodSandBox",
                        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network "
                        "for sandbox: plugin type=\"azure-vnet\" failed (add): IPAM Invoker Add failed with error: "
                        "Failed to get IP address from CNS with error: %w: AllocateIPConfig failed: not enough IPs "
                        "available, waiting on Azure CNS to allocate more",
                        name=f"app-001-7d9f8b6c4-{i:06x}", namespace="team-01", count=12,
                        host=_node_name(i), first="2026-11-20T07:00:00Z", last="2026-11-20T07:59:00Z")  # fmt: skip
        for i in range(nodes * 2):
            yield event("Scheduled", "Successfully assigned pod", type="Normal",
                        name=f"p{i}", namespace="team-02")  # fmt: skip

    def gen_nncs() -> Iterator[dict[str, Any]]:
        for i in range(nodes):
            yield nnc(
                _node_name(i),
                requested=pods_per_node + 16,
                assigned=pods_per_node + 16,
                ips=pods_per_node + 16,
            )

    return {
        "nodes": gen_nodes(),
        "pods": gen_pods(),
        "services": gen_services(),
        "endpointslices": gen_slices(),
        "events": gen_events(),
        "nodenetworkconfigs": gen_nncs(),
    }


def write_cluster(folder: Path, nodes: int, pods_per_node: int = 30) -> Path:
    """Write a snapshot folder, streaming each list so memory stays flat."""
    (folder / "k8s").mkdir(parents=True, exist_ok=True)
    (folder / "cluster.json").write_text(json.dumps(az_cluster(name="big", rg="rg-big")))
    (folder / "snapshot.json").write_text(json.dumps({"capturedAt": "2026-11-20T08:00:00Z"}))
    for name, items in objects(nodes, pods_per_node).items():
        with (folder / "k8s" / f"{name}.json").open("w") as fh:
            fh.write('{\n    "apiVersion": "v1",\n    "items": [\n')
            first = True
            for item in items:
                if not first:
                    fh.write(",\n")
                fh.write(json.dumps(item, indent=4))
                first = False
            fh.write(
                '\n    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n'
            )
    return folder


if __name__ == "__main__":
    write_cluster(
        Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 30
    )
