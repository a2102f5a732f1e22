"""Who may diagnose which cluster from where (`allow` in docs/configuration.md), decided
without network I/O: the configuration's allow rules and the background user-group cache.
Every decision on a request is written to the audit log."""

from __future__ import annotations

from bot.config import authorize
from bot.deps import Deps
from bot.logs import audit_line

PENDING = "user groups not loaded yet"


def decide(deps: Deps, cluster: str, channel: str, user: str) -> tuple[bool | None, str]:
    """(True/False, the rule that decided), or (None, PENDING) when the answer depends on user
    groups not read yet (the caller acks, then waits for them off the listener thread)."""
    cfg = deps.config.cluster(cluster)
    if cfg is None:
        return False, "the cluster is not configured"
    groups = deps.usergroups.groups_of(user)
    allow = cfg.allow
    if groups is None and allow is not None and allow.usergroups is not None:
        channel_ok = allow.channels is None or channel in allow.channels
        user_listed = allow.users is not None and user in allow.users
        if channel_ok and not user_listed:
            return None, PENDING
    return authorize(cfg, channel, user, groups or frozenset())


def check(
    deps: Deps, cluster: str, channel: str, user: str, action: str
) -> tuple[bool | None, str]:
    """`decide`, with an audit line for each final decision."""
    allowed, rule = decide(deps, cluster, channel, user)
    if allowed is not None:
        audit(deps, allowed, rule, cluster=cluster, channel=channel, user=user, action=action)
    return allowed, rule


def audit(deps: Deps, allowed: bool, rule: str, **fields: str) -> None:
    if not allowed:
        deps.metrics.refusals.inc()
    audit_line("allowed" if allowed else "refused", rule=rule, **fields)


def visible(deps: Deps, channel: str, user: str) -> list[str]:
    """The clusters `user` may diagnose in `channel` (as far as is known now), sorted."""
    return sorted(c for c in deps.config.clusters if decide(deps, c, channel, user)[0] is True)
