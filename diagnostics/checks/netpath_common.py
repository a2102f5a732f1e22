"""What the Azure network path checks share: the evaluated paths of the node subnets (see
`diagnostics.netpath.analysis`), resource ids split into the names `az` wants, and priorities
free for a fix."""

from __future__ import annotations

from diagnostics.checks.base import CheckContext, q
from diagnostics.checks.nodeapi_common import api_endpoints
from diagnostics.netpath.analysis import SubnetPath, subnet_paths
from diagnostics.snapshot import Snapshot


def api_ips(snap: Snapshot) -> tuple[str, ...]:
    ep = api_endpoints(snap)
    return ep.ready if ep else ()


def paths(ctx: CheckContext) -> list[SubnetPath]:
    return subnet_paths(ctx.snapshot, api_ips(ctx.snapshot))


def rg_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    low = [p.lower() for p in parts]
    return parts[low.index("resourcegroups") + 1] if "resourcegroups" in low else ""


def sub_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    low = [p.lower() for p in parts]
    return parts[low.index("subscriptions") + 1] if "subscriptions" in low else ""


def name_of(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def sub_flag(resource_id: str, ctx: CheckContext) -> str:
    """` --subscription S` when the resource lives outside the cluster's subscription."""
    sub = sub_of(resource_id)
    c = ctx.snapshot.cluster
    if sub and c is not None and c.subscription and sub.lower() != c.subscription.lower():
        return f" --subscription {q(sub)}"
    return ""


def free_priority(used: set[int], below: int, floor: int = 100) -> int | None:
    """The highest free priority number under `below` (so it is evaluated first), or None."""
    for p in range(below - 1, floor - 1, -1):
        if p not in used:
            return p
    return None
