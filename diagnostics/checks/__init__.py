"""The checks, one module per scenario or concern, collected into an explicit registry.

Each check module declares its checks next to their functions, as a module constant
`CHECKS: tuple[Check, ...]`, and its causal links as `EXPLAINS` (diagnostics.diagnosis).
`CHECK_MODULES` lists every such module once, in registration order (the order the checks run
and the findings doc lists them); tests/test_contract.py fails when a module is missing.
"""

from __future__ import annotations

from types import ModuleType

from diagnostics.checks.base import Check, CheckContext, CheckRegistry, ScenarioArgs


def check_modules() -> tuple[ModuleType, ...]:
    """Every module that declares `CHECKS` or `EXPLAINS`, in registration order."""
    from diagnostics.checks import (
        apiserver,
        cluster_state,
        netpath_dns,
        nodeapi,
        nodeapi_account,
        nodeapi_dns,
        nodeapi_egress,
        nodeapi_logs,
        nodeapi_logs_off,
        nodeapi_path,
        nodeapi_policy,
        nodeapi_public_ips,
        nodeapi_rbac,
        podip,
        podip_backlog,
        podip_failures,
        podip_subnet,
        service,
        service_azure,
        service_backends,
        service_dns,
        service_lookup,
        service_network,
        service_proxy,
    )

    return (
        # apiserver
        cluster_state,
        apiserver,
        # pod-ip
        podip,
        podip_failures,
        podip_backlog,
        podip_subnet,
        # service
        service,
        service_lookup,
        service_backends,
        service_proxy,
        service_network,
        service_dns,
        # node-api
        nodeapi,
        nodeapi_egress,
        nodeapi_dns,
        nodeapi_policy,
        nodeapi_account,
        nodeapi_rbac,
        nodeapi_logs,
        nodeapi_logs_off,
        nodeapi_public_ips,
        # the Azure network path, in node-api, apiserver and service
        nodeapi_path,
        netpath_dns,
        service_azure,
    )


def default_registry() -> CheckRegistry:
    """A fresh registry holding every built-in check (a duplicate code fails here)."""
    registry = CheckRegistry()
    for module in check_modules():
        for check in getattr(module, "CHECKS", ()):
            registry.add(check)
        registry.explains(getattr(module, "EXPLAINS", ()))
    return registry


__all__ = [
    "Check",
    "CheckContext",
    "CheckRegistry",
    "ScenarioArgs",
    "check_modules",
    "default_registry",
]
