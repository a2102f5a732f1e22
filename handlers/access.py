"""Who may diagnose which cluster from where (`allow` in docs/configuration.md), decided
without network I/O: the configuration's allow rules and the background user-group cache.
Every decision on a request is written to the audit log."""

from __future__ import annotations

from bot import messages
from bot.config import authorize
from bot.deps import Deps
from bot.logs import audit_line
from diagnostics.scenarios import suggest

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


def refusal(deps: Deps, cluster: str, channel: str, user: str) -> str:
    """The answer to a cluster `user` may not diagnose in `channel`: word for word the answer
    to a cluster that does not exist (no spelling, rule or count leaked; the rule is in the
    audit log), with did-you-mean only over the clusters the user may see here."""
    choices = visible(deps, channel, user)
    unknown = messages.unknown_cluster(cluster, suggest(cluster, choices), choices)
    return messages.usage_error(unknown, deps.settings.command)


def visible_digests(deps: Deps, user: str) -> list[str]:
    """The digests `user` may post: every cluster of each allowed to them in its channel."""
    return [
        d.name
        for d in deps.config.digests
        if all(decide(deps, c, d.channel, user)[0] is not False for c in d.clusters)
    ]


def visible(deps: Deps, channel: str, user: str) -> list[str]:
    """The clusters `user` may diagnose in `channel` (as far as is known now), sorted."""
    return sorted(c for c in deps.config.clusters if decide(deps, c, channel, user)[0] is True)
