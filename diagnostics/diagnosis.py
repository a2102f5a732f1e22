"""From a list of findings to a diagnosis: which findings are root causes, which are symptoms
they explain, and the one-sentence headline. Pure: findings and links in, causes out.

Causal links are declared next to the checks that raise the cause (an `EXPLAINS` table in each
check module, registered with the checks) as `Link(cause=CODE, symptom=CODE, when=PREDICATE)`:
"a full subnet explains allocation failures on the nodes behind it". The engine:

- links a cause finding to every problem (critical or warning) finding it explains; an info
  finding becomes a cause only when it explains a problem (a private cluster explains a probe
  timeout), otherwise it is context;
- follows chains (a explains b, b explains c: c is a symptom of a) and breaks cycles by
  severity;
- keeps every problem nothing explains as a cause of its own, and groups the repeats of one
  code across subjects (per node, per namespace) into one cause;
- orders causes: about the subject the user asked for first (`service NS/SVC`, `--node`,
  `--as`), then by the worst severity they account for, then by how much they explain.

Codes without links (new checks) are simply causes of their own: nothing here needs to know
every code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from diagnostics.model import Cause, Finding, Report, Severity

Predicate = Callable[[Finding, Finding], bool]
NO_PROBLEMS = "No problems found"


# ------------------------------------------------------------------ predicates for `when`
def always(cause: Finding, symptom: Finding) -> bool:
    """The cause explains every finding of the symptom's code (a stopped cluster)."""
    return True


def same_subject(cause: Finding, symptom: Finding) -> bool:
    """Both are about one subject (a leak and the allocation failures on the same node)."""
    return cause.subject == symptom.subject


def in_scope(cause: Finding, symptom: Finding) -> bool:
    """The symptom's subject is one the cause covers (`Finding.scope`): a full subnet and the
    nodes that draw their pod IPs from it."""
    return symptom.subject == cause.subject or symptom.subject in cause.scope


same_node_subnet = in_scope  # the name the pod-ip table reads best with


@dataclass(frozen=True, slots=True)
class Link:
    """`cause` explains `symptom` when `when(cause_finding, symptom_finding)`.

    Codes may end in `*` (`apiserver.probe.*`). `effect` says what the explained findings
    amount to, for the headline; `{n}` is how many there are ("pods on {n} node(s) cannot get
    an IP"), `{s}` an `s` when n is not 1."""

    cause: str
    symptom: str
    when: Predicate = always
    effect: str = ""

    def __post_init__(self) -> None:
        if not self.cause or not self.symptom:
            raise ValueError("a link needs a cause and a symptom code")

    def explains(self, cause: Finding, symptom: Finding) -> bool:
        return (
            cause is not symptom
            and fnmatchcase(cause.code, self.cause)
            and fnmatchcase(symptom.code, self.symptom)
            and self.when(cause, symptom)
        )


# ------------------------------------------------------------------ what the user asked about
def focus_subjects(arguments: Mapping[str, Any]) -> set[str]:
    """The subjects a run's arguments name (`service`, `node`, `as`, `from`), as findings spell
    them (a client IP is the `#client=IP` suffix of its subject)."""
    out: set[str] = {f"#client={ip}" for ip in arguments.get("from") or ()}
    if arguments.get("service"):
        out.add(f"service/{arguments['service']}")
    if arguments.get("node"):
        out.add(f"node/{arguments['node']}")
    if arguments.get("as"):
        out.add(f"ServiceAccount/{arguments['as']}")
    return out


def about(finding: Finding, subjects: set[str]) -> bool:
    """Whether the finding is about one of these subjects (or covers one)."""
    mine = (finding.subject, *finding.scope)
    return any(
        m in subjects or m.endswith(s) for m in mine for s in subjects if s[0] == "#"
    ) or any(m in subjects for m in mine)


def missing_subject(report: Report) -> Finding | None:
    """The finding that says the subject the user asked about does not exist (a usage error to
    tell the requester privately, not a warning to post)."""
    focus = focus_subjects(report.arguments)
    return next(
        (f for f in report.findings if f.code.endswith("not-found") and f.subject in focus),
        None,
    )


# ------------------------------------------------------------------ the engine
def _edges(findings: Sequence[Finding], links: Iterable[Link]) -> dict[str, list[str]]:
    """cause fingerprint -> the fingerprints of the problems it explains directly."""
    problems = [f for f in findings if f.is_problem]
    out: dict[str, list[str]] = {}
    for link in links:
        for cause in findings:
            if cause.severity is Severity.OK or not fnmatchcase(cause.code, link.cause):
                continue
            for symptom in problems:
                if link.explains(cause, symptom):
                    targets = out.setdefault(cause.fingerprint, [])
                    if symptom.fingerprint not in targets:
                        targets.append(symptom.fingerprint)
    return out


def _reach(start: str, edges: Mapping[str, list[str]]) -> list[str]:
    seen: list[str] = []
    stack = list(reversed(edges.get(start, ())))
    while stack:
        fp = stack.pop()
        if fp == start or fp in seen:
            continue
        seen.append(fp)
        stack.extend(reversed(edges.get(fp, ())))
    return seen


def _rank(f: Finding) -> tuple[int, str, str]:
    return (f.severity.rank, f.code, f.subject)


