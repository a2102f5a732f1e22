"""The public contract: the finding codes (docs/findings.md) exist, none is claimed twice, and
the bundled examples raise every code a snapshot can raise."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from diagnostics.checks import check_modules, default_registry
from diagnostics.checks.base import Check, CheckRegistry, DuplicateCode, UnknownSource
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.diagnosis import Link
from diagnostics.resources import CLUSTER, K8S_RESOURCES, PUBLIC_IPS
from diagnostics.runner import analyse

SPEC_CODES = {
    "cluster.stopped",
    "cluster.provisioning-failed",
    "apiserver.authorized-ip.client-excluded",
    "apiserver.authorized-ip.enabled",
    "apiserver.private-cluster",
    "apiserver.private-dns",
    "apiserver.probe.dns-failed",
    "apiserver.probe.tcp-timeout",
    "apiserver.probe.tcp-refused",
    "apiserver.probe.tls-failed",
    "apiserver.probe.http-error",
    "apiserver.probe.ok",
    "podip.allocation-failed",
    "podip.ip-leak",
    "podip.node-ip-exhausted",
    "podip.terminated-pods-backlog",
    "podip.subnet-capacity",
    "service.not-found",
    "service.no-selector",
    "service.selector-matches-no-pods",
    "service.no-ready-endpoints",
    "service.target-port-mismatch",
    "service.kube-proxy-unhealthy",
    "service.network-policy",
    "service.cni-errors",
    "service.dns",
    "nodeapi.kubernetes-service",
    "nodeapi.tunnel-unhealthy",
    "nodeapi.network-policy-egress",
    "nodeapi.authorized-ip.egress-excluded",
    "nodeapi.firewall-egress",
    "nodeapi.private-dns",
    "nodeapi.rbac-forbidden",
}
LIVE_ONLY = {c for c in SPEC_CODES if c.startswith("apiserver.probe.")}
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"

# Scenario arguments the examples are meant to be run with (README shows the same).
EXAMPLE_ARGS: dict[str, dict[str, Any]] = {
    "broken-apiserver": {"from_ips": ("198.51.100.7",)},
    "broken-nodeapi": {"as_account": ("shop", "orders-worker")},
}


def test_every_spec_code_is_registered():
    registered = set(default_registry().codes())
    assert SPEC_CODES - registered == set()


def test_a_duplicate_code_fails_at_registration():
    registry = CheckRegistry()
    registry.add(Check("a.one", "apiserver", ("x.code",), lambda ctx: ()))
    with pytest.raises(DuplicateCode):
        registry.add(Check("a.two", "apiserver", ("x.code",), lambda ctx: ()))


@pytest.mark.parametrize(
    "kw",
    [{"needs": ("pod",)}, {"uses": ("cluster", "endpointslice")}, {"needs_any": (("probes",),)}],
)
def test_a_source_name_that_does_not_exist_fails_when_the_check_is_declared(kw):
    """A typo would otherwise leave the check reported as "not collected" on every run."""
    with pytest.raises(UnknownSource, match="unknown source"):
        Check("a.typo", "apiserver", ("x.code",), lambda ctx: (), **kw)


def test_each_registry_is_fresh():
    a, b = default_registry(), default_registry()
    assert a is not b and a.codes() == b.codes()


def _raised_by_examples() -> set[str]:
    from diagnostics.checks.base import ScenarioArgs

    raised: set[str] = set()
    for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        snapshot = SnapshotSource(folder, folder.name).collect(
            {CLUSTER, PUBLIC_IPS, *K8S_RESOURCES}
        )
        args = ScenarioArgs(**EXAMPLE_ARGS.get(folder.name, {}))
        for scenario in ("health", "apiserver", "node-api"):
            raised |= {f.code for f in analyse(scenario, snapshot, args).findings}
        if folder.name == "broken-service":  # a service asked for by name that does not exist
            asked = ScenarioArgs(service=("shop", "webshop"))
            raised |= {f.code for f in analyse("service", snapshot, asked).findings}
    return raised


def test_example_commands_are_pasteable():
    """Every command parses as shell, and none holds a `<placeholder>` (a redirection when
    pasted): placeholders are plain upper-case words."""
    import re
    import shlex

    from diagnostics.checks.base import ScenarioArgs

    for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        snapshot = SnapshotSource(folder, folder.name).collect(
            {CLUSTER, PUBLIC_IPS, *K8S_RESOURCES}
        )
        args = ScenarioArgs(**EXAMPLE_ARGS.get(folder.name, {}))
        for scenario in ("health", "apiserver", "node-api"):
            for f in analyse(scenario, snapshot, args).findings:
                for step in f.remediation:
                    cmd = step.command or ""
                    body = cmd.split("<<'EOF'")[0]
                    assert not re.search(r"<[A-Za-z][\w -]*>", body), (f.code, cmd)
                    if "<<'EOF'" not in cmd:
                        shlex.split(cmd)


def test_examples_together_raise_every_snapshot_code():
    missing = (SPEC_CODES - LIVE_ONLY) - _raised_by_examples()
    assert missing == set(), f"no bundled example raises {sorted(missing)}"


# Registration: one style. Each check module declares `CHECKS` next to its functions (and its
# causal links as `EXPLAINS`); `check_modules()` lists every such module once.
CHECKS_PACKAGE = Path(__file__).resolve().parent.parent / "diagnostics" / "checks"
# Public check-shaped functions that are not checks of their own (another check calls them).
NOT_REGISTERED = {"diagnostics.checks.nodeapi_logs.audit_forbidden"}  # via nodeapi.rbac


def _check_shaped(module: ModuleType) -> list[str]:
    """The module's own public `fn(ctx: CheckContext) -> Iterator[Finding]` functions."""
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(obj) or obj.__module__ != module.__name__:
            continue
        params = list(inspect.signature(obj).parameters.values())
        returns = str(inspect.signature(obj).return_annotation)
        if len(params) == 1 and params[0].annotation == "CheckContext" and "Finding" in returns:
            out.append(f"{module.__name__}.{name}")
    return out


