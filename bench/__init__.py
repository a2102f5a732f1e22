"""Benchmarks (`make bench`): see bench/__main__.py.

The benchmarks reuse the test suite's emulators and JSON builders, so `tests/` goes on
`sys.path` when this package is imported."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
