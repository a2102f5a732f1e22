"""Run a scenario: decide what to collect, collect once, run the checks, build the report.

The runner never lets a check or a source crash a run: a source that could not be read and a
check that failed become `unavailable` entries that say why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from diagnostics.checks import default_registry
from diagnostics.checks.base import Check, CheckContext, CheckRegistry, ScenarioArgs
from diagnostics.checks.netpath_path import annotate as annotate_network_path
from diagnostics.diagnosis import apply as diagnose
from diagnostics.model import Finding, Report, Step, Unavailable
from diagnostics.redact import redact_text
from diagnostics.snapshot import Snapshot

log = logging.getLogger(__name__)

PASSIVE_SCENARIOS = ("apiserver", "pod-ip", "service", "node-api")


class ClusterSource(Protocol):
    """Anything that can produce a Snapshot: a folder, or the live collectors."""

    label: str

    def collect(
        self, sources: set[str], args: ScenarioArgs, *, fresh: bool = False
    ) -> Snapshot: ...


def checks_for(scenario: str, registry: CheckRegistry, args: ScenarioArgs) -> list[Check]:
    if scenario == "health":
        checks = [c for s in PASSIVE_SCENARIOS for c in registry.for_scenario(s) if not c.live_only]
    else:
        checks = registry.for_scenario(scenario)
    return [c.for_args(args) for c in checks if c.applies is None or c.applies(args)]


def sources_for(checks: Iterable[Check]) -> set[str]:
    out: set[str] = set()
    for c in checks:
        out |= c.sources()
    return out


def analyse(
    scenario: str,
    snapshot: Snapshot,
    args: ScenarioArgs | None = None,
    registry: CheckRegistry | None = None,
    operator_networks: tuple[str, ...] = (),
) -> Report:
    """Run the scenario's checks over a snapshot already collected."""
    args = args or ScenarioArgs()
    registry = registry or default_registry()
    checks = checks_for(scenario, registry, args)
    started = time.perf_counter()
    report = Report(
        cluster=snapshot.label,
        scenario=scenario,
        arguments=args.to_dict(),
        source=snapshot.path,
        collected=sorted(snapshot.read),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data_as_of=(
            datetime.fromtimestamp(snapshot.data_time, UTC).isoformat(timespec="seconds")
            if snapshot.data_time is not None
            else None
        ),
    )
    blocked: dict[str, list[str]] = {}
    for check in checks:
        missing = check.missing(snapshot.has)
        if missing:
            for s in missing:
                blocked.setdefault(s, []).extend(check.codes)
            continue
        ctx = CheckContext(snapshot, args, operator_networks, check.scenario)
        try:
            found = list(check.fn(ctx))
        except Exception as exc:  # one broken check must not sink the run
            log.exception("check %s failed", check.name)
            report.unavailable.append(
                Unavailable(
                    f"check {check.name}",
                    redact_text(f"internal error: {type(exc).__name__}: {exc}"),
                    check.codes,
                )
            )
            continue
        report.findings.extend(_stamp(found, check.scenario))
    relevant: set[str] = set()
    for check in checks:
        relevant |= check.relevant(snapshot.has)
    for source, reason in snapshot.missing.items():
        if source in relevant or source == "snapshot.json":
            blocked_codes = tuple(dict.fromkeys(blocked.get(source, ())))
            report.unavailable.append(Unavailable(source, redact_text(reason), blocked_codes))
    for source, codes in blocked.items():
        if source not in snapshot.missing:
            report.unavailable.append(
                Unavailable(source, "not collected", tuple(dict.fromkeys(codes)))
            )
    annotate_network_path(report, snapshot, scenario)
    diagnose(report, registry.links())
    report.timings_ms["analyse"] = round((time.perf_counter() - started) * 1000, 1)
    return report


def _stamp(findings: list[Finding], scenario: str) -> list[Finding]:
    """Findings with their scenario, and every text a person reads redacted: the last net
    under cluster text that reached a title, evidence or a command (labels, names, messages)."""
    return [
        replace(
            f,
            scenario=f.scenario or scenario,
            title=redact_text(f.title),
            evidence=tuple(redact_text(e) for e in f.evidence),
            cause=redact_text(f.cause),
            remediation=tuple(
                Step(redact_text(s.text), redact_text(s.command) if s.command else s.command)
                for s in f.remediation
            ),
        )
        for f in findings
    ]


def run(
    scenario: str,
    source: ClusterSource,
    args: ScenarioArgs | None = None,
    registry: CheckRegistry | None = None,
    operator_networks: tuple[str, ...] = (),
    *,
    fresh: bool = False,
) -> Report:
    """Collect what the scenario needs from `source` (`fresh`: no cached reads), then analyse it."""
    args = args or ScenarioArgs()
    registry = registry or default_registry()
    started = time.perf_counter()
    wanted = sources_for(checks_for(scenario, registry, args))
    snapshot = source.collect(wanted, args, fresh=fresh)
    collected_ms = (time.perf_counter() - started) * 1000
    report = analyse(scenario, snapshot, args, registry, operator_networks)
    report.timings_ms["collect"] = round(collected_ms, 1)
    report.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 1)
    return report
