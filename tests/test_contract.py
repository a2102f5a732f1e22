"""The public contract: the finding codes (docs/findings.md) exist, none is claimed twice, and
the bundled examples raise every code a snapshot can raise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from diagnostics.checks import default_registry
from diagnostics.checks.base import Check, CheckRegistry, DuplicateCode, UnknownSource
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.resources import CLUSTER, K8S_RESOURCES, PUBLIC_IPS
from diagnostics.runner import analyse

SPEC_CODES = {
    "cluster.stopped", "cluster.provisioning-failed",
    "apiserver.authorized-ip.client-excluded", "apiserver.authorized-ip.enabled",
    "apiserver.private-cluster", "apiserver.private-dns",
    "apiserver.probe.dns-failed", "apiserver.probe.tcp-timeout", "apiserver.probe.tcp-refused",
    "apiserver.probe.tls-failed", "apiserver.probe.http-error", "apiserver.probe.ok",
    "podip.allocation-failed", "podip.ip-leak", "podip.node-ip-exhausted",
    "podip.terminated-pods-backlog", "podip.subnet-capacity",
    "service.not-found", "service.no-selector", "service.selector-matches-no-pods",
    "service.no-ready-endpoints", "service.target-port-mismatch", "service.kube-proxy-unhealthy",
    "service.network-policy", "service.cni-errors", "service.dns",
    "nodeapi.kubernetes-service", "nodeapi.tunnel-unhealthy", "nodeapi.network-policy-egress",
    "nodeapi.authorized-ip.egress-excluded", "nodeapi.firewall-egress", "nodeapi.private-dns",
    "nodeapi.rbac-forbidden",
}  # fmt: skip
LIVE_ONLY = {c for c in SPEC_CODES if c.startswith("apiserver.probe.")}
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

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
