"""pod-ip: terminated pods that pile up on a node faster than they are garbage-collected (the
article's cause 2), and what cleans them up on AKS, where the controller manager is managed."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, CheckContext, q
from diagnostics.checks.podip_nodes import allocation_failures, listing, pool_of, when
from diagnostics.model import Finding, Severity, Step
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
    return Counter((p.namespace, p.owner_kind or "Pod", p.owner_name or p.name) for p in done)


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
    seen_cron: set[tuple[str, str]] = set()
    jobs = [(ns, name) for (ns, kind, name), _ in owners.most_common() if kind == "Job"]
    for ns, job in jobs[:3]:
        m = _CRONJOB_JOB.match(job)
        if m and (ns, m["cronjob"]) not in seen_cron:
            seen_cron.add((ns, m["cronjob"]))
            steps.append(
                Step(
                    f"Job {ns}/{job} looks made by CronJob {m['cronjob']}: keep fewer finished "
                    "Jobs and let each one delete itself an hour after it ends.",
                    f"kubectl patch cronjob -n {q(ns)} {q(m['cronjob'])} --type merge -p {q(history)}",
                )
            )
        elif not m:
            steps.append(
                Step(
                    f"Let Job {ns}/{job} delete itself (and its pods) an hour after it finishes; "
                    "set ttlSecondsAfterFinished in its manifest so the next release keeps it.",
                    f"kubectl patch job -n {q(ns)} {q(job)} --type merge -p {q(ttl)}",
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
            "made by: "
            + listing(f"{kind} {ns}/{name} ({n})" for (ns, kind, name), n in owners.most_common()),
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
        yield Finding(
            code="podip.terminated-pods-backlog",
            severity=Severity.WARNING,
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
