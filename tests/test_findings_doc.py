"""docs/findings.md, the reference of the public finding codes, is what the code says."""

from __future__ import annotations

from pathlib import Path

from diagnostics.checks import default_registry
from diagnostics.findings_doc import CHECKS_DIR, constructions, evidence, observed, render

ROOT = Path(__file__).resolve().parent.parent


def test_the_committed_reference_is_current() -> None:
    committed = (ROOT / "docs" / "findings.md").read_text()
    assert committed == render(), "docs/findings.md is stale: run `make docs` and commit it"


def test_every_code_is_raised_somewhere_with_a_severity_and_a_docs_link() -> None:
    """The generator reads `Finding(code=..., severity=..., docs=...)` calls, and what the
    bundled examples raise; a code neither shows would appear without its severity or link."""
    found = constructions(sorted(CHECKS_DIR.glob("*.py")))
    seen = observed()
    for code in default_registry().codes():
        matches = evidence(found, seen, code)
        assert matches, f"{code}: neither a Finding(code=...) nor an example raises it"
        assert any(c.severities for c in matches), f"{code}: no Severity.X found for it"
        assert any(c.docs for c in matches), f"{code}: no docs= link found for it"
