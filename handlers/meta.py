"""The meta commands: help, clusters, history, digest, silence, unsilence, silences.

`immediate` answers what needs no I/O (it can ride in the ack); `background` does the rest on
the bot's executor and answers the requester (or, for silences, the channel).
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from bot import messages
from bot.deps import Deps
from bot.runs import RedisDown
from diagnostics.scenarios import UsageError, suggest
from handlers import access
from handlers.diagnose import Where
from handlers.parse import Meta, resolve_cluster

log = logging.getLogger(__name__)


def immediate(deps: Deps, meta: Meta, where: Where) -> str | None:
    """The answer when it needs no network I/O; None when `background` must run."""
    if meta.verb == "help":
        return messages.help_text(deps.settings.command)
    if meta.verb == "clusters":
        seen = access.visible(deps, where.channel, where.user)
        return messages.clusters_list(seen)
    if meta.verb in ("history", "silences") and meta.cluster is not None:
        allowed, _ = access.check(deps, meta.cluster, where.channel, where.user, meta.verb)
        if allowed is False:  # a decision like any other: refused and audited
            return access.refusal(deps, meta.cluster, where.channel, where.user)
    if meta.verb == "digest":
        return _digest_refusal(deps, meta.tokens[0], where)
    return None


def _digest_refusal(deps: Deps, name: str, where: Where) -> str | None:
    """Posting a digest needs access to each of its clusters in the digest's channel. A digest
    the user may not post reads like one that does not exist; only digests they may post are
    listed or suggested."""
    digest = deps.config.digest(name)
    if digest is not None and all(
        access.check(deps, cluster, digest.channel, where.user, f"digest {name}")[0] is not False
        for cluster in digest.clusters
    ):
        return None
    shown = access.visible_digests(deps, where.user)
    unknown = messages.unknown_digest(name, suggest(name, shown), shown)
    return messages.usage_error(unknown, deps.settings.command)


def background(deps: Deps, meta: Meta, where: Where) -> None:
    """Answer a meta command off the listener thread; never raises."""
    try:
        if meta.verb == "history" and meta.cluster is not None:
            _history(deps, meta.cluster, where)
        elif meta.verb == "digest":
            _digest(deps, meta.tokens[0], where)
        elif meta.verb == "silence":
            _silence(deps, meta, where)
        elif meta.verb == "unsilence":
            _unsilence(deps, meta, where)
        elif meta.verb == "silences":
            _silences(deps, meta, where)
        else:
            text = immediate(deps, meta, where)
            if text:
                where.tell(deps, text)
    except UsageError as exc:
        where.tell(deps, messages.usage_error(str(exc), deps.settings.command))
    except (RedisDown, RedisError):
        down = (
            messages.history_unavailable()
            if meta.verb == "history"
            else messages.silences_unavailable()
        )
        where.tell(deps, down)
    except Exception:
        log.exception("%s failed", meta.verb)
        where.tell(deps, messages.run_failed("-", f"`{meta.verb}` failed unexpectedly"))


def _authorized(deps: Deps, cluster: str, where: Where, action: str) -> bool:
    """Decide (waiting for user groups if needed); tell the user when refused."""
    allowed, _ = access.check(deps, cluster, where.channel, where.user, action)
    if allowed is None:
        deps.usergroups.wait_ready(10.0)
        allowed, _ = access.check(deps, cluster, where.channel, where.user, action)
    if allowed is None:
        where.tell(deps, messages.access_unknown())
        return False
    if not allowed:
        where.tell(deps, access.refusal(deps, cluster, where.channel, where.user))
    return bool(allowed)


def _history(deps: Deps, cluster: str, where: Where) -> None:
    if not _authorized(deps, cluster, where, "history"):
        return
    where.tell(deps, messages.history(cluster, deps.runs.history(cluster)))


def _digest(deps: Deps, name: str, where: Where) -> None:
    refusal = _digest_refusal(deps, name, where)
    digest = deps.config.digest(name)
    if refusal or digest is None:
        where.tell(deps, refusal or messages.unknown_digest(name, "", []))
        return
    # a digest is a whole message in its channel: it counts against the same limits
    ticket = deps.limits.admit(where.user, digest.channel) if deps.limits else None
    if isinstance(ticket, str):
        where.tell(deps, ticket)
        return
    try:
        where.tell(deps, messages.digest_started(name, digest.channel))
        deps.digests.post_now(name, requested_by=where.user)
        where.tell(deps, messages.digest_done(name, digest.channel))
    finally:
        if ticket is not None and deps.limits is not None:
            deps.limits.release(ticket)


def _known(deps: Deps, cluster: str, where: Where) -> str:
    return resolve_cluster(cluster, deps.config, access.visible(deps, where.channel, where.user))


def _silence(deps: Deps, meta: Meta, where: Where) -> None:
    from bot.silences import format_duration, parse_silence

    req = parse_silence(meta.tokens)
    cluster = _known(deps, req.cluster, where)
    if not _authorized(deps, cluster, where, "silence"):
        return
    try:
        silence = deps.silences.add(
            cluster, req.code, req.subject, req.duration_s, req.reason, where.user
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    where.tell(
        deps, messages.silence_added(silence, format_duration(req.duration_s)), in_channel=True
    )


def _unsilence(deps: Deps, meta: Meta, where: Where) -> None:
    from bot.silences import parse_unsilence

    req = parse_unsilence(meta.tokens)
    cluster = _known(deps, req.cluster, where)
    if not _authorized(deps, cluster, where, "unsilence"):
        return
    removed = deps.silences.remove(cluster, req.code, req.subject, where.user)
    where.tell(
        deps, messages.silence_removed(cluster, req.code, removed, where.user), in_channel=removed
    )


def _silences(deps: Deps, meta: Meta, where: Where) -> None:
    seen = set(access.visible(deps, where.channel, where.user))
    items = deps.silences.list(meta.cluster)
    shown = [s for s in items if s.cluster in seen]
    where.tell(deps, messages.silences_list(shown, len(items) - len(shown)))
