"""`make bench` (`python -m bench`): every benchmark row of the benchmark issue in one run,
printed as a table and written to `docs/benchmarks.md` and `docs/benchmarks.json`.

    python -m bench                       # the full run (about 15 minutes on 2 cores)
    python -m bench --scale toy --out DIR # every row at toy size, in seconds (the smoke test)
    python -m bench --only 3,5            # some groups only

Exit status: 0 when every row was measured (a missed target is reported in the table, the
files and at the end, but is a result, not an error); 1 when a row could not be measured.
Generated clusters and logs go to `.bench/` (gitignored); only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.harness import FULL, TOY, Results, Scale, not_measured
from bench.procs import ROOT
from bench.rows_bot import ACK, STORM, ack_latency, incident_storm
from bench.rows_cluster import BIG, OFFLINE, big_clusters, offline_engine
from bench.rows_fleet import FLEET, fleet_digest
from bench.rows_netpath import NETPATH, network_path

Group = Callable[[Scale, Path, Results], None]


def groups(cache: Path) -> dict[str, tuple[str, Group, str]]:
    """number -> (name, run, the unit of the row that stands for it when it fails)."""
    return {
        "1": (ACK, ack_latency, "ms"),
        "2": (STORM, incident_storm, "reads"),
        "3": (BIG, big_clusters, "s"),
        "4": (FLEET, fleet_digest, "s"),
        "5": (OFFLINE, lambda s, w, r: offline_engine(s, w, r, cache), "MB"),
        "6": (NETPATH, network_path, "s"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", choices=("full", "toy"), default="full")
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="where the two files go")
    p.add_argument("--only", default="1,2,3,4,5,6", help="groups to run, e.g. 3,5")
    p.add_argument("--work", type=Path, default=ROOT / ".bench", help="generated data and logs")
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    scale = FULL if ns.scale == "full" else TOY
    results = Results(scale)
    cache = ns.work.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    table = groups(cache)
    wanted = [g.strip() for g in ns.only.split(",") if g.strip()]
    unknown = [g for g in wanted if g not in table]
    if unknown:
        p.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    with tempfile.TemporaryDirectory(prefix="run-", dir=cache) as tmp:
        for key in wanted:
            name, run_group, unit = table[key]
            work = Path(tmp) / f"group{key}"
            work.mkdir()
            started = time.monotonic()
            print(f"[bench] {name} ...", flush=True)
            before = len(results.rows)
            try:
                run_group(scale, work, results)
            except Exception as exc:  # the row says why; the run goes on, then fails
                traceback.print_exc()
                del results.rows[before:]
                results.rows.append(
                    not_measured(
                        name, "the whole group", unit, "measured", f"{type(exc).__name__}: {exc}"
                    )
                )
            print(f"[bench] {name}: {time.monotonic() - started:.0f} s", flush=True)
    doc = results.write(ns.out)
    print()
    print(results.table())
    print(
        f"\nwrote {ns.out / 'benchmarks.md'} and {ns.out / 'benchmarks.json'} "
        f"({doc['duration_s'] / 60:.1f} min)"
    )
    for row in results.missed:
        print(
            f"TARGET MISSED: {row.group}: {row.name}: {row.value:.4g} {row.unit}, target "
            f"{row.target}"
        )
    if results.unmeasured:
        for row in results.unmeasured:
            print(f"NOT MEASURED: {row.group}: {row.name}: {row.notes}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
