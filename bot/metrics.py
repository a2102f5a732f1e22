"""The bot's Prometheus metrics, on a registry of their own (one per app, so tests and several
apps in one process never share counters). Served as text by `/metrics` (bot.serve)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


class Metrics:
    """Counters a platform team watches: runs by scenario and outcome, how long they take,
    cache hits, singleflight joins, cluster collections, Slack API errors, runs in flight."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter(
            "aksdiag_runs",
            "Diagnosis requests answered, by scenario and outcome "
            "(fresh, cached, joined, failed, timeout).",
            ("scenario", "outcome"),
            registry=r,
        )
        self.duration = Histogram(
            "aksdiag_run_duration_seconds",
            "Time to produce a report (fresh runs).",
            ("scenario",),
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "aksdiag_cache_hits",
            "Answers served from the Redis report cache.",
            ("scenario",),
            registry=r,
        )
        self.singleflight_joins = Counter(
            "aksdiag_singleflight_joins",
            "Requests that shared a run already in flight.",
            ("scenario",),
            registry=r,
        )
        self.collections = Counter(
            "aksdiag_cluster_collections",
            "Runs that read a cluster (a live one through its read cache).",
            ("cluster",),
            registry=r,
        )
        self.slack_errors = Counter(
            "aksdiag_slack_api_errors",
            "Slack Web API calls that failed, by method and error.",
            ("method", "error"),
            registry=r,
        )
        self.in_flight = Gauge(
            "aksdiag_runs_in_flight", "Cluster reads and analyses running now.", registry=r
        )
        self.redis_errors = Counter(
            "aksdiag_redis_errors",
            "Redis operations that failed (answers went uncached).",
            registry=r,
        )
        self.refusals = Counter(
            "aksdiag_access_refusals",
            "Requests refused by a cluster's allow rules.",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
