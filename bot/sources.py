"""Which ClusterSource serves a cluster: a snapshot folder, or the live collectors.

A live cluster gets ONE `LiveSource` per process (per alias, configuration and settings): it
owns the cluster's collection cache, singleflight and circuit breaker, so every scenario and
requester within the cache TTL shares its reads. How Kubernetes is reached follows the
cluster's `kubernetes` block; an Azure cluster without one gets its user kubeconfig from ARM
and an AAD token (what `az aks get-credentials` + kubelogin do).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bot.config import ClusterConfig, Config, ConfigError
from diagnostics.collectors.arm import AzureTarget
from diagnostics.collectors.kubeauth import KubeConfigError, kubeconfig_contexts
from diagnostics.collectors.live import KubeAccess, LiveSource
from diagnostics.collectors.settings import LiveSettings, SettingsError
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.runner import ClusterSource


class SourceError(ConfigError):
    """The cluster cannot be read the way it is configured; the message says why."""


class LiveSources:
    """Keeps one LiveSource per key, least recently used first out."""

    def __init__(self, max_entries: int = 64) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._sources: OrderedDict[Any, LiveSource] = OrderedDict()

    def get(self, key: Any, make: Callable[[], LiveSource]) -> LiveSource:
        with self._lock:
            source = self._sources.get(key)
            if source is None:
                source = self._sources[key] = make()
                while len(self._sources) > self._max:
                    _, old = self._sources.popitem(last=False)
                    old.close()
            self._sources.move_to_end(key)
            return source

    def clear(self) -> None:
        with self._lock:
            for source in self._sources.values():
                source.close()
            self._sources.clear()


LIVE_SOURCES = LiveSources()


def live_settings() -> LiveSettings:
    try:
        return LiveSettings.from_env()
    except SettingsError as exc:
        raise SourceError(str(exc)) from None


def _access(alias: str, cluster: ClusterConfig, config: Config | None) -> KubeAccess:
    k = cluster.kubernetes
    if k.in_cluster:
        return KubeAccess("in-cluster")
    if k.aad or k.run_command:
        if not cluster.azure:
            way = "aad" if k.aad else "run_command"
            raise SourceError(
                f"cluster {alias!r}: kubernetes.{way} needs subscription, resource_group and name"
            )
        return KubeAccess("aad" if k.aad else "run-command")
    if k.kubeconfig or k.context:
        path = str(config.resolve(k.kubeconfig)) if config and k.kubeconfig else k.kubeconfig
        return KubeAccess("kubeconfig", path, k.context)
    return KubeAccess("aad" if cluster.azure else "none")


def source_for(
    alias: str,
    cluster: ClusterConfig,
    config: Config | None = None,
    *,
    registry: LiveSources | None = None,
) -> ClusterSource:
    if cluster.snapshot:
        folder = config.resolve(cluster.snapshot) if config else cluster.snapshot
        return SnapshotSource(folder, label=alias)
    access = _access(alias, cluster, config)
    azure = None
    if cluster.azure:
        assert cluster.subscription and cluster.resource_group and cluster.name
        azure = AzureTarget(cluster.subscription, cluster.resource_group, cluster.name)
    settings = live_settings()
    ttl = float(config.cache_ttl_seconds) if config else 300.0
    key = (alias, cluster.model_dump_json(), config.path if config else "", settings, ttl)

    def make() -> LiveSource:
        return LiveSource(alias, kube=access, azure=azure, settings=settings, cache_ttl=ttl)

    return (registry or LIVE_SOURCES).get(key, make)


def kubeconfig_source(label: str, path: str, context: str | None = None) -> LiveSource:
    """`--kubeconfig FILE [--context NAME]`: Kubernetes only; ARM-based checks are reported
    unavailable."""
    try:
        names, active = kubeconfig_contexts(path)
    except KubeConfigError as exc:
        raise SourceError(str(exc)) from None
    if context and context not in names:
        raise SourceError(
            f"kubeconfig {path}: no context {context!r} (it has: {', '.join(names) or 'none'})"
        )
    if not context and not active:
        raise SourceError(f"kubeconfig {path}: no current-context; pass --context NAME")
    return LiveSource(
        label, kube=KubeAccess("kubeconfig", path, context or active), settings=live_settings()
    )
