"""`LiveSource`: a live cluster as a ClusterSource (see diagnostics.runner).

It reads what a scenario needs, and only that: the ManagedCluster and egress IPs from Azure
Resource Manager, Kubernetes lists (through the API, or through ARM run command for private
clusters), the active probe and SubjectAccessReviews. Reads of one cluster run concurrently up
to a cap; every read goes through the cluster's collection cache, so scenarios and requesters
within the TTL share one read of each list; repeated 429/5xx open a circuit breaker that
answers from the last collection and says how old it is. Whatever could not be read lands in
`Snapshot.missing` with a reason, never as an exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import replace
from functools import partial
from typing import Any

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors import access, armnet, logs
from diagnostics.collectors.arm import AzureTarget
from diagnostics.collectors.cache import CircuitBreaker, CollectionCache, Entry
from diagnostics.collectors.clients import ClusterClients
from diagnostics.collectors.k8s import ListRequest, ReadError, gc_paused, secs
from diagnostics.collectors.kubeauth import KubeAccess
from diagnostics.collectors.probe import probe, probe_url
from diagnostics.collectors.settings import LiveSettings
from diagnostics.projection import PROJECTORS
from diagnostics.resources import (
    ACCESS_REVIEW,
    ALL_SOURCES,
    AUDIT_LOG,
    CLUSTER,
    DIAGNOSTIC_SETTINGS,
    EGRESS_ENDPOINTS,
    K8S_RESOURCES,
    NETWORK,
    POLICY_KINDS,
    PRIVATE_DNS,
    PROBE,
    PUBLIC_IPS,
    VERSIONS,
)
from diagnostics.snapshot import ClusterInfo, Snapshot

log = logging.getLogger(__name__)
NO_AZURE = (
    "not read: this source has Kubernetes access only (--kubeconfig); Azure Resource Manager "
    "is not configured for it (give the cluster subscription, resource_group and name)"
)
PROBE_TTL = 15.0
NEEDS_CLUSTER = (
    PUBLIC_IPS,
    NETWORK,
    EGRESS_ENDPOINTS,
    PRIVATE_DNS,
    VERSIONS,
)  # ARM reads that start from the cluster


def list_requests(
    sources: set[str], args: ScenarioArgs, full_pods: bool = False
) -> list[ListRequest]:
    """The lists a set of sources needs, narrowed where it cuts volume: Warning events only,
    and one node's pods for `--node` (unless the full pod list is at hand anyway)."""
    out = []
    for name in K8S_RESOURCES:
        if name not in sources:
            continue
        selector = ""
        if name == "events":
            selector = "type=Warning"
        elif name == "pods" and args.node and not full_pods:
            selector = f"spec.nodeName={args.node}"
        out.append(ListRequest(name, selector))
    return out


