"""Placeholder: checks for this scenario are being written."""

from __future__ import annotations

from diagnostics.checks.base import CheckRegistry


def register(registry: CheckRegistry) -> None:
    return None
