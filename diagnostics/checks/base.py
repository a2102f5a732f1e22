"""What a check author needs: the Check type, its context, the explicit registry, and helpers
for docs links and shell-quoted commands. Checks are pure: snapshot in, findings out."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from diagnostics.diagnosis import Link
from diagnostics.model import Finding
from diagnostics.resources import ALL_SOURCES
from diagnostics.snapshot import Snapshot

ARTICLE = "https://learn.microsoft.com/en-us/azure/architecture/operator-guides/aks/troubleshoot-network-aks"
DOCS = {
    "apiserver": f"{ARTICLE}#client-is-unable-to-reach-the-api-server",
    "pod-ip": f"{ARTICLE}#pod-fails-to-allocate-the-ip-address",
    "service": f"{ARTICLE}#service-not-accessible-within-pods",
    "node-api": f"{ARTICLE}#nodes-cant-reach-the-api-server",
    "authorized-ip": "https://learn.microsoft.com/en-us/azure/aks/api-server-authorized-ip-ranges",
    "private-cluster": "https://learn.microsoft.com/en-us/azure/aks/private-clusters",
    "private-dns": "https://learn.microsoft.com/en-us/azure/aks/private-clusters#hub-and-spoke-with-custom-dns",
    "egress": "https://learn.microsoft.com/en-us/azure/aks/outbound-rules-control-egress",
    "network-policy": "https://learn.microsoft.com/en-us/azure/aks/use-network-policies",
    "rbac": "https://learn.microsoft.com/en-us/azure/aks/concepts-identity",
    "start-stop": "https://learn.microsoft.com/en-us/azure/aks/start-stop-cluster",
    "ip-planning": "https://learn.microsoft.com/en-us/azure/aks/azure-cni-overlay",
    "dynamic-ip": "https://learn.microsoft.com/en-us/azure/aks/configure-azure-cni-dynamic-ip-allocation",
    "gc": "https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-garbage-collection",
    "apiserver-logs": "https://learn.microsoft.com/en-us/azure/aks/monitor-aks-reference#resource-logs",
}


def q(value: object) -> str:
    """Shell-quote one value for a copy-pasteable command."""
    return shlex.quote(str(value))


@dataclass(frozen=True, slots=True)
class ScenarioArgs:
    """The arguments of a scenario run, already validated (see diagnostics.scenarios)."""

    from_ips: tuple[str, ...] = ()
    node: str | None = None
    service: tuple[str, str] | None = None  # (namespace, name)
    as_account: tuple[str, str] | None = None  # (namespace, service account)
    since: int | None = None  # seconds of control-plane logs to read (default: the last hour)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.from_ips:
            out["from"] = list(self.from_ips)
        if self.node:
            out["node"] = self.node
        if self.service:
            out["service"] = "/".join(self.service)
        if self.as_account:
            out["as"] = "/".join(self.as_account)
        if self.since:
            out["since"] = duration_text(self.since)
        return out


def duration_text(seconds: int) -> str:
    """3600 -> "1h", 5400 -> "90m", 86400 -> "1d"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class CheckContext:
    """What a check sees: the snapshot, the run's arguments, and the cluster's identity for
    commands (resource group and name, or placeholders when ARM was not read)."""

    snapshot: Snapshot
    args: ScenarioArgs = field(default_factory=ScenarioArgs)
    operator_networks: tuple[str, ...] = ()
    scenario: str = ""

    @property
    def rg(self) -> str:
        c = self.snapshot.cluster
        return q(c.resource_group) if c and c.resource_group else "RESOURCE_GROUP"

    @property
    def name(self) -> str:
        c = self.snapshot.cluster
        return q(c.name) if c and c.name else q(self.snapshot.label)

    def az_aks(self, verb: str, extra: str = "") -> str:
        """`az aks VERB --resource-group RG --name NAME EXTRA`, values quoted."""
        cmd = f"az aks {verb} --resource-group {self.rg} --name {self.name}"
        return f"{cmd} {extra}".rstrip()


