"""The configuration file (docs/configuration.md): clusters, who may diagnose them, digests.

One YAML file, `--config FILE` or `AKSDIAG_CONFIG`. Validation errors name the file, the key
and the problem; an unknown key is an error, and so is a digest cron that can never fire.
Secrets never live here: they come from the environment only.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.crontab import crontab_trigger
from diagnostics.model import Severity

ENV_CONFIG = "AKSDIAG_CONFIG"
_ALIAS = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


class ConfigError(Exception):
    """The configuration file is missing or invalid; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KubernetesAccess(_Strict):
    """How to reach the cluster's Kubernetes API: exactly one way."""

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    aad: bool = False
    run_command: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> KubernetesAccess:
        ways = [bool(self.kubeconfig or self.context), self.in_cluster, self.aad, self.run_command]
        if sum(ways) > 1:
            raise ValueError(
                "choose one way to reach Kubernetes: kubeconfig (+ context), in_cluster, aad "
                "or run_command"
            )
        return self


class Allow(_Strict):
    channels: list[str] | None = None
    users: list[str] | None = None
    usergroups: list[str] | None = None


class ClusterConfig(_Strict):
    subscription: str | None = None
    resource_group: str | None = None
    name: str | None = None
    kubernetes: KubernetesAccess = Field(default_factory=KubernetesAccess)
    snapshot: str | None = None
    operator_networks: list[str] = Field(default_factory=list)
    allow: Allow | None = None

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "probe_pods" in data:
            raise ValueError(
                "`probe_pods` is not a setting: aksdiag never creates pods in a cluster (its "
                "probes run from the bot's own pod); remove the key"
            )
        return data

    @field_validator("operator_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for i, item in enumerate(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"item {i}: {item!r} is not an IP address or CIDR") from None
        return value

    @model_validator(mode="after")
    def _source(self) -> ClusterConfig:
        k8s = self.kubernetes
        if not (self.snapshot or self.azure or k8s.kubeconfig or k8s.context or k8s.in_cluster):
            raise ValueError(
                "a cluster needs `snapshot`, or `subscription`, `resource_group` and `name` "
                "(Azure), or a `kubernetes` kubeconfig/context/in_cluster"
            )
        return self

    @property
    def azure(self) -> bool:
        return bool(self.subscription and self.resource_group and self.name)


class DigestConfig(_Strict):
    name: str
    channel: str
    cron: str
    timezone: str = "UTC"
    clusters: list[str]
    min_severity: Severity = Severity.WARNING
    quiet_when_green: bool = False

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Lisbon)"
            ) from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(
                f"{value!r} is not a 5-field crontab expression (minute hour day month weekday)"
            )
        return value

    @model_validator(mode="after")
    def _fires(self) -> DigestConfig:
        try:  # the scheduler's own parse: a line it would refuse at `serve` fails here
            crontab_trigger(self.cron, self.timezone)
        except ValueError as exc:
            raise ValueError(f"({self.name}) cron {self.cron!r} can never fire: {exc}") from None
        return self

    @field_validator("min_severity", mode="before")
    @classmethod
    def _sev(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Config(_Strict):
    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)
    digests: list[DigestConfig] = Field(default_factory=list)
    cache_ttl_seconds: int = Field(default=300, ge=0, le=86400)
    _path: str = PrivateAttr(default="")  # the file it was read from (load_config)

    @field_validator("clusters")
    @classmethod
    def _aliases(cls, value: dict[str, ClusterConfig]) -> dict[str, ClusterConfig]:
        for alias in value:
            if not _ALIAS.fullmatch(alias):
                raise ValueError(f"cluster alias {alias!r} must be 1-63 letters, digits, - _ or .")
        return value

    @model_validator(mode="after")
    def _digest_refs(self) -> Config:
        seen: set[str] = set()
        for i, d in enumerate(self.digests):
            if d.name in seen:
                raise ValueError(f"digests[{i}]: the name {d.name!r} is used twice")
            seen.add(d.name)
            for c in d.clusters:
                if c not in self.clusters:
                    raise ValueError(f"digests[{i}] ({d.name}): unknown cluster {c!r}")
                allow = self.clusters[c].allow  # a digest must not show c where it may not be
                if allow and allow.channels is not None and d.channel not in allow.channels:
                    raise ValueError(
                        f"digests[{i}] ({d.name}): cluster {c!r} may not be shown in "
                        f"{d.channel}, which is not in its allow.channels"
                    )
                # everyone in the digest's channel reads it: a cluster restricted to users or
                # user groups may be posted only where its allow.channels says so explicitly
                if (
                    allow
                    and (allow.users is not None or allow.usergroups is not None)
                    and (allow.channels is None)
                ):
                    raise ValueError(
                        f"digests[{i}] ({d.name}): cluster {c!r} is restricted to "
                        "allow.users/allow.usergroups, and everyone in "
                        f"{d.channel} would read its findings; list {d.channel} in its "
                        "allow.channels to allow that, or drop it from the digest"
                    )
        return self

    @property
    def path(self) -> str:
        return self._path

    def cluster(self, alias: str) -> ClusterConfig | None:
        return self.clusters.get(alias)

    def digest(self, name: str) -> DigestConfig | None:
        return next((d for d in self.digests if d.name == name), None)

    def resolve(self, path: str) -> Path:
        """A path from the file, relative to the file's own folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() or not self.path else Path(self.path).parent / p


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the configuration; `path` None means `$AKSDIAG_CONFIG`."""
    chosen = str(path) if path else os.environ.get(ENV_CONFIG, "")
    if not chosen:
        raise ConfigError(
            f"no configuration file: pass --config FILE or set {ENV_CONFIG} "
            "(with --snapshot DIR or --kubeconfig FILE none is needed)"
        )
    file = Path(chosen)
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping with `clusters:`")
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_where(tuple(e['loc']))}: {_message(e)}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ConfigError(f"{file}: {problems}") from None
    config._path = str(file)
    return config


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (see docs/configuration.md for the keys that exist)"
    return str(error["msg"]).removeprefix("Value error, ")


def authorize(
    cluster: ClusterConfig, channel: str | None, user: str, usergroups: set[str] | frozenset[str]
) -> tuple[bool, str]:
    """The access rules of docs/configuration.md (`allow`) -> (allowed, the rule that decided,
    in words)."""
    allow = cluster.allow
    if allow is None:
        return True, "no allow block: open to everyone in the workspace"
    if allow.channels is not None and (channel or "") not in allow.channels:
        return False, "this channel is not in the cluster's allow.channels"
    if allow.users is None and allow.usergroups is None:
        return True, "channel allowed"
    if allow.users is not None and user in allow.users:
        return True, "user in allow.users"
    if allow.usergroups is not None and usergroups & set(allow.usergroups):
        return True, "user in one of allow.usergroups"
    return False, "you are not in the cluster's allow.users or allow.usergroups"
