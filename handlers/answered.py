"""What the bot keeps in Redis about answers it has posted: where a request's answer already is
in a channel (for the cache TTL: a cached answer points to it instead of posting the thread
again), and the problems a top-level parent shows (for `SHOWN_TTL_S`: Re-run diffs against
them even after the report cache expired). Best effort: Redis down only costs the nicety.
"""

from __future__ import annotations

import json

from bot.deps import Deps
from bot.render.rerun import problems
from bot.runs import RunRequest
from diagnostics.model import Report

SHOWN_TTL_S = 30 * 86400


def _answer_key(channel: str, req: RunRequest) -> str:
    return f"aksdiag:answered:{channel}:{req.key}"


def _shown_key(channel: str, parent_ts: str) -> str:
    return f"aksdiag:shown:{channel}:{parent_ts}"


def remember(deps: Deps, channel: str, req: RunRequest, thread_ts: str) -> None:
    """Where this request's answer (and its thread) is in `channel`, for the cache TTL."""
    value = json.dumps({"ts": thread_ts, "at": deps.clock()})
    ttl = max(1, int(deps.config.cache_ttl_seconds))
    key = _answer_key(channel, req)
    deps.runs.guard.best_effort(lambda: deps.redis.set(key, value, ex=ttl), None)


def earlier(deps: Deps, channel: str, req: RunRequest) -> tuple[str, float] | None:
    """(ts, when) of this request's answer already in this channel, if there is one."""
    key = _answer_key(channel, req)
    raw = deps.runs.guard.best_effort(lambda: deps.redis.get(key), None)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return str(data["ts"]), float(data["at"])
    except (ValueError, KeyError, TypeError):
        return None


def keep_shown(deps: Deps, channel: str, parent_ts: str, report: Report) -> None:
    """The problems (fingerprint -> title) the parent `parent_ts` now shows."""
    value = json.dumps(problems(report))
    key = _shown_key(channel, parent_ts)
    deps.runs.guard.best_effort(lambda: deps.redis.set(key, value, ex=SHOWN_TTL_S), None)


def shown_before(
    deps: Deps, channel: str, parent_ts: str, req: RunRequest
) -> dict[str, str] | None:
    """The problems the parent shows now: those kept with it, else (an answer posted before
    they were kept) the cached report's, else None (not known any more)."""
    key = _shown_key(channel, parent_ts)
    raw = deps.runs.guard.best_effort(lambda: deps.redis.get(key), None)
    if raw:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items()}
    runs = deps.runs  # read without counting a cache hit
    hit = runs.guard.best_effort(lambda: runs.store.get_report(req.key), None)
    return problems(hit.report) if hit is not None else None