CheckFn = Callable[[CheckContext], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Check:
    """A pure function plus what it needs. `needs`: sources without which it cannot run (the
    runner reports them unavailable instead). `uses`: sources it reads when present."""

    name: str
    scenario: str
    codes: tuple[str, ...]
    fn: CheckFn
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    live_only: bool = False  # active probes and reviews that a snapshot cannot answer
    # Alternatives: the check runs when every source of at least one group was read.
    needs_any: tuple[tuple[str, ...], ...] = ()
    # Whether the check applies to these arguments at all (e.g. only with --as).
    applies: Callable[[ScenarioArgs], bool] | None = None
    # What the check reads may depend on the arguments (e.g. --as): the check for this run.
    adapt: Callable[[Check, ScenarioArgs], Check] | None = None

    def for_args(self, args: ScenarioArgs) -> Check:
        return self.adapt(replace(self, adapt=None), args) if self.adapt else self

    def __post_init__(self) -> None:
        """A source name that does not exist would leave the check "not collected" forever:
        fail at import instead."""
        for kind, names in (
            ("needs", self.needs),
            ("uses", self.uses),
            ("needs_any", tuple(s for g in self.needs_any for s in g)),
        ):
            if isinstance(names, str):
                raise UnknownSource(f"check {self.name!r}: {kind} must be a tuple, not {names!r}")
            unknown = [s for s in names if s not in ALL_SOURCES]
            if unknown:
                raise UnknownSource(
                    f"check {self.name!r}: unknown source {', '.join(map(repr, unknown))} in "
                    f"{kind}; known sources (diagnostics/resources.py): {', '.join(ALL_SOURCES)}"
                )

    def sources(self) -> set[str]:
        out = {*self.needs, *self.uses}
        for group in self.needs_any:
            out.update(group)
        return out

    def relevant(self, has: Callable[[str], bool]) -> set[str]:
        """The sources worth reporting when unreadable: of alternatives, only the group that
        was used (or all of them, when none could be)."""
        out = {*self.needs, *self.uses}
        used = next((g for g in self.needs_any if all(has(s) for s in g)), None)
        for group in self.needs_any if used is None else (used,):
            out.update(group)
        return out

    def missing(self, has: Callable[[str], bool]) -> list[str]:
        """The sources whose absence keeps this check from running (empty: it can run)."""
        lacking = [s for s in self.needs if not has(s)]
        if self.needs_any and not any(all(has(s) for s in g) for g in self.needs_any):
            lacking += [s for g in self.needs_any for s in g if not has(s)]
        return list(dict.fromkeys(lacking))


class DuplicateCode(Exception):
    """Two checks claim one finding code, or one check name is registered twice."""


class UnknownSource(ValueError):
    """A check names a source (`needs`, `uses`) that no collector provides."""


class CheckRegistry:
    """An explicit registry: build one with `default_registry()`; tests may build their own."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self._codes: dict[str, str] = {}
        self._links: list[Link] = []

    def explains(self, links: Iterable[Link]) -> None:
        """Register causal links (a check module's `EXPLAINS` table, diagnostics.diagnosis)."""
        self._links.extend(links)

    def links(self) -> list[Link]:
        return list(self._links)

    def add(self, check: Check) -> Check:
        if check.name in self._checks:
            raise DuplicateCode(f"check {check.name!r} registered twice")
        for code in check.codes:
            owner = self._codes.get(code)
            if owner is not None:
                raise DuplicateCode(f"finding code {code!r} claimed by {owner} and {check.name}")
        for code in check.codes:
            self._codes[code] = check.name
        self._checks[check.name] = check
        return check

    def for_scenario(self, scenario: str) -> list[Check]:
        return [c for c in self._checks.values() if c.scenario == scenario]

    def all(self) -> list[Check]:
        return list(self._checks.values())

    def codes(self) -> dict[str, str]:
        """Every registered finding code -> the check that raises it."""
        return dict(self._codes)
