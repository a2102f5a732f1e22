"""`pod-ip`: why pods cannot get an IP address (the article's second section).

The checks live in `podip_failures` (allocation failures, leaks, exhausted nodes),
`podip_backlog` (terminated pods not collected) and `podip_subnet` (subnet and pod CIDR
capacity); `podip_nodes` holds what they share. With `--node NODE` every check looks at that
node only, and this module says so when the node does not exist.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext
from diagnostics.checks.podip_nodes import SCENARIO
from diagnostics.diagnosis import Link, same_node_subnet, same_subject
from diagnostics.model import Finding, Severity, Step

EVENTS, PODS, NODES, NNC = "events", "pods", "nodes", "nodenetworkconfigs"


def node_not_found(ctx: CheckContext) -> Iterator[Finding]:
    node = ctx.args.node
    snap = ctx.snapshot
    if not node or node in snap.nodes_by_name:
        return
    names = sorted(snap.nodes_by_name)
    close = difflib.get_close_matches(node, names, n=3, cutoff=0.6)
    evidence = [f"the cluster has {len(names)} nodes and none is named {node}"]
    if close:
        evidence.append(f"did you mean: {', '.join(close)}")
    elif names:
        evidence.append(f"nodes: {', '.join(names[:10])}" + (" …" if len(names) > 10 else ""))
    if node in snap.pods_by_node:
        evidence.append(
            f"{len(snap.pods_by_node[node])} pods still name it as their node: it "
            "was probably removed by a scale-down or upgrade"
        )
    yield Finding(
        code="podip.node-not-found",
        severity=Severity.WARNING,
        title=f"Node {node} does not exist in this cluster",
        subject=f"node/{node}",
        evidence=tuple(evidence),
        cause="The pod-ip checks were asked to look at this node only, so they had nothing to "
        "look at.",
        remediation=(Step("List the nodes.", "kubectl get nodes -o wide"),),
        docs=DOCS["pod-ip"],
    )


# What explains what (diagnostics.diagnosis): a full subnet or pod CIDR explains the failures
# and exhausted nodes behind it (`scope` names them); a leak or a backlog of finished pods
# explains the allocation failures on its own node.
EXPLAINS = (
    Link(
        "podip.subnet-capacity",
        "podip.allocation-failed",
        same_node_subnet,
        "pods on {n} node{s} cannot get an IP",
    ),
    Link(
        "podip.subnet-capacity",
        "podip.node-ip-exhausted",
        same_node_subnet,
        "{n} node{s} stuck at the IPs they got",
    ),
    Link(
        "podip.subnet-capacity",
        "podip.subnet-capacity",
        same_node_subnet,
        "no room for the pools to scale",
    ),
    Link(
        "podip.ip-leak",
        "podip.allocation-failed",
        same_subject,
        "pods on {n} node{s} cannot get an IP",
    ),
    Link(
        "podip.terminated-pods-backlog",
        "podip.allocation-failed",
        same_subject,
        "pods on {n} node{s} cannot get an IP",
    ),
    Link(
        "podip.node-ip-exhausted",
        "podip.allocation-failed",
        same_subject,
        "pods on {n} node{s} cannot get an IP",
    ),
)


CHECKS: tuple[Check, ...] = (
    Check(
        name="podip.node_not_found",
        scenario=SCENARIO,
        codes=("podip.node-not-found",),
        fn=node_not_found,
        needs=(NODES,),
        uses=(PODS,),
    ),
)
