"""docs/findings.md, generated: every finding code (the public contract) with its scenario, the
severities it can carry, the check that raises it and the documentation it links to.

`make docs` (`python -m diagnostics.findings_doc > docs/findings.md`) writes it; a test fails
when the committed file is not what this prints. The registry gives the codes, their scenario
and their check; the severities, titles and links are read from the `Finding(...)` calls in the
check modules' source (no check is run), so a new code needs no second table.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from diagnostics.checks import default_registry
from diagnostics.checks.base import DOCS, Check, CheckRegistry
from diagnostics.model import Severity

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SCENARIOS = ("apiserver", "pod-ip", "service", "node-api", "health")
SCENARIO_ORDER = ("apiserver", "pod-ip", "service", "node-api", "health")
SEVERITY_ORDER = [
    s.value for s in (Severity.CRITICAL, Severity.WARNING, Severity.INFO, Severity.OK)
]


@dataclass
class Construction:
    """What one `Finding(code=...)` call in the source says about its code."""

    pattern: re.Pattern[str]
    severities: set[str] = field(default_factory=set)
    docs: set[str] = field(default_factory=set)
    titles: list[str] = field(default_factory=list)


def _template(node: ast.expr) -> str | None:
    """A string literal or f-string as text, each `{...}` shown as `…`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "…" for v in node.values)
    return None


def _severities(node: ast.expr) -> set[str]:
    return {
        n.attr.lower()
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "Severity"
    }


def _severities_in(scope: ast.AST) -> set[str]:
    """The severities a module mentions outside the `severity=` of its findings."""
    elsewhere = {
        id(n)
        for call in ast.walk(scope)
        if isinstance(call, ast.Call)
        for k in call.keywords
        if k.arg == "severity"
        for n in ast.walk(k.value)
    }
    return {
        n.attr.lower()
        for n in ast.walk(scope)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "Severity"
        and id(n) not in elsewhere
        and n.attr.isupper()
    }


def _docs(node: ast.expr, module: ast.AST | None = None) -> set[str]:
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and module is not None:  # a module constant (FAILED_DOCS)
            for value in _module_constant(module, n.id):
                out |= _docs(value)
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == "DOCS":
            key = n.slice
            if isinstance(key, ast.Constant) and key.value in DOCS:
                out.add(DOCS[key.value])
        elif (
            isinstance(n, ast.Constant)
            and isinstance(n.value, str)
            and n.value.startswith("https://")
        ):
            out.add(n.value)
    return out


def _module_constant(module: ast.AST, name: str) -> list[ast.expr]:
    """The values a module assigns to `name` at its top level."""
    body = module.body if isinstance(module, ast.Module) else []
    return [
        a.value
        for a in body
        if isinstance(a, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in a.targets)
    ]


def _assigned(scope: ast.AST, name: str) -> list[ast.expr]:
    """The values assigned to `name` in a function (a severity or title set in branches)."""
    return [
        a.value
        for a in ast.walk(scope)
        if isinstance(a, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in a.targets)
    ]


def _resolved(scope: ast.AST, node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.Name):  # a local (set in branches), else a module constant
        return _assigned(scope, node.id) or [node]
    return [node]


def constructions(paths: Iterable[Path]) -> list[Construction]:
    """Every call with a `code=` string (or f-string) keyword in these modules."""
    found: list[Construction] = []
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        scopes: list[ast.AST] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for scope in scopes:
            for call in ast.walk(scope):
                if isinstance(call, ast.Call) and (c := _construction(tree, scope, call)):
                    found.append(c)
    return found


def _construction(module: ast.AST, scope: ast.AST, call: ast.Call) -> Construction | None:
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    code = kw.get("code")
    if isinstance(code, ast.Name):  # a module constant (CODE = "...")
        code = next(iter(_module_constant(module, code.id)), code)
    text = _template(code) if code is not None else None
    if text is None:
        return None
    c = Construction(re.compile(".+".join(re.escape(p) for p in text.split("…"))))
    for value in _resolved(scope, kw["severity"]) if "severity" in kw else []:
        c.severities |= _severities(value)
        if not c.severities:  # computed (`min(...)` of a list): what the module could pick
            c.severities = _severities_in(module)
    for value in _resolved(scope, kw["docs"]) if "docs" in kw else []:
        c.docs |= _docs(value, module)
    for value in _resolved(scope, kw["title"]) if "title" in kw else []:
        if title := _template(value):
            c.titles.append(title)
    return c


def _summary(check: Check) -> str:
    doc = inspect.getdoc(check.fn) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip()
    return first