def diagnose(
    findings: Sequence[Finding], links: Iterable[Link], arguments: Mapping[str, Any] | None = None
) -> tuple[str, list[Cause]]:
    """(headline, causes) for these findings. Every problem finding is in some cause, as the
    cause itself or as a symptom; info findings only when they explain a problem."""
    links = list(links)
    by_fp = {f.fingerprint: f for f in findings}
    edges = _edges(findings, links)
    explained = {s for targets in edges.values() for s in targets}
    nodes = [f for f in sorted(findings, key=_rank) if f.is_problem or f.fingerprint in edges]
    roots = [f for f in nodes if f.fingerprint not in explained]
    covered = {f.fingerprint for f in roots}
    reached: dict[str, list[str]] = {}
    for root in roots:
        reached[root.fingerprint] = _reach(root.fingerprint, edges)
        covered.update(reached[root.fingerprint])
    for f in nodes:  # cycles nothing outside explains: the worst of each becomes a root
        if f.fingerprint not in covered:
            roots.append(f)
            reached[f.fingerprint] = _reach(f.fingerprint, edges)
            covered.add(f.fingerprint)
            covered.update(reached[f.fingerprint])
    causes = _group(roots, reached, by_fp, links)
    focus = focus_subjects(arguments or {})
    causes.sort(key=lambda c: _order(c, by_fp, focus))
    return headline(causes, by_fp), causes


def _group(
    roots: list[Finding],
    reached: Mapping[str, list[str]],
    by_fp: Mapping[str, Finding],
    links: list[Link],
) -> list[Cause]:
    """One cause per code among the roots (repeats across subjects become one)."""
    grouped: dict[str, list[Finding]] = {}
    for root in roots:
        grouped.setdefault(root.code, []).append(root)
    out = []
    for code, members in grouped.items():
        symptoms: list[str] = []
        for m in members:
            symptoms += [s for s in reached[m.fingerprint] if s not in symptoms]
        fps = tuple(m.fingerprint for m in sorted(members, key=_rank))
        out.append(Cause(code, fps, tuple(symptoms), _effect(code, symptoms, by_fp, links)))
    return out


def _effect(code: str, symptoms: list[str], by_fp: Mapping[str, Finding], links: list[Link]) -> str:
    counts: dict[str, int] = {}
    for fp in symptoms:
        counts[by_fp[fp].code] = counts.get(by_fp[fp].code, 0) + 1
    phrases = []
    for symptom_code, n in counts.items():
        link = next(
            (
                lk
                for lk in links
                if lk.effect
                and fnmatchcase(code, lk.cause)
                and fnmatchcase(symptom_code, lk.symptom)
            ),
            None,
        )
        if link is not None:
            phrases.append(link.effect.format(n=n, s="" if n == 1 else "s"))
    return "; ".join(dict.fromkeys(phrases))


def _order(
    cause: Cause, by_fp: Mapping[str, Finding], focus: set[str]
) -> tuple[bool, int, int, int, str]:
    own = [by_fp[fp] for fp in cause.fingerprints]
    everything = own + [by_fp[fp] for fp in cause.symptoms]
    return (
        not any(about(f, focus) for f in everything),
        min(f.severity.rank for f in everything),
        min(f.severity.rank for f in own),
        -len(cause.symptoms),
        cause.code,
    )


def cause_title(cause: Cause, by_fp: Mapping[str, Finding]) -> str:
    """The cause's title; repeats say how many subjects they cover."""
    first = by_fp[cause.fingerprints[0]]
    more = len(cause.fingerprints) - 1
    if not more:
        return first.title
    if "#client=" in first.subject:
        kind = "client"
    elif first.subject.startswith("/") or "/" not in first.subject:
        kind = "resource"
    else:
        kind = first.subject.split("/", 1)[0].lower()
    return f"{first.title} (and {more} more {kind}{'s' if more > 1 else ''})"


def headline(causes: Sequence[Cause], by_fp: Mapping[str, Finding]) -> str:
    """One sentence: the first cause, what it explains, and how many other causes there are."""
    problems = [
        c for c in causes if any(by_fp[fp].is_problem for fp in (*c.fingerprints, *c.symptoms))
    ]
    if not problems:
        return NO_PROBLEMS
    top = problems[0]
    text = cause_title(top, by_fp).rstrip(".")
    if top.effect:
        text += f" → {top.effect.split('; ')[0]}"
    if len(problems) > 1:
        others = len(problems) - 1
        text += f" (+{others} other problem{'s' if others > 1 else ''})"
    return text


def apply(report: Report, links: Iterable[Link]) -> Report:
    """Fill `report.headline` and `report.causes` from its findings (in place; returned)."""
    report.headline, report.causes = diagnose(report.findings, links, report.arguments)
    return report


def ensure(report: Report) -> Report:
    """A report without a diagnosis (cached before schema 2): every problem a cause of its own,
    so renderers always have causes to show."""
    if report.headline:
        return report
    return apply(report, ())


def context(report: Report) -> list[Finding]:
    """Info and ok findings that are in no cause: one context line, not a section each."""
    used = {fp for c in report.causes for fp in (*c.fingerprints, *c.symptoms)}
    return [f for f in report.sorted_findings() if f.fingerprint not in used]


__all__ = [
    "NO_PROBLEMS",
    "Link",
    "about",
    "always",
    "apply",
    "cause_title",
    "context",
    "diagnose",
    "ensure",
    "focus_subjects",
    "in_scope",
    "missing_subject",
    "same_node_subnet",
    "same_subject",
]
