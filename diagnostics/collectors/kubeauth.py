"""Credentials for the Kubernetes API, loaded by the official client: a kubeconfig context
(exec plugins such as kubelogin, client certificates, tokens), the pod's in-cluster service
account, or the server and CA of the cluster user kubeconfig that ARM issues, with an AAD
token for the AKS server application instead of its kubelogin exec (as kubelogin would get).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.config.config_exception import ConfigException

from diagnostics.collectors.k8s import KubeApi
from diagnostics.collectors.settings import LiveSettings

MODES = ("kubeconfig", "in-cluster", "aad", "run-command", "none")


class KubeConfigError(Exception):
    """The kubeconfig (or in-cluster files) cannot give credentials; the message says why."""


@dataclass(frozen=True, slots=True)
class KubeAccess:
    """How to reach the Kubernetes API. `none`: ARM only."""

    mode: str = "kubeconfig"
    kubeconfig: str | None = None
    context: str | None = None
    token_file: str | None = None  # in-cluster: other mount paths than the standard ones
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"unknown Kubernetes access mode {self.mode!r}; one of {', '.join(MODES)}"
            )


# ---------------------------------------------------------------- credentials
def _configuration(pool: int) -> kclient.Configuration:
    cfg = kclient.Configuration()
    cfg.connection_pool_maxsize = max(pool, 4)
    cfg.retries = False  # our own retry loop decides, with Retry-After and bounds
    return cfg


def kubeconfig_contexts(path: str | None) -> tuple[list[str], str]:
    """(context names, the current one) of a kubeconfig; KubeConfigError if unreadable."""
    file = os.path.expanduser(path) if path else None
    if file and not os.path.isfile(file):
        raise KubeConfigError(f"kubeconfig {file}: no such file")
    try:
        contexts, active = kconfig.list_kube_config_contexts(config_file=file)
    except (ConfigException, OSError, ValueError) as exc:
        raise KubeConfigError(f"kubeconfig {file or '~/.kube/config'}: {exc}") from None
    return [c["name"] for c in contexts or ()], (active or {}).get("name", "")


def from_kubeconfig(
    path: str | None, context: str | None, pool: int = 4
) -> tuple[kclient.ApiClient, str]:
    """An ApiClient for a kubeconfig context (the current one by default), and its name."""
    names, active = kubeconfig_contexts(path)
    chosen = context or active
    if not chosen:
        raise KubeConfigError(f"kubeconfig {path}: no current-context; pass --context NAME")
    if chosen not in names:
        raise KubeConfigError(
            f"kubeconfig {path}: no context {chosen!r} (it has: {', '.join(names) or 'none'})"
        )
    cfg = _configuration(pool)
    try:
        kconfig.load_kube_config(
            config_file=os.path.expanduser(path) if path else None,
            context=chosen,
            client_configuration=cfg,
            persist_config=False,
        )
    except (ConfigException, OSError, ValueError) as exc:
        raise KubeConfigError(f"kubeconfig {path}, context {chosen}: {exc}") from None
    return kclient.ApiClient(cfg), chosen


def in_cluster(
    token_file: str | None = None, ca_file: str | None = None, pool: int = 4
) -> kclient.ApiClient:
    """An ApiClient from the pod's service account (token re-read as it rotates)."""
    from kubernetes.config import incluster_config as ic

    cfg = _configuration(pool)
    try:
        ic.InClusterConfigLoader(
            token_filename=token_file or ic.SERVICE_TOKEN_FILENAME,
            cert_filename=ca_file or ic.SERVICE_CERT_FILENAME,
        ).load_and_set(cfg)
    except (ConfigException, OSError) as exc:
        raise KubeConfigError(f"in-cluster service account: {exc}") from None
    return kclient.ApiClient(cfg)


def from_token(
    kubeconfig: dict[str, Any], token: Callable[[], str], pool: int = 4
) -> kclient.ApiClient:
    """An ApiClient for the server and CA of a kubeconfig (from ARM), authenticating with a
    bearer token from `token()` (an AAD token for the AKS server application) instead of the
    kubeconfig's exec plugin (kubelogin)."""
    doc = json.loads(json.dumps(kubeconfig))
    for user in doc.get("users") or ():
        user["user"] = {}
    cfg = _configuration(pool)
    try:
        kconfig.load_kube_config_from_dict(
            doc,
            client_configuration=cfg,
            persist_config=False,
            temp_file_path=tempfile.gettempdir(),
        )
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise KubeConfigError(f"the cluster's kubeconfig from Azure: {exc}") from None

    def refresh(c: kclient.Configuration) -> None:
        c.api_key = {"authorization": f"Bearer {token()}"}

    cfg.refresh_api_key_hook = refresh  # type: ignore[assignment]
    refresh(cfg)
    return kclient.ApiClient(cfg)


def open_api(client: kclient.ApiClient, s: LiveSettings) -> KubeApi:
    """The bounded reader over a client, with the settings' timeouts and retry bounds."""
    return KubeApi(
        client,
        timeout=s.k8s_timeout,
        connect_timeout=s.connect_timeout,
        page_size=s.page_size,
        retries=s.retries,
        backoff=s.backoff,
        max_retry_after=s.max_retry_after,
        cached_lists=s.cached_lists,
    )
