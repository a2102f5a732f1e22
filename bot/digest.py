"""Health digests: run `health` on a digest's clusters, say what changed, post it once.

`DigestService` gathers a digest (health on every cluster, concurrently and bounded; findings
below the digest's minimum severity and silenced findings left out; new and resolved findings
against the previous digest of that name, by fingerprint) and posts one parent message with the
details in its thread. `run_scheduled` is what the scheduler calls on every replica for every
fire time; it makes sure the fire time posts once:

- the slot (digest + scheduled time in the digest's time zone) is claimed with a redis-py
  `Lock` with a short lease that a background thread renews while the work goes on;
- the rendered messages are stored before the first post, and progress (the parent's ts, the
  replies sent) after each one, so when a replica dies mid-digest its lease runs out and a
  waiting replica resumes the same post instead of starting a second one;
- a `done` marker ends the slot for everyone; failures are retried a few times, then reported
  in the digest's channel.
Claims, leases and slot keys are in `bot.digest_slots`.

Redis keys (all JSON or plain strings):
- `aksdiag:digest:<name>:previous`             what the previous digest saw, per cluster
- `aksdiag:digest:<name>:<slot>:claim`         the replica working on a slot (`Lock` token, lease)
- `aksdiag:digest:<name>:<slot>:run`           hash: plan (messages + state), ts, channel, sent
- `aksdiag:digest:<name>:<slot>:attempts`      how many times the slot was attempted
- `aksdiag:digest:<name>:<slot>:done`          the slot is finished (posted, quiet, or failed)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.config import Config, ConfigError, DigestConfig, load_config
from bot.digest_slots import (
    KEY,
    SLOT_TTL_S,
    Lease,
    LeaseLost,
    SlotKeys,
    attempt,
    claim,
    finish,
    slot_of,
)
from bot.render.blocks import SlackMessage
from bot.render.digest import (
    ClusterDigest,
    DigestView,
    PastFinding,
    failure_message,
    render_digest,
    render_digest_text,
)
from bot.silences import SilenceStore
from diagnostics.collectors.snapshot_dir import SnapshotError
from diagnostics.model import Finding, Report, Severity
from diagnostics.redact import redact_text
from diagnostics.runner import ClusterSource, run
from diagnostics.scenarios import UsageError, suggest

log = logging.getLogger(__name__)

STATE_TTL_S = 90 * 86400
MAX_ATTEMPTS = 3
PERMANENT_SLACK_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "restricted_action",
        "invalid_blocks",
    }
)
EXIT_OK, EXIT_SOURCE = 0, 3

SourceFactory = Callable[[str], ClusterSource]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return f"Slack answered {exc.response.get('error', 'an error')}"
    if isinstance(exc, SnapshotError | UsageError) or type(exc).__name__ == "SourceError":
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact_text(text)[:500]


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, SlackApiError):
        return exc.response.get("error") not in PERMANENT_SLACK_ERRORS
    return not isinstance(exc, UsageError)


class DigestService:
    """Gathers, renders and posts digests; shared by the scheduler, `/aksdiag digest` and the
    CLI. Thread-safe: every call works on its own data."""

    def __init__(
        self,
        config: Config,
        redis: redis.Redis,
        client: WebClient,
        source_factory: SourceFactory | None = None,
        silences: SilenceStore | None = None,
        clock: Callable[[], float] = time.time,
        *,
        max_workers: int = 32,  # clusters read at once: each is a different API server
        cluster_timeout_s: float = 300.0,
        lease_s: int = 30,
        poll_s: float = 1.0,
        max_wait_s: float = 1800.0,
        retry_backoff_s: float = 10.0,
    ) -> None:
        self.config = config
        self.redis = redis
        self.client = client
        self.source_factory = source_factory or self._configured_source
        self.silences = silences or SilenceStore(redis, clock)
        self.clock = clock
        self.max_workers = max(1, max_workers)
        self.cluster_timeout_s = cluster_timeout_s
        self.lease_s = max(1, int(lease_s))
        self.poll_s = poll_s
        self.max_wait_s = max_wait_s
        self.retry_backoff_s = retry_backoff_s

    def _configured_source(self, alias: str) -> ClusterSource:
        from bot.sources import source_for

        return source_for(alias, self.config.clusters[alias], self.config)

    def digest(self, name: str) -> DigestConfig:
        found = self.config.digest(name)
        if found is None:
            names = [d.name for d in self.config.digests]
            known = ", ".join(f"`{n}`" for n in names) or "none"
            raise UsageError(
                f"unknown digest `{name}`.{suggest(name, names)} Configured digests: {known}."
            )
        return found

    # Gathering -------------------------------------------------------------------------------

    def _health(self, alias: str) -> Report:
        cluster = self.config.clusters[alias]
        source = self.source_factory(alias)
        return run("health", source, operator_networks=tuple(cluster.operator_networks))

    def _run_all(self, aliases: list[str]) -> dict[str, Report | str]:
        out: dict[str, Report | str] = {}
        if not aliases:
            return out
        pool = ThreadPoolExecutor(
            max_workers=min(self.max_workers, len(aliases)), thread_name_prefix="digest-health"
        )
        try:
            futures = {pool.submit(self._health, alias): alias for alias in aliases}
            done, pending = wait(futures, timeout=self.cluster_timeout_s)
            for fut in done:
                alias = futures[fut]
                try:
                    out[alias] = fut.result()
                except Exception as exc:  # a cluster that cannot be read is named, not fatal
                    log.warning("digest: cluster %s could not be read: %s", alias, _describe(exc))
                    out[alias] = _describe(exc)
            for fut in pending:
                out[futures[fut]] = f"no answer within {self.cluster_timeout_s:.0f}s"
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return out

    def _previous(self, name: str) -> dict[str, Any] | None:
        raw = self.redis.get(f"{KEY}:{name}:previous")
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("digest %s: the previous state is unreadable; starting afresh", name)
            return None
        return data if isinstance(data, dict) else None

    def _gather(
        self,
        digest: DigestConfig,
        at: float,
        requested_by: str | None = None,
    ) -> tuple[DigestView, dict[str, Any]]:
        """The view to render and the state the next digest compares with."""
        previous = self._previous(digest.name)
        before: dict[str, Any] = (previous or {}).get("clusters", {})
        results = self._run_all(list(digest.clusters))
        now = self.clock()
        clusters: list[ClusterDigest] = []
        state: dict[str, Any] = {}
        for alias in digest.clusters:
            outcome = results.get(alias, "not run")
            if isinstance(outcome, Report) and not outcome.collected and outcome.unavailable:
                reasons = "; ".join(f"{u.source}: {u.reason}" for u in outcome.unavailable[:3])
                outcome = f"no data source could be read ({reasons})"
            if isinstance(outcome, str):
                clusters.append(ClusterDigest(alias, error=outcome))
                if alias in before:  # keep what we knew, so its findings do not come back "new"
                    state[alias] = before[alias]
                continue
            cluster, state[alias] = self._compare(
                alias, outcome, digest.min_severity, before.get(alias), previous is not None
            )
            clusters.append(cluster)
        view = DigestView(
            name=digest.name,
            timezone=digest.timezone,
            min_severity=digest.min_severity,
            at=at,
            now=now,
            clusters=tuple(clusters),
            previous_at=float(previous["at"]) if previous and "at" in previous else None,
            requested_by=requested_by,
            stale_after_s=self.config.cache_ttl_seconds,
        )
        return view, {"at": at, "clusters": state}

    def _compare(
        self,
        alias: str,
        report: Report,
        minimum: Severity,
        before: dict[str, Any] | None,
        has_previous: bool,
    ) -> tuple[ClusterDigest, dict[str, Any]]:
        relevant = {f.fingerprint: f for f in report.findings if f.severity.at_least(minimum)}
        below = len(report.findings) - len(relevant)
        shown, silenced = self.silences.split(alias, relevant.values())
        seen: dict[str, Any] = (before or {}).get("findings", {})
        new = [f for f in shown if f.fingerprint not in seen] if has_previous else []
        resolved = [
            PastFinding(alias, e["code"], Severity(e["severity"]), e["title"], e["subject"], fp)
            for fp, e in seen.items()
            if not e.get("silenced") and fp not in relevant
        ]
        hidden = {f.fingerprint for f, _ in silenced}
        was_hidden = {fp for fp, e in seen.items() if e.get("silenced")}
        entry = {"findings": {fp: _entry(f, fp in hidden) for fp, f in relevant.items()}}
        cluster = ClusterDigest(
            alias=alias,
            report=report,
            shown=tuple(shown),
            silenced=tuple(silenced),
            below=below,
            new=tuple(new),
            resolved=tuple(resolved),
            silences_changed=has_previous and hidden != was_hidden,
        )
        return cluster, entry

    def collect(self, name: str, requested_by: str | None = None) -> DigestView:
        """The digest as it would be posted now, without posting or remembering it."""
        return self._gather(self.digest(name), self.clock(), requested_by)[0]

    def render(self, name: str) -> tuple[SlackMessage, list[SlackMessage]]:
        return render_digest(self.collect(name))

    # Posting ---------------------------------------------------------------------------------

    def _post(self, channel: str, message: SlackMessage, thread_ts: str | None = None) -> Any:
        return self.client.chat_postMessage(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )

    def _commit(self, name: str, state: dict[str, Any]) -> None:
        self.redis.set(f"{KEY}:{name}:previous", json.dumps(state), ex=STATE_TTL_S)

    def post_now(self, name: str, requested_by: str | None = None) -> str:
        """Post the digest in its own channel now (quiet mode never applies); the parent's ts."""
        digest = self.digest(name)
        view, state = self._gather(digest, self.clock(), requested_by)
        parent, thread = render_digest(view)
        answer = self._post(digest.channel, parent)
        ts, channel = str(answer["ts"]), str(answer.get("channel") or digest.channel)
        for message in thread:
            self._post(channel, message, ts)
        self._commit(name, state)
        log.info("digest %s posted on request in %s (ts %s)", name, channel, ts)
        return ts

    def run_scheduled(self, name: str, scheduled_for: datetime) -> str | None:
        """Post the digest for one fire time, once across every replica. Returns the parent's ts
        when this replica posted it, None when another did, quiet mode held it, or it failed."""
        digest = self.config.digest(name)
        if digest is None:
            log.error("scheduled digest %s is no longer configured; nothing posted", name)
            return None
        slot = slot_of(scheduled_for, digest.timezone)
        keys = SlotKeys.of(name, slot)
        at = scheduled_for.timestamp()
        while True:
            claimed = claim(self.redis, keys, self.lease_s, self.poll_s, self.max_wait_s)
            if claimed is None:
                return None
            with Lease(claimed) as lease:
                n = attempt(self.redis, keys)
                try:
                    return self._run_slot(digest, keys, at, lease)
                except LeaseLost:
                    log.warning("digest %s %s: another replica took the slot over", name, slot)
                    return None
                except Exception as exc:
                    log.exception("digest %s %s: attempt %d failed", name, slot, n)
                    if n >= MAX_ATTEMPTS or not _retryable(exc):
                        self._give_up(digest, keys, at, exc)
                        return None
            time.sleep(self.retry_backoff_s)  # the claim is released: any replica may retry

    def _run_slot(
        self, digest: DigestConfig, keys: SlotKeys, at: float, lease: Lease
    ) -> str | None:
        progress = {_text(k): _text(v) for k, v in self.redis.hgetall(keys.run).items()}
        if "plan" in progress:
            plan = json.loads(progress["plan"])
            log.info("digest %s: resuming a post another replica started", digest.name)
        else:
            view, state = self._gather(digest, at)
            if digest.quiet_when_green and view.green and not view.changed:
                self._commit(digest.name, state)
                finish(self.redis, keys, "quiet")
                log.info("digest %s: all green and nothing changed; quiet", digest.name)
                return None
            parent, thread = render_digest(view)
            plan = {
                "parent": parent.to_dict(),
                "thread": [m.to_dict() for m in thread],
                "state": state,
            }
            lease.check()
            self.redis.hset(keys.run, "plan", json.dumps(plan))
            self.redis.expire(keys.run, SLOT_TTL_S)
        ts, channel = progress.get("ts"), progress.get("channel") or digest.channel
        if ts is None:
            lease.check()
            answer = self._post(digest.channel, SlackMessage(**plan["parent"]))
            ts, channel = str(answer["ts"]), str(answer.get("channel") or digest.channel)
            self.redis.hset(keys.run, mapping={"ts": ts, "channel": channel})
        sent = int(progress.get("sent", 0))
        for i, message in enumerate(plan["thread"][sent:], start=sent):
            lease.check()
            self._post(channel, SlackMessage(**message), ts)
            self.redis.hset(keys.run, "sent", i + 1)
        self._commit(digest.name, plan["state"])
        finish(self.redis, keys, f"posted {ts}")
        log.info("digest %s posted in %s (ts %s)", digest.name, channel, ts)
        return ts

    def _give_up(self, digest: DigestConfig, keys: SlotKeys, at: float, exc: BaseException) -> None:
        try:
            self._post(
                digest.channel, failure_message(digest.name, at, digest.timezone, _describe(exc))
            )
        except Exception:  # Slack itself is what failed: the log is all that is left
            log.error("digest %s: could not report its failure in %s", digest.name, digest.channel)
        finish(self.redis, keys, f"failed: {_describe(exc)}")


