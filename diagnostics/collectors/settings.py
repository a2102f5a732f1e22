"""Settings from the environment: the one loader for every `AKSDIAG_*` variable
(`load_settings`), and the settings of the live collectors: endpoints (sovereign clouds) and
the timeouts, caps and retry bounds that keep a diagnosis from hanging or becoming a load
generator. The bot's own sizes (bot.deps.Settings) load through the same function.

Every value comes from an environment variable with a default that fits a real cluster; tests
build `LiveSettings(...)` with short timeouts instead. docs/configuration.md lists them all (a
test keeps that list and the code in step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from diagnostics.redact import redact_text

AKS_AAD_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"  # the AKS AAD server (kubelogin)
AKS_AAD_SCOPE = f"{AKS_AAD_SERVER_APP}/.default"

_ENV = {
    "arm_endpoint": "AKSDIAG_ARM_ENDPOINT",
    "arm_scope": "AKSDIAG_ARM_SCOPE",
    "authority_host": "AZURE_AUTHORITY_HOST",
    "k8s_timeout": "AKSDIAG_K8S_TIMEOUT",
    "connect_timeout": "AKSDIAG_CONNECT_TIMEOUT",
    "arm_timeout": "AKSDIAG_ARM_TIMEOUT",
    "probe_timeout": "AKSDIAG_PROBE_TIMEOUT",
    "collect_timeout": "AKSDIAG_COLLECT_TIMEOUT",
    "concurrency": "AKSDIAG_CLUSTER_CONCURRENCY",
    "page_size": "AKSDIAG_PAGE_SIZE",
    "retries": "AKSDIAG_RETRIES",
    "backoff": "AKSDIAG_BACKOFF",
    "max_retry_after": "AKSDIAG_MAX_RETRY_AFTER",
    "cached_lists": "AKSDIAG_CACHED_LISTS",
    "breaker_threshold": "AKSDIAG_BREAKER_THRESHOLD",
    "breaker_cooldown": "AKSDIAG_BREAKER_COOLDOWN",
    "run_command_timeout": "AKSDIAG_RUN_COMMAND_TIMEOUT",
    "run_command_poll": "AKSDIAG_RUN_COMMAND_POLL",
    "logs_endpoint": "AKSDIAG_LOGS_ENDPOINT",
    "logs_timeout": "AKSDIAG_LOGS_TIMEOUT",
    "logs_max_rows": "AKSDIAG_LOGS_MAX_ROWS",
}


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used; the message names it."""


S = TypeVar("S")


def load_settings(
    cls: type[S], names: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The values of dataclass `cls`'s fields that the environment sets (`names`: field ->
    variable), parsed by the type of the field's default; unset or empty means the default.
    A value that is not a number, a boolean or is negative raises SettingsError naming the
    variable (never quoting a secret: values are redacted)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        name = names[f.name]
        raw = env.get(name, "").strip()
        if not raw:
            continue
        default = f.default
        try:
            if isinstance(default, bool):
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError
                values[f.name] = raw.lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw.rstrip("/") if raw.startswith("http") else raw
        except ValueError:
            kind = "true or false" if isinstance(default, bool) else "a number"
            raise SettingsError(f"{name} must be {kind}, not {redact_text(raw)!r}") from None
        value = values[f.name]
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise SettingsError(f"{name} must not be negative, not {raw!r}")
    return values


@dataclass(frozen=True)
class LiveSettings:
    arm_endpoint: str = "https://management.azure.com"
    arm_scope: str = ""  # default: "<arm_endpoint>/.default"
    authority_host: str = "https://login.microsoftonline.com"
    k8s_timeout: float = 10.0  # per Kubernetes API call (socket read)
    connect_timeout: float = 5.0  # TCP connect, Kubernetes and probe
    arm_timeout: float = 30.0  # per ARM call
    probe_timeout: float = 5.0  # each stage of the active probe
    collect_timeout: float = 60.0  # a whole collection, whatever is still running
    concurrency: int = 4  # reads in flight against one cluster
    page_size: int = 500  # `limit` of list pages
    retries: int = 3  # 429/5xx retries per call (Kubernetes and ARM)
    backoff: float = 0.5  # first backoff without Retry-After, doubled each time
    max_retry_after: float = 10.0  # longest wait a Retry-After may impose
    cached_lists: bool = True  # resourceVersion=0: served from the API server's watch cache
    breaker_threshold: int = 3  # consecutive 429/5xx failures that open the circuit
    breaker_cooldown: float = 60.0  # how long an open circuit answers from the last collection
    run_command_timeout: float = 180.0  # `az aks command invoke` style reads (private clusters)
    run_command_poll: float = 3.0
    logs_endpoint: str = "https://api.loganalytics.io"  # Log Analytics query API (sovereign clouds)
    logs_timeout: float = 30.0  # the audit query, server and client side
    logs_max_rows: int = 500  # aggregated audit rows read at most

    @property
    def scope(self) -> str:
        return self.arm_scope or f"{self.arm_endpoint.rstrip('/')}/.default"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LiveSettings:
        values = load_settings(cls, _ENV, environ)
        arm = str(values.get("arm_endpoint", cls.arm_endpoint))
        if not arm.startswith("https://"):
            raise SettingsError(
                f"{_ENV['arm_endpoint']} must be an https:// URL, not {redact_text(arm)!r}"
            )
        authority = str(values.get("authority_host", cls.authority_host))
        if "://" in authority and not authority.startswith("https://"):
            # azure-identity also takes a bare host (AzureAuthorityHosts.AZURE_GOVERNMENT)
            raise SettingsError(
                f"{_ENV['authority_host']} must be https, not {redact_text(authority)!r}"
            )
        return cls(**values)
