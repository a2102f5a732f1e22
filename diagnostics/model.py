"""The report model every check, renderer and sender shares: Severity, Step, Finding, Cause,
Report.

The JSON form (`Report.to_dict`) is a public contract (SPEC §3): keep its keys stable and bump
`SCHEMA_VERSION` when a key changes meaning. Version 2 added `headline`, `causes` (the findings
grouped as root causes with the symptoms they explain, see diagnostics.diagnosis), `scope` on a
finding, and made `verdict` ignore info and ok findings (a healthy cluster is `ok`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 2
PROBLEMS = frozenset({"critical", "warning"})


class Severity(StrEnum):
    """How bad a finding is; `rank` orders them worst first."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    OK = "ok"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r}; choose one of {choices}") from None

    def at_least(self, other: Severity) -> bool:
        """True when self is as severe as `other` or worse."""
        return self.rank <= other.rank


_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2, Severity.OK: 3}


@dataclass(frozen=True, slots=True)
class Step:
    """One remediation step: an explanation and, where one exists, a copy-pasteable command."""

    text: str
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "command": self.command}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a check observed about one subject.

    `subject` names what the finding is about (an Azure resource id, or `kind/namespace/name`);
    together with `code` it makes the fingerprint that digests and silences key on.
    """

    code: str
    severity: Severity
    title: str
    subject: str
    evidence: tuple[str, ...] = ()
    cause: str = ""
    remediation: tuple[Step, ...] = ()
    docs: str = ""
    scenario: str = ""
    # Other subjects this finding covers (e.g. the nodes behind a full subnet): what causal
    # links (diagnostics.diagnosis) match symptoms against.
    scope: tuple[str, ...] = ()

    @property
    def is_problem(self) -> bool:
        """Critical or warning: something to act on (info and ok are context)."""
        return self.severity.value in PROBLEMS

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.code}\x00{self.subject}".encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "title": self.title,
            "subject": self.subject,
            "scenario": self.scenario,
            "evidence": list(self.evidence),
            "cause": self.cause,
            "remediation": [s.to_dict() for s in self.remediation],
            "docs": self.docs,
            "fingerprint": self.fingerprint,
            "scope": list(self.scope),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            code=data["code"],
            severity=Severity(data["severity"]),
            title=data["title"],
            subject=data.get("subject", ""),
            evidence=tuple(data.get("evidence", ())),
            cause=data.get("cause", ""),
            remediation=tuple(
                Step(s["text"], s.get("command")) for s in data.get("remediation", ())
            ),
            docs=data.get("docs", ""),
            scenario=data.get("scenario", ""),
            scope=tuple(data.get("scope", ())),
        )


@dataclass(frozen=True, slots=True)
class Cause:
    """One entry of the diagnosis: a root cause (one finding, or the repeats of one code across
    subjects) and the findings it explains, by fingerprint. A problem no cause explains is a
    cause of its own, with no symptoms."""

    code: str
    fingerprints: tuple[str, ...]
    symptoms: tuple[str, ...] = ()
    effect: str = ""  # one phrase: what the symptoms amount to ("pods on 2 nodes cannot get an IP")

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "fingerprints": list(self.fingerprints),
            "symptoms": list(self.symptoms),
            "effect": self.effect,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cause:
        return cls(
            data["code"],
            tuple(data.get("fingerprints", ())),
            tuple(data.get("symptoms", ())),
            data.get("effect", ""),
        )


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A data source that could not be read, why, and which checks it kept from running."""

    source: str
    reason: str
    checks: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "checks": list(self.checks)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unavailable:
        return cls(data["source"], data["reason"], tuple(data.get("checks", ())))

    def sentence(self) -> str:
        what = ", ".join(self.checks) if self.checks else self.source
        return f"could not check {what} because {self.source}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Hop:
    """One hop of the network path to the API server (node subnet, NSG, route, firewall,
    DNS, API server) and what it does to the traffic: `pass`, `blocked` or `unknown`."""

    name: str
    kind: str
    verdict: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hop:
        return cls(data["name"], data["kind"], data["verdict"], data.get("detail", ""))


@dataclass(slots=True)
class Report:
    """What one scenario run found about one cluster."""

    cluster: str
    scenario: str
    arguments: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)
    collected: list[str] = field(default_factory=list)
    source: str = ""
    started_at: str = ""
    data_as_of: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    headline: str = ""  # one sentence: the root cause and its scope (diagnostics.diagnosis)
    causes: list[Cause] = field(default_factory=list)
    path: list[Hop] = field(default_factory=list)  # the network path, hop by hop (node-api)

    @property
    def worst(self) -> Severity:
        """The worst severity among the findings (OK when there is none)."""
        return min((f.severity for f in self.findings), key=lambda s: s.rank, default=Severity.OK)

    @property
    def verdict(self) -> Severity:
        """What the answer says: the worst problem, or OK when there is only context."""
        worst = self.worst
        return worst if worst.value in PROBLEMS else Severity.OK

    def by_fingerprint(self) -> dict[str, Finding]:
        return {f.fingerprint: f for f in self.findings}

    def problems(self) -> list[Finding]:
        return [f for f in self.sorted_findings() if f.is_problem]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.severity.rank, f.code, f.subject))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "cluster": self.cluster,
            "scenario": self.scenario,
            "arguments": self.arguments,
            "source": self.source,
            "started_at": self.started_at,
            "data_as_of": self.data_as_of,
            "timings_ms": self.timings_ms,
            "verdict": self.verdict.value,
            "headline": self.headline,
            "counts": self.counts(),
            "collected": self.collected,
            "unavailable": [u.to_dict() for u in self.unavailable],
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "causes": [c.to_dict() for c in self.causes],
            "path": [h.to_dict() for h in self.path],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        return cls(
            cluster=data["cluster"],
            scenario=data["scenario"],
            arguments=dict(data.get("arguments", {})),
            findings=[Finding.from_dict(f) for f in data.get("findings", ())],
            unavailable=[Unavailable.from_dict(u) for u in data.get("unavailable", ())],
            collected=list(data.get("collected", ())),
            source=data.get("source", ""),
            started_at=data.get("started_at", ""),
            data_as_of=data.get("data_as_of"),
            timings_ms=dict(data.get("timings_ms", {})),
            headline=data.get("headline", ""),
            causes=[Cause.from_dict(c) for c in data.get("causes", ())],
            path=[Hop.from_dict(h) for h in data.get("path", ())],
        )
