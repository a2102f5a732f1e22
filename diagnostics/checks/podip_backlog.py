"""pod-ip: terminated pods that pile up on a node faster than they are garbage-collected (the
article's cause 2), and what cleans them up on AKS, where the controller manager is managed."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.podip_nodes import SCENARIO, allocation_failures, listing, pool_of, when
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER
from diagnostics.snapshot import Pod

# A Job a CronJob made is named <cronjob>-<scheduled minutes since the epoch>.
_CRONJOB_JOB = re.compile(r"^(?P<cronjob>.+)-\d{8,}$")
TTL_SECONDS = 3600


def _max_pods(ctx: CheckContext, node: str) -> int:
    rec = ctx.snapshot.nodes_by_name.get(node)
    if rec is not None and rec.max_pods:
        return rec.max_pods
    pool = pool_of(ctx.snapshot, rec, node)
    return pool.max_pods if pool else 0


def _owners(done: list[Pod]) -> Counter[tuple[str, str, str]]:
    """(namespace, kind, name) -> finished pods; Jobs a CronJob made count under the CronJob."""
    out: Counter[tuple[str, str, str]] = Counter()
    for p in done:
        kind, name = p.owner_kind or "Pod", p.owner_name or p.name
        m = _CRONJOB_JOB.match(name) if kind == "Job" else None
        out[(p.namespace, "CronJob", m["cronjob"]) if m else (p.namespace, kind, name)] += 1
    return out


def _pods(n: int) -> str:
    return f"{n} pod{'s' if n != 1 else ''}"


def _made_by(owners: Counter[tuple[str, str, str]]) -> str:
    """'CronJob batch/report (30 pods), 118 Workflows in argo (118 pods, e.g. wf-abc)'."""
    groups: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for (ns, kind, name), n in owners.most_common():
        groups.setdefault((ns, kind), []).append((name, n))
    parts = []
    for (ns, kind), members in sorted(groups.items(), key=lambda g: -sum(n for _, n in g[1])):
        if len(members) <= 3:
            parts += [f"{kind} {ns}/{name} ({_pods(n)})" for name, n in members]
        else:
            total = sum(n for _, n in members)
            examples = ", ".join(name for name, _ in members[:2])
            parts.append(f"{len(members)} {kind}s in {ns} ({_pods(total)}, e.g. {examples})")
    return listing(parts)


def _cleanup_steps(node: str, owners: Counter[tuple[str, str, str]]) -> list[Step]:
    steps: list[Step] = []
    for phase in ("Succeeded", "Failed"):
        selector = q(f"spec.nodeName={node},status.phase={phase}")
        steps.append(
            Step(
                f"Delete the {phase} pods on the node now (their logs go with them).",
                f"kubectl delete pods -A --field-selector {selector}",
            )
        )
    ttl = json.dumps({"spec": {"ttlSecondsAfterFinished": TTL_SECONDS}}, separators=(",", ":"))
    history = json.dumps(
        {
            "spec": {
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"ttlSecondsAfterFinished": TTL_SECONDS}},
            }
        },
        separators=(",", ":"),
    )
    top = [
        (ns, kind, name)
        for (ns, kind, name), _ in owners.most_common()
        if kind in ("Job", "CronJob")
    ]
    for ns, kind, name in top[:3]:
        if kind == "CronJob":
            steps.append(
                Step(
                    f"CronJob {ns}/{name} made most of them: keep fewer finished Jobs and let each "
                    "one delete itself (and its pods) an hour after it ends.",
                    f"kubectl patch cronjob -n {q(ns)} {q(name)} --type merge -p {q(history)}",
                )
            )
        else:
            steps.append(
                Step(
                    f"Let Job {ns}/{name} delete itself (and its pods) an hour after it finishes; "
                    "set ttlSecondsAfterFinished in its manifest so the next release keeps it.",
                    f"kubectl patch job -n {q(ns)} {q(name)} --type merge -p {q(ttl)}",
                )
            )
    for ns in sorted({ns for (ns, kind, _), _n in owners.items() if kind == "Workflow"}):
        steps.append(
            Step(
                f"Argo keeps a workflow's pods until the Workflow is deleted: delete the finished "
                f"ones in {ns}, and set podGC (strategy OnPodCompletion) or a ttlStrategy in the "
                "workflows or the controller's workflowDefaults.",
                f"argo delete -n {q(ns)} --completed --older 1h",
            )
        )
    steps.append(
        Step(
            "AKS manages kube-controller-manager, so its --terminated-pod-gc-threshold cannot be "
            "lowered: clean up with ttlSecondsAfterFinished on Jobs, CronJob history limits, the "
            "GC settings of workflow engines (e.g. Argo's podGC), or a scheduled delete as above."
        )
    )
    return steps


def terminated_pods_backlog(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    failures = allocation_failures(snap, ctx.args.node) if snap.has("events") else {}
    nodes = [ctx.args.node] if ctx.args.node else sorted(n for n in snap.pods_by_node if n)
    for node in nodes:
        done = [p for p in snap.pods_by_node.get(node, ()) if p.terminated]
        if not done:
            continue
        max_pods = _max_pods(ctx, node)
        nf = failures.get(node)
        many = max(5, max_pods // 4) if max_pods else 10
        at_limit = bool(max_pods) and len(done) >= max_pods
        if not at_limit and not (nf is not None and len(done) >= many):
            continue
        phases = Counter(p.phase for p in done)
        owners = _owners(done)
        finished = [p.finished for p in done if p.finished]
        recent = sum(1 for t in finished if snap.now - t <= 3600)
        evidence = [
            f"{len(done)} terminated pods are still on {node} "
            f"({', '.join(f'{n} {ph}' for ph, n in sorted(phases.items()))})"
            + (f"; the node's maxPods is {max_pods}" if max_pods else ""),
            "made by: " + _made_by(owners),
        ]
        if finished:
            evidence.append(
                f"oldest finished {when(min(finished))}; {recent} finished in the last hour"
            )
        if nf is not None:
            evidence.append(
                f"the node also had {nf.occurrences} IP allocation failures "
                f"(latest {when(nf.last)})"
            )
        # Finished pods hold no address (holds_ip) and kubelet does not count them against
        # maxPods: without allocation failures on the node the pile-up is hygiene, not an outage.
        if nf is None:
            evidence.append(
                "no IP allocation failure on this node: finished pods hold no address and do "
                "not count against maxPods, so this is clean-up, not the cause of an outage"
            )
        yield Finding(
            code="podip.terminated-pods-backlog",
            severity=Severity.WARNING if nf is not None else Severity.INFO,
            title=f"{len(done)} finished pods pile up on {node}"
            + (f" (maxPods {max_pods})" if max_pods else ""),
            subject=f"node/{node}",
            evidence=tuple(evidence),
            cause="The article's cause 2: pods are created much faster than finished pods are "
            "garbage-collected. Finished pods keep their objects (and, with some plugins, their "
            "sandboxes and addresses) until something deletes them.",
            remediation=tuple(_cleanup_steps(node, owners)),
            docs=DOCS["gc"],
        )


CHECKS: tuple[Check, ...] = (
    Check(
        name="podip.terminated_pods_backlog",
        scenario=SCENARIO,
        codes=("podip.terminated-pods-backlog",),
        fn=terminated_pods_backlog,
        needs=("pods",),
        uses=("nodes", "events", CLUSTER),
    ),
)
