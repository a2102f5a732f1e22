"""What a newcomer runs first: `make demo`, and `make check` (what CI runs). The README, the
Makefile and .ci/run say the same thing, and `make demo` works offline on the examples."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def make_dry_run(target: str) -> list[str]:
    """The commands `make TARGET` runs on a fresh clone (`-B`: as if nothing were installed
    yet; `-n`: printed, not run, so nothing is installed)."""
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def test_readme_opens_with_make_demo_and_the_check_ci_runs() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make check"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert [line for line in ci.splitlines() if line.startswith("make")] == ["make check"]


def test_make_check_runs_lint_types_layering_and_the_tests() -> None:
    commands = make_dry_run("check")
    for tool in (
        "ruff check .",
        "ruff format --check .",
        "bin/mypy",
        "bin/lint-imports",
        "-m pytest",
    ):
        assert any(tool in c for c in commands), f"make check does not run {tool}"
    lint = max(i for i, c in enumerate(commands) if "lint-imports" in c)
    assert lint < next(i for i, c in enumerate(commands) if "-m pytest" in c)  # seconds first
    installs = [c for c in commands if "pip install" in c and "-e '.[dev]'" in c]
    assert installs and all("-c constraints.txt" in c for c in installs)
    # the real-az/kubectl parse of every printed command runs in `make check`, never skipped
    assert "check: export AKSDIAG_COMMAND_CHECK := 1" in (ROOT / "Makefile").read_text()


def test_make_demo_diagnoses_every_bundled_cluster_offline() -> None:
    (demo,) = [c for c in make_dry_run("demo") if "bot.demo" in c]
    assert demo.endswith("-m bot.demo")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "SLACK_", "AKSDIAG_", "AZURE_"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.demo"],
        cwd=ROOT,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    aliases = yaml.safe_load((ROOT / "examples" / "aksdiag.yaml").read_text())["clusters"]
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert set(aliases) <= set(rows)
    assert "critical" not in rows["healthy"] and "warning" not in rows["healthy"]
    assert "apiserver.authorized-ip.client-excluded" in rows["broken-apiserver"]
    assert (
        "answered cached from Redis" in done.stdout and "the cluster was read once" in done.stdout
    )


def test_license_is_the_mit_text_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_the_formatter_output_is_the_style() -> None:
    """`ruff format --check` (make lint) enforces the format; no file opts out of it."""
    marker = "fmt: " + "skip"  # spelled apart so this file does not match itself
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in ("bot", "handlers", "diagnostics", "tests", "bench", "tools")
        for path in sorted((ROOT / top).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if marker in line or ("fmt: " + "off") in line
    ]
    assert not found, f"formatter opt-outs: {found}"
