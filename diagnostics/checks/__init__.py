"""The checks, one module per scenario, collected into an explicit registry."""

from __future__ import annotations

from diagnostics.checks.base import Check, CheckContext, CheckRegistry, ScenarioArgs


def default_registry() -> CheckRegistry:
    """A fresh registry holding every built-in check (a duplicate code fails here)."""
    from diagnostics.checks import apiserver, netpath, nodeapi, nodeapi_public_ips, podip, service

    registry = CheckRegistry()
    for module in (apiserver, podip, service, nodeapi, nodeapi_public_ips, netpath):
        module.register(registry)
    return registry


__all__ = ["Check", "CheckContext", "CheckRegistry", "ScenarioArgs", "default_registry"]