def observed(examples: Path = EXAMPLES_DIR) -> list[Construction]:
    """What the bundled examples really raise (every scenario over every folder): the
    severity, docs link and title of codes whose `Finding(...)` the source reading cannot pin
    (a code passed in as a parameter)."""
    from diagnostics.collectors.snapshot_dir import read_snapshot
    from diagnostics.runner import analyse

    seen: dict[str, Construction] = {}
    for folder in sorted(p for p in examples.glob("*") if (p / "k8s").is_dir()):
        snap = read_snapshot(folder, folder.name)
        for scenario in SCENARIOS:
            for f in analyse(scenario, snap).findings:
                c = seen.setdefault(f.code, Construction(re.compile(re.escape(f.code))))
                c.severities.add(f.severity.value)
                c.docs |= {f.docs} if f.docs else set()
                if not c.titles:
                    c.titles.append(f.title)
    return list(seen.values())


def evidence(found: list[Construction], seen: list[Construction], code: str) -> list[Construction]:
    """The constructions that raise `code`: read from the source, else seen in the examples."""
    matches = [c for c in found if c.pattern.fullmatch(code)]
    if any(c.severities for c in matches) and any(c.docs for c in matches):
        return matches
    return matches + [c for c in seen if c.pattern.fullmatch(code)]


def render(registry: CheckRegistry | None = None) -> str:
    registry = registry or default_registry()
    found = constructions(sorted(CHECKS_DIR.glob("*.py")))
    seen = observed()
    by_scenario: dict[str, list[Check]] = {}
    for check in registry.all():
        by_scenario.setdefault(check.scenario, []).append(check)
    order = sorted(
        by_scenario,
        key=lambda s: (
            s not in SCENARIO_ORDER,
            SCENARIO_ORDER.index(s) if s in SCENARIO_ORDER else 0,
            s,
        ),
    )
    lines = [
        "# Finding codes",
        "",
        "<!-- Generated by `make docs` (python -m diagnostics.findings_doc) from the check",
        "     registry and the checks' source. Do not edit: tests/test_findings_doc.py fails when",
        "     this file is not what the code says. -->",
        "",
        "Every finding carries one of these codes. They are the public contract: users silence,",
        "search and link by code, and the JSON report (`aksdiag run --format json`) carries them;",
        "codes are added, never renamed. Several findings may share a code, one per subject",
        "(node, service, namespace). Severity: `critical` (connectivity is broken now), `warning`",
        "(it is breaking, or will at the next scale-out or change), `info` (context, hygiene,",
        "what cannot be verified), `ok` (verified healthy). Where a code lists several, the",
        "evidence decides; the first is the worst it can be.",
        "",
        "The `health` scenario runs every passive check of the other four. Checks marked *live*",
        "need the bot's own probes or reviews and never run on a snapshot.",
    ]
    for scenario in order:
        lines += [
            "",
            f"## {scenario}",
            "",
            "| code | severity | title | raised by (check, what it reads) | docs |",
            "|---|---|---|---|---|",
        ]
        for check in by_scenario[scenario]:
            for code in check.codes:
                matches = evidence(found, seen, code)
                sev = set().union(*(c.severities for c in matches)) if matches else set()
                docs = sorted(set().union(*(c.docs for c in matches))) if matches else []
                titles = [t for c in matches for t in c.titles]
                severities = (
                    ", ".join(s for s in SEVERITY_ORDER if s in sev) or "(set by the check)"
                )
                what = f"`{check.name}`" + (" (*live*)" if check.live_only else "")
                if reads := _reads(check):
                    what += f" from {reads}"
                if summary := _summary(check):
                    what += f": {summary}"
                title = f"“{titles[0]}”" if titles else "—"
                links = " ".join(f"[{_label(u)}]({u})" for u in docs) or "—"
                lines.append(
                    f"| `{code}` | {severities} | {_cell(title)} | {_cell(what)} | {links} |"
                )
    return "\n".join(lines) + "\n"


def _reads(check: Check) -> str:
    """What the check cannot run without: `a, b` and `(c or d)` alternatives."""
    parts = [f"`{s}`" for s in check.needs]
    parts += (
        ["(" + " or ".join("+".join(f"`{s}`" for s in g) for g in check.needs_any) + ")"]
        if check.needs_any
        else []
    )
    return ", ".join(parts)


def _label(url: str) -> str:
    return next((k for k, v in DOCS.items() if v == url), url.rsplit("/", 1)[-1] or url)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