def _entry(f: Finding, silenced: bool) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": f.severity.value,
        "title": f.title,
        "subject": f.subject,
        "silenced": silenced,
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# The CLI: `aksdiag digest NAME [--print] [--config FILE]` ----------------------------------------


@contextmanager
def _redis_from_env() -> Iterator[redis.Redis]:
    """`REDIS_URL`, or an embedded server for this one command (no previous digest then)."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield redis.Redis.from_url(url)
        return
    from bot.redis_embedded import EmbeddedRedis

    with EmbeddedRedis() as server:
        log.info("no REDIS_URL: using an embedded server, so nothing is compared or remembered")
        yield redis.Redis.from_url(server.url)


def digest_command(ns: argparse.Namespace) -> int:
    config = load_config(ns.config)
    digest = config.digest(ns.name)
    if digest is None:
        names = [d.name for d in config.digests]
        known = ", ".join(names) or f"none (add `digests:` to {config.path})"
        raise UsageError(
            f"unknown digest `{ns.name}`.{suggest(ns.name, names)} Configured: {known}."
        )
    try:
        if ns.print_only:
            with _redis_from_env() as r:
                view = DigestService(config, r, WebClient()).collect(ns.name)
            from rich.console import Console

            render_digest_text(view, Console())
            return EXIT_OK
        ts = _post_from_cli(config, ns.name)
    except redis.RedisError as exc:  # never echo REDIS_URL: it may hold a password
        sys.stderr.write(f"aksdiag: Redis (REDIS_URL) is not usable: {type(exc).__name__}\n")
        return EXIT_SOURCE
    except SlackApiError as exc:
        sys.stderr.write(f"aksdiag: Slack refused the digest: {_describe(exc)}\n")
        return EXIT_SOURCE
    except (SlackClientError, OSError) as exc:
        sys.stderr.write(f"aksdiag: could not reach Slack: {_describe(exc)}\n")
        return EXIT_SOURCE
    sys.stdout.write(f"posted digest {ns.name} to {digest.channel} (ts {ts})\n")
    return EXIT_OK


def _post_from_cli(config: Config, name: str) -> str:
    token = os.environ.get("SLACK_BOT_TOKEN")
    if not token:
        raise ConfigError(
            "SLACK_BOT_TOKEN is not set: export the bot token (xoxb-...) to post the digest, "
            f"or run `aksdiag digest {name} --print` to see it here."
        )
    base = os.environ.get("SLACK_API_URL") or WebClient.BASE_URL
    client = WebClient(token=token, base_url=base if base.endswith("/") else base + "/")
    with _redis_from_env() as r:
        return DigestService(config, r, client).post_now(name)


__all__ = ["DigestService", "LeaseLost", "digest_command", "slot_of"]