def _all_check_package_modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(CHECKS_PACKAGE)]))
    return [importlib.import_module(f"diagnostics.checks.{n}") for n in names]


def test_every_module_with_checks_is_listed_once():
    """A new module that declares checks, or defines a check function, but is not listed in
    `check_modules()` would silently never run."""
    listed = check_modules()
    assert len(set(listed)) == len(listed), "a module is listed twice"
    for module in _all_check_package_modules():
        declares = hasattr(module, "CHECKS") or hasattr(module, "EXPLAINS")
        if declares or _check_shaped(module):
            assert module in listed, f"{module.__name__} is not in check_modules()"
        assert not hasattr(module, "register"), f"{module.__name__}: declare CHECKS instead"
    for module in listed:
        assert hasattr(module, "CHECKS") or hasattr(module, "EXPLAINS"), module.__name__


def test_checks_are_declared_next_to_their_functions():
    registered = set()
    for module in check_modules():
        checks = getattr(module, "CHECKS", ())
        assert isinstance(checks, tuple), f"{module.__name__}.CHECKS must be a tuple"
        for check in checks:
            assert isinstance(check, Check), f"{module.__name__}.CHECKS holds {check!r}"
            assert check.fn.__module__ == module.__name__, (check.name, check.fn.__module__)
            registered.add(f"{check.fn.__module__}.{check.fn.__name__}")
        assert all(isinstance(link, Link) for link in getattr(module, "EXPLAINS", ()))
    shaped = {f for m in _all_check_package_modules() for f in _check_shaped(m)}
    assert shaped - registered == NOT_REGISTERED, "a check function is in no CHECKS"


def test_the_registry_holds_every_documented_code_and_no_other():
    documented = set(re.findall(r"^\| `([^`]+)` \|", (DOCS_DIR / "findings.md").read_text(), re.M))
    registry = default_registry()
    assert set(registry.codes()) == documented
    assert len(registry.all()) == sum(len(getattr(m, "CHECKS", ())) for m in check_modules())
    assert len(registry.links()) == sum(len(getattr(m, "EXPLAINS", ())) for m in check_modules())
