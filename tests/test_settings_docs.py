"""Every `AKSDIAG_*` variable the code reads is in docs/configuration.md, with its default, and
every one the documentation (or a manifest) names exists in the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from bot.deps import SETTINGS_ENV, Settings
from diagnostics.collectors.settings import _ENV as LIVE_ENV
from diagnostics.collectors.settings import LiveSettings

ROOT = Path(__file__).resolve().parent.parent
CODE = ("bot", "handlers", "diagnostics")
NAME = re.compile(r"AKSDIAG_[A-Z0-9]+(?:_[A-Z0-9]+)*")


def read_in_code() -> set[str]:
    """The names in string literals of the shipped packages (what os.environ is asked for)."""
    literal = re.compile(r"""["'](AKSDIAG_[A-Z0-9_]+)["']""")
    return {
        m.group(1)
        for package in CODE
        for path in (ROOT / package).rglob("*.py")
        for m in literal.finditer(path.read_text())
    }


def documented() -> dict[str, str]:
    """`AKSDIAG_X` -> its default, from the tables of docs/configuration.md."""
    rows = re.findall(
        r"^\| `(AKSDIAG_[A-Z0-9_]+)` \|([^|]*)\|",
        (ROOT / "docs/configuration.md").read_text(),
        re.M,
    )
    return {name: default.strip().strip("`") for name, default in rows}


def test_every_setting_the_code_reads_is_documented_and_every_documented_one_exists() -> None:
    code, docs = read_in_code(), set(documented())
    assert code, "no AKSDIAG_* name found in the code: the scan is broken"
    assert code - docs == set(), "read by the code but missing in docs/configuration.md"
    assert docs - code == set(), "documented in docs/configuration.md but read nowhere"


def test_no_document_or_manifest_names_a_setting_that_does_not_exist() -> None:
    code = read_in_code()
    places = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "deploy").rglob("*.y*ml")]
    places += [*(ROOT / "examples").glob("*.yaml")]
    for path in places:
        unknown = set(NAME.findall(path.read_text())) - code
        assert not unknown, f"{path.relative_to(ROOT)} names {sorted(unknown)}"


def test_documented_defaults_are_the_defaults() -> None:
    docs = documented()
    for cls, names in ((Settings, SETTINGS_ENV), (LiveSettings, LIVE_ENV)):
        assert {f.name for f in dataclasses.fields(cls)} == set(names), cls.__name__
        for field in dataclasses.fields(cls):
            default, text = field.default, docs.get(names[field.name])
            if text is None:  # not an AKSDIAG_* variable (AZURE_AUTHORITY_HOST)
                continue
            if isinstance(default, bool):
                assert text == str(default).lower(), names[field.name]
            elif isinstance(default, int | float):
                assert float(text) == default, names[field.name]
            elif default:
                assert text == default, names[field.name]
