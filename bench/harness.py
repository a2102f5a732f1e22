"""What a benchmark row is, the sizes a run uses, and how results are printed and written
(`docs/benchmarks.md` for people, `docs/benchmarks.json` for tools).

A row holds one figure: its value, the baseline measured in the same run (when it has one),
their ratio, the target (from the benchmark issue) and whether it was met. Rows without a
target are informational (`met` is null). A row that could not be measured has no value and
`met: false`, and makes the whole run fail.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.procs import ROOT


@dataclass(frozen=True)
class Scale:
    """How big a run is. `FULL` is what `make bench` runs; `TOY` is for the smoke test."""

    name: str
    ack_commands: int = 200
    ack_concurrency: int = 20
    ack_bursts: int = 3
    storm: int = 50
    cached_runs: int = 5
    sizes: tuple[int, ...] = (1000, 5000)  # nodes; pods = nodes * pods_per_node
    pods_per_node: int = 30
    repeats: int = 3  # runs per figure of the big-cluster rows (the median is kept)
    fleet: int = 50
    fleet_nodes: int = 10
    fleet_latency_s: float = 0.2
    fleet_runs: int = 3
    offline_nodes: int = 5000
    offline_runs: int = 3
    kubectl_timeout_s: float = 480.0
    netpath_latency_s: float = 0.2
    netpath_runs: int = 5


FULL = Scale("full")
TOY = Scale(
    "toy",
    ack_commands=12,
    ack_concurrency=4,
    ack_bursts=1,
    storm=6,
    cached_runs=1,
    sizes=(4, 8),
    pods_per_node=5,
    repeats=1,
    fleet=3,
    fleet_nodes=2,
    fleet_latency_s=0.05,
    fleet_runs=1,
    offline_nodes=8,
    offline_runs=1,
    kubectl_timeout_s=60.0,
    netpath_latency_s=0.05,
    netpath_runs=1,
)


@dataclass
class Row:
    group: str
    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None  # None: informational
    notes: str = ""
    runs: int = 1
    samples: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def measured(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        ratio = self.ratio
        out["ratio"] = round(ratio, 3) if ratio is not None else None
        return out


def not_measured(group: str, name: str, unit: str, target: str, why: str) -> Row:
    return Row(group, name, None, unit, target=target, met=False, notes=f"NOT MEASURED: {why}")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def repeat(n: int, fn: Callable[[], float]) -> list[float]:
    return [fn() for _ in range(max(1, n))]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of the samples."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


# ---------------------------------------------------------------- the machine and the commit
def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------- output
def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if value else "0"
    return f"{text} {unit}".strip()


def _ratio(row: Row) -> str:
    r = row.ratio
    return "—" if r is None else f"{r:.2f}×"


def _met(row: Row) -> str:
    if not row.measured:
        return "NOT MEASURED"
    return {True: "yes", False: "**NO**", None: "info"}[row.met]


@dataclass
class Results:
    scale: Scale
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    methods: dict[str, str] = field(default_factory=dict)  # group -> how it is measured

    @property
    def unmeasured(self) -> list[Row]:
        return [r for r in self.rows if not r.measured]

    @property
    def missed(self) -> list[Row]:
        return [r for r in self.rows if r.measured and r.met is False]

    def document(self) -> dict[str, Any]:
        return {
            "commit": commit(),
            "time": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.time() - self.started, 1),
            "scale": self.scale.name,
            "machine": machine(),
            "rows": [r.to_dict() for r in self.rows],
            "methods": self.methods,
        }

    def table(self, markdown: bool = False) -> str:
        head = ["Row", "Value", "Baseline", "Ratio", "Target", "Met"]
        lines = []
        for r in self.rows:
            base = f"{_num(r.baseline, r.unit)} ({r.baseline_name})" if r.baseline_name else "—"
            lines.append(
                [
                    f"{r.group}: {r.name}",
                    _num(r.value, r.unit),
                    base,
                    _ratio(r),
                    r.target or "—",
                    _met(r),
                ]
            )
        if markdown:
            out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in lines]
            return "\n".join(out)
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:{w}}}" for w in widths)
        return "\n".join(
            [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
            + [fmt.format(*line) for line in lines]
        )

    def markdown(self, doc: dict[str, Any]) -> str:
        m = doc["machine"]
        parts = [
            "# Benchmarks",
            "",
            "Generated by `make bench` (`python -m bench`); do not edit by hand. Machine-readable: "
            "[benchmarks.json](benchmarks.json).",
            "",
            f"- Commit `{doc['commit']}`, {doc['time']}, scale `{doc['scale']}`, "
            f"the whole run took {doc['duration_s'] / 60:.1f} min.",
            f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, "
            f"Python {m['python']}.",
            "- Every figure is the median of `runs` runs (see the JSON); ratios divide by a "
            "baseline measured in the same run. `info` rows have no target of their own.",
            "",
            self.table(markdown=True),
            "",
            "## Notes",
            "",
        ]
        for r in self.rows:
            if r.notes:
                parts.append(f"- **{r.group}: {r.name}**: {r.notes}")
        parts += ["", "## How each group is measured", ""]
        for group, text in self.methods.items():
            parts += [f"### {group}", "", text.strip(), ""]
        return "\n".join(parts).rstrip() + "\n"

    def write(self, out_dir: Path) -> dict[str, Any]:
        doc = self.document()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "benchmarks.json").write_text(json.dumps(doc, indent=2) + "\n")
        (out_dir / "benchmarks.md").write_text(self.markdown(doc))
        return doc