class LiveSource:
    """One live cluster. Keep one instance per cluster: it owns the cache and the breaker."""

    def __init__(
        self,
        label: str,
        *,
        kube: KubeAccess | None = None,
        azure: AzureTarget | None = None,
        settings: LiveSettings | None = None,
        credential: Any = None,
        cache_ttl: float = 300.0,
        connection_verify: str | bool | None = None,
    ) -> None:
        self.label = label
        self.settings = settings or LiveSettings()
        self.clients = ClusterClients(
            kube or KubeAccess("none"), azure, self.settings, credential, connection_verify
        )
        self.kube, self.azure = self.clients.kube, azure
        self.cache = CollectionCache(cache_ttl)
        self.breaker = CircuitBreaker(
            self.settings.breaker_threshold, self.settings.breaker_cooldown
        )
        self._pool = ThreadPoolExecutor(
            max(1, self.settings.concurrency), thread_name_prefix="aksdiag-read"
        )
        # the network path's reads wait on ARM in rounds: they must not queue behind the lists
        self._arm_pool = ThreadPoolExecutor(2, thread_name_prefix="aksdiag-netpath")

    @property
    def path(self) -> str:
        return self.clients.path

    def _cluster_is_aad(self) -> bool:
        entry = self.cache.last("cluster")
        return entry is not None and isinstance(entry.value, ClusterInfo) and entry.value.aad

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._arm_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ reads
    def _start(
        self,
        key: str,
        fn: Callable[[], Any],
        ttl: float | None = None,
        breaker: bool = False,
        pool: ThreadPoolExecutor | None = None,
    ) -> Future[Entry]:
        futures, mine = self.cache.claim([key], ttl)
        if mine:
            (pool or self._pool).submit(self._fetch, key, fn, breaker)
        return futures[key]

    def _fetch(self, key: str, fn: Callable[[], Any], breaker: bool) -> None:
        try:
            value = fn()
        except ReadError as exc:
            if breaker and exc.overload:
                self.breaker.failure()
            self.cache.resolve(key, error=exc)
            return
        except Exception as exc:  # a bug must end as a reason in the report, not a hang
            log.exception("reading %s of %s failed", key, self.label)
            self.cache.resolve(key, error=ReadError(f"internal error: {type(exc).__name__}: {exc}"))
            return
        if breaker:
            self.breaker.success()
        self.cache.resolve(key, value)

    def _list_task(self, req: ListRequest, down: list[ReadError]) -> Callable[[], Any]:
        def task() -> Any:
            if down:
                raise down[0]
            try:
                return self.clients.kube_api().list_records(req)
            except ReadError as exc:
                if exc.unreachable or exc.kind == "config":
                    down.append(exc)  # later lists of this collection fail fast
                raise

        return task

    def _start_lists(
        self, reqs: list[ListRequest], cluster: Future[Entry] | None, ttl: float | None = None
    ) -> dict[str, Future[Entry]]:
        if self.kube.mode != "run-command":
            down: list[ReadError] = []
            return {
                r.key: self._start(r.key, self._list_task(r, down), ttl, breaker=True) for r in reqs
            }
        futures, mine = self.cache.claim([r.key for r in reqs], ttl)
        if mine:
            batch = [r for r in reqs if r.key in mine]
            self._pool.submit(self._run_command_batch, batch, cluster)
        return futures

    def _run_command_batch(self, batch: list[ListRequest], cluster: Future[Entry] | None) -> None:
        try:
            if cluster is not None:  # the cluster token depends on whether the cluster is AAD
                wait_all([cluster], timeout=self.settings.arm_timeout)
            results: dict[str, Any] = self.clients.run_command_reader(self._cluster_is_aad).read(
                batch
            )
        except ReadError as exc:
            results = {r.key: exc for r in batch}
            if exc.overload:
                self.breaker.failure()
        except Exception as exc:
            log.exception("run command read of %s failed", self.label)
            results = {
                r.key: ReadError(f"internal error: {type(exc).__name__}: {exc}") for r in batch
            }
        else:
            self.breaker.success()
        for req in batch:
            value = results.get(req.key)
            if isinstance(value, ReadError):
                self.cache.resolve(req.key, error=value)
                continue
            project = PROJECTORS[req.resource]
            with gc_paused():
                self.cache.resolve(req.key, [project(item) for item in value or ()])

    def _read_cluster(self) -> ClusterInfo:
        assert self.azure is not None
        info, _body = self.clients.arm().cluster(self.azure.resource_group, self.azure.name)
        return info

    def _probe(self, cluster: ClusterInfo | None) -> Any:
        if self.kube.mode in ("kubeconfig", "in-cluster", "aad"):
            try:
                api = self.clients.kube_api()
            except ReadError:
                api = None
            if api is not None:
                return probe_url(
                    api.server, timeout=self.settings.probe_timeout, ca_file=api.ca_file
                )
        host = cluster.fqdn or cluster.private_fqdn if cluster else ""
        if not host:
            raise ReadError(
                "no API server address to probe (neither a kubeconfig server nor the cluster FQDN)"
            )
        return probe(host, 443, timeout=self.settings.probe_timeout)

    # ------------------------------------------------------------ collect
    def collect(
        self, sources: set[str], args: ScenarioArgs | None = None, *, fresh: bool = False
    ) -> Snapshot:
        """Read what `sources` names. `fresh` (Re-run) ignores every cached read, though it
        still joins a read already in flight (docs/caching.md)."""
        args = args or ScenarioArgs()
        ttl = 0.0 if fresh else None
        deadline = time.monotonic() + self.settings.collect_timeout
        wanted = set(sources)
        pending: dict[str, tuple[str, Future[Entry]]] = {}  # snapshot source -> (key, future)
        missing: dict[str, str] = {}
        stale: dict[str, Entry] = {}

        cluster_fut = None
        if self.azure is None:
            missing.update({src: NO_AZURE for src in (CLUSTER, *NEEDS_CLUSTER) if src in wanted})
        elif wanted & {CLUSTER, *NEEDS_CLUSTER} or self.kube.mode == "run-command":
            cluster_fut = self._start("cluster", self._read_cluster, ttl)
            if CLUSTER in wanted:
                pending[CLUSTER] = ("cluster", cluster_fut)

        reqs = list_requests(wanted, args, full_pods=self.cache.fresh("pods") is not None)
        if self.kube.mode == "none":
            missing.update(
                {r.resource: "not read: no Kubernetes access is configured" for r in reqs}
            )
        elif not self.breaker.allow():
            why = (
                f"not read: the API server answered 429/5xx repeatedly; aksdiag holds off this "
                f"cluster for another {secs(round(self.breaker.remaining()))}"
            )
            for r in reqs:
                if entry := self.cache.last(r.key):
                    stale[r.resource] = entry
                else:
                    missing[r.resource] = why
        else:
            futs = self._start_lists(reqs, cluster_fut, ttl)
            pending.update({r.resource: (r.key, futs[r.key]) for r in reqs})

        if ACCESS_REVIEW in wanted:
            if not args.as_account:
                missing[ACCESS_REVIEW] = (
                    "no service account given: pass --as NAMESPACE/SERVICEACCOUNT"
                )
            elif self.kube.mode in ("none", "run-command"):
                missing[ACCESS_REVIEW] = (
                    f"access reviews need direct Kubernetes API access ({self.path})"
                )
            else:
                ns, sa = args.as_account
                key = f"accessreview:{ns}/{sa}"
                pending[ACCESS_REVIEW] = (
                    key,
                    self._start(key, lambda: access.review(self.clients.kube_api(), ns, sa), ttl),
                )

        cluster: ClusterInfo | None = None
        if cluster_fut is not None and wanted & {*NEEDS_CLUSTER, PROBE}:
            wait_all([cluster_fut], timeout=max(0.0, deadline - time.monotonic()))
            if cluster_fut.done() and cluster_fut.exception() is None:
                cluster = cluster_fut.result().value
        if PUBLIC_IPS in wanted and cluster_fut is not None:
            if cluster is not None:
                c, key = cluster, f"publicips:{cluster.id.lower()}"
                egress = self._start(key, lambda: self.clients.arm().egress(c), ttl)
                pending[PUBLIC_IPS] = (key, egress)
            else:
                pending[PUBLIC_IPS] = ("cluster", cluster_fut)  # its failure explains this one
        if VERSIONS in wanted and cluster_fut is not None:
            pending[VERSIONS] = self._start_versions(cluster, cluster_fut, ttl)
        if wanted & {DIAGNOSTIC_SETTINGS, AUDIT_LOG}:
            self._start_logs(wanted, args, ttl, pending, missing)
        if cluster_fut is not None:
            pending.update(self._network_reads(wanted, cluster, cluster_fut, ttl))
        if PROBE in wanted:
            key = "probe"  # one API server per source (its path can name the context later)
            probe_ttl = PROBE_TTL if ttl is None else ttl
            pending[PROBE] = (key, self._start(key, lambda: self._probe(cluster), probe_ttl))

        wait_all([f for _, f in pending.values()], timeout=max(0.0, deadline - time.monotonic()))
        return self._assemble(wanted, pending, missing, stale)

    def _start_versions(
        self, cluster: ClusterInfo | None, cluster_fut: Future[Entry], ttl: float | None
    ) -> tuple[str, Future[Entry]]:
        """The versions AKS offers in the cluster's region (one read per region)."""
        if cluster is None:
            return ("cluster", cluster_fut)  # its failure explains this one
        location = cluster.location
        if not location:
            fut: Future[Entry] = Future()
            fut.set_exception(ReadError("the managed cluster names no location"))
            return ("versions:", fut)
        key = f"versions:{location.lower()}"
        return key, self._start(key, lambda: self.clients.arm().kubernetes_versions(location), ttl)

    def _start_logs(
        self,
        wanted: set[str],
        args: ScenarioArgs,
        ttl: float | None,
        pending: dict[str, tuple[str, Future[Entry]]],
        missing: dict[str, str],
    ) -> None:
        """Diagnostic settings, then the audit log they point at (see collectors.logs)."""
        if self.azure is None:
            missing.update({s: NO_AZURE for s in (DIAGNOSTIC_SETTINGS, AUDIT_LOG) if s in wanted})
            return
        cid = self.azure.id
        key = f"diagsettings:{cid.lower()}"
        found = self._start(key, lambda: logs.diagnostic_settings(self.clients.arm(), cid), ttl)
        if DIAGNOSTIC_SETTINGS in wanted:
            pending[DIAGNOSTIC_SETTINGS] = (key, found)
        if AUDIT_LOG in wanted:
            since = args.since or logs.DEFAULT_SINCE
            task = logs.audit_task(self.clients.logs, cid, since, found, self.settings.arm_timeout)
            key = f"audit:{cid.lower()}:{since}"
            pending[AUDIT_LOG] = (key, self._start(key, task, ttl))

    def _network_reads(
        self,
        wanted: set[str],
        cluster: ClusterInfo | None,
        cluster_fut: Future[Entry],
        ttl: float | None,
    ) -> dict[str, tuple[str, Future[Entry]]]:
        """The Azure network path and the egress endpoints (diagnostics.collectors.armnet)."""
        out: dict[str, tuple[str, Future[Entry]]] = {}
        reads: tuple[tuple[str, str, Callable[[Any, ClusterInfo], Any]], ...] = (
            (NETWORK, "network", armnet.read_network),
            (EGRESS_ENDPOINTS, "egress", armnet.read_egress_endpoints),
            (PRIVATE_DNS, "privatedns", armnet.read_private_dns),
        )
        for src, prefix, fn in reads:
            if src not in wanted:
                continue
            if src == PRIVATE_DNS and NETWORK in out:
                out[src] = out[NETWORK]  # the whole path holds the DNS part
                continue
            if cluster is None:
                out[src] = ("cluster", cluster_fut)  # its failure explains this one
                continue
            key = f"{prefix}:{cluster.id.lower()}"
            task = partial(self._arm_read, fn, cluster)
            out[src] = (key, self._start(key, task, ttl, pool=self._arm_pool))
        return out

    def _arm_read(self, fn: Callable[[Any, ClusterInfo], Any], cluster: ClusterInfo) -> Any:
        return fn(self.clients.arm(), cluster)

    def _assemble(
        self,
        wanted: set[str],
        pending: dict[str, tuple[str, Future[Entry]]],
        missing: dict[str, str],
        stale: dict[str, Entry],
    ) -> Snapshot:
        snap = Snapshot(label=self.label, path=self.path)
        got: dict[str, Entry] = {}
        absent: list[str] = []  # policy kinds this cluster does not serve: none exist
        for src, (key, fut) in pending.items():
            if not fut.done():
                missing[src] = (
                    f"timed out after {secs(self.settings.collect_timeout)} (still reading)"
                )
                continue
            exc = fut.exception()
            if exc is None:
                got[src] = fut.result()
                continue
            err = exc if isinstance(exc, ReadError) else ReadError(f"{type(exc).__name__}: {exc}")
            last = self.cache.last(key)
            if err.overload and last is not None and not (src != CLUSTER and key == "cluster"):
                stale[src] = last
            elif src != CLUSTER and key == "cluster":
                missing[src] = f"the managed cluster could not be read: {err.reason}"
            elif src in POLICY_KINDS and err.kind == "not-installed":
                absent.append(src)
            else:
                missing[src] = err.reason
        got.update(stale)
        for src in ALL_SOURCES:
            entry = got.get(src)
            if entry is None:
                continue
            value = entry.value
            if src == CLUSTER:
                snap.cluster = value
            elif src == PUBLIC_IPS:
                snap.public_ips = dict(value.addresses)
                if value.nat_ids and snap.cluster is not None:
                    ids = (*snap.cluster.nat_outbound_ip_ids, *value.nat_ids)
                    snap.cluster = replace(snap.cluster, nat_outbound_ip_ids=ids)
                if value.unresolved:
                    missing[src] = "could not resolve " + "; ".join(
                        f"{rid}: {why}" for rid, why in value.unresolved.items()
                    )
            elif src == PROBE:
                snap.probe = value
            elif src == VERSIONS:
                snap.kubernetes_versions = list(value)
            elif src == NETWORK:
                snap.network = value.network
            elif src == EGRESS_ENDPOINTS:
                snap.egress_endpoints = list(value[0])
            elif src == PRIVATE_DNS:
                snap.network = snap.network or value.network
            elif src == ACCESS_REVIEW:
                snap.access_reviews = list(value)
            elif src == DIAGNOSTIC_SETTINGS:
                snap.diagnostic_settings = list(value)
            elif src == AUDIT_LOG:
                snap.audit = value
                if value.partial:
                    missing[src] = (
                        f"Log Analytics answered partially ({value.partial}): the counts are a lower bound"
                    )
            else:
                setattr(snap, K8S_RESOURCES[src].field, list(value))
            snap.read.append(src)
        if stale:
            age = max(e.age() for e in stale.values())
            snap.path += (
                f"; {', '.join(sorted(stale))} answered from the last collection, {secs(round(age))} "
                "old, after repeated 429/5xx answers"
            )
        snap.read += absent
        snap.missing = {k: v for k, v in missing.items() if k in wanted}
        snap.note_unevaluated()
        snap.captured_at = min((e.at for e in got.values()), default=time.time())
        return snap


__all__ = ["KubeAccess", "LiveSource", "list_requests"]
