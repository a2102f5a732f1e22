"""How aksdiag reaches one cluster: the Azure credential (DefaultAzureCredential unless one is
given), the ARM client, the Kubernetes reader (kubeconfig, in-cluster, or the ARM user
kubeconfig with an AAD token) and the run command reader for private clusters. Each is built
once, on first use; a failure to get Kubernetes credentials is remembered briefly so that one
collection does not ask ARM or re-read a kubeconfig for every list.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from diagnostics.collectors.arm import ArmClient, AzureTarget
from diagnostics.collectors.k8s import KubeApi, ReadError
from diagnostics.collectors.kubeauth import (
    KubeAccess,
    KubeConfigError,
    from_kubeconfig,
    from_token,
    in_cluster,
    open_api,
)
from diagnostics.collectors.logs import LogsReader
from diagnostics.collectors.runcommand import RunCommandReader
from diagnostics.collectors.settings import AKS_AAD_SCOPE, LiveSettings

API_RETRY_AFTER = 10.0  # after credentials failed, reuse that answer this long


class ClusterClients:
    def __init__(
        self,
        kube: KubeAccess,
        azure: AzureTarget | None,
        settings: LiveSettings,
        credential: Any = None,
        connection_verify: str | bool | None = None,
    ) -> None:
        if kube.mode in ("aad", "run-command") and azure is None:
            raise ValueError(f"Kubernetes access {kube.mode!r} needs the cluster's Azure identity")
        self.kube, self.azure, self.settings = kube, azure, settings
        self._credential = credential
        self._verify = connection_verify
        self._lock = threading.Lock()
        self._api_lock = threading.Lock()
        self._api: KubeApi | None = None
        self._api_error: tuple[float, ReadError] | None = None
        self._arm: ArmClient | None = None
        self._logs: LogsReader | None = None
        self._context = ""

    @property
    def path(self) -> str:
        """How the cluster is read, for the report: "kubeconfig ctx X", "in-cluster", "aad",
        "run-command", or "arm" (Azure only)."""
        mode = self.kube.mode
        if mode == "kubeconfig":
            return f"kubeconfig ctx {self._context or self.kube.context or '(current)'}"
        return {"none": "arm"}.get(mode, mode)

    def credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential(
                    authority=self.settings.authority_host,
                    exclude_interactive_browser_credential=True,
                )
            return self._credential

    def arm(self) -> ArmClient:
        assert self.azure is not None
        cred = self.credential()
        with self._lock:
            if self._arm is None:
                s = self.settings
                self._arm = ArmClient(
                    cred,
                    self.azure.subscription,
                    endpoint=s.arm_endpoint,
                    scope=s.scope,
                    timeout=s.arm_timeout,
                    retry_total=s.retries,
                    connection_verify=self._verify,
                    polling_interval=s.run_command_poll,
                )
            return self._arm

    def logs(self) -> LogsReader:
        """The Log Analytics reader (the audit log), built once."""
        cred = self.credential()
        with self._lock:
            if self._logs is None:
                self._logs = LogsReader(cred, self.settings, self._verify)
            return self._logs

    def aad_token(self) -> str:
        """A token for the AKS AAD server application (what kubelogin gets)."""
        return str(self.credential().get_token(AKS_AAD_SCOPE).token)

    def kube_api(self) -> KubeApi:
        """The Kubernetes reader, built once; ReadError (kind `config`) when no credentials."""
        with self._api_lock:
            if self._api is None:
                failed = self._api_error
                if failed and time.monotonic() - failed[0] < API_RETRY_AFTER:
                    raise failed[1]
                try:
                    self._api = open_api(self._kube_client(), self.settings)
                except ReadError as exc:
                    self._api_error = (time.monotonic(), exc)
                    raise
            return self._api

    def _kube_client(self) -> Any:
        k, pool = self.kube, self.settings.concurrency
        try:
            if k.mode == "kubeconfig":
                client, self._context = from_kubeconfig(k.kubeconfig, k.context, pool)
                return client
            if k.mode == "in-cluster":
                return in_cluster(k.token_file, k.ca_file, pool)
            if k.mode == "aad":
                assert self.azure is not None
                doc = self.arm().user_kubeconfig(self.azure.resource_group, self.azure.name)
                return from_token(doc, self.aad_token, pool)
        except KubeConfigError as exc:
            raise ReadError(str(exc), "config") from None
        except ReadError as exc:
            raise ReadError(
                f"could not get cluster credentials from Azure: {exc.reason}", "config"
            ) from None
        raise ReadError(f"no direct Kubernetes API access ({self.path})", "config")

    def run_command_reader(self, aad: Callable[[], bool] = lambda: False) -> RunCommandReader:
        """Lists through ARM run command; `aad()` says whether to pass an AAD cluster token."""
        assert self.azure is not None
        return RunCommandReader(
            self.arm(),
            self.azure.resource_group,
            self.azure.name,
            cluster_token=lambda: self.aad_token() if aad() else None,
            timeout=self.settings.run_command_timeout,
        )
