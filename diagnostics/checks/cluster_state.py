"""The ManagedCluster's own state, first in `apiserver`: stopped, a failed or long-running
operation (with the error AKS recorded), and a Kubernetes version out of AKS support.

Support is judged from the versions AKS offers in the cluster's region (`az aks get-versions`:
`versions.json`, or read live) when they were read, else from a dated copy of the AKS release calendar;
a cluster on the long-term support plan (`supportPlan: AKSLongTermSupport`) is judged by the LTS
window.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER, VERSIONS
from diagnostics.snapshot import ClusterInfo

IN_PROGRESS = {
    "creating",
    "updating",
    "upgrading",
    "scaling",
    "starting",
    "stopping",
    "deleting",
    "migrating",
    "reconciling",
}
MINUTES_PER_BATCH = 10  # one surge batch of an upgrade: drain, reimage, rejoin (generous)
MIN_EXPECTED_MINUTES = 60
VERSIONS_DOCS = "https://learn.microsoft.com/en-us/azure/aks/supported-kubernetes-versions"
LTS_DOCS = "https://learn.microsoft.com/en-us/azure/aks/long-term-support"
FAILED_DOCS = (
    "https://learn.microsoft.com/en-us/troubleshoot/azure/azure-kubernetes/"
    "create-upgrade-delete/cluster-node-virtual-machine-failed-state"
)

# The AKS release calendar (supported-kubernetes-versions), as of TABLE_DATE: minor -> end of
# community support (first day of the month, UTC); long-term support adds a year. Approximate by
# a month; the region's own `az aks get-versions` answer wins when the snapshot holds it.
TABLE_DATE = "2026-06"
CALENDAR: dict[int, str] = {
    27: "2024-07",
    28: "2024-11",
    29: "2025-03",
    30: "2025-07",
    31: "2025-11",
    32: "2026-03",
    33: "2026-06",
    34: "2026-11",
    35: "2027-03",
}
LTS_YEARS = 1
LTS_PLAN = "AKSLongTermSupport"


def _cluster(ctx: CheckContext) -> ClusterInfo:
    assert ctx.snapshot.cluster is not None  # guaranteed by needs=(CLUSTER,)
    return ctx.snapshot.cluster


def cluster_state(ctx: CheckContext) -> Iterator[Finding]:
    c = _cluster(ctx)
    if (c.power_state or "").lower() == "stopped":
        yield Finding(
            code="cluster.stopped",
            severity=Severity.CRITICAL,
            title=f"Cluster {c.name} is stopped: its API server is down by design",
            subject=c.id or c.name,
            evidence=(f"powerState.code = Stopped (provisioningState = {c.provisioning_state})",),
            cause="A stopped AKS cluster has no control plane and no nodes; every call to the "
            "API server times out until the cluster is started again.",
            remediation=(
                Step("Start the cluster (takes a few minutes).", ctx.az_aks("start")),
                Step(
                    "Confirm it runs again.", ctx.az_aks("show", "--query powerState.code -o tsv")
                ),
            ),
            docs=DOCS["start-stop"],
        )
    yield from _provisioning(ctx, c)
    yield from _pools_failed(ctx, c)
    yield from version_support(ctx, c)


def _reconcile(ctx: CheckContext) -> Step:
    # `az aks update` with no setting asks "reconcile to current settings? (y/N)" and fails
    # without a terminal; --yes counts as a setting, so the update runs without asking.
    return Step(
        "After fixing the cause, reconcile the cluster: an update with no change re-applies "
        "its current settings (`--yes` keeps az from asking for confirmation).",
        ctx.az_aks("update", "--yes"),
    )


def _expected_minutes(c: ClusterInfo) -> int:
    """How long a routine operation (an upgrade, the longest) should take on this cluster."""
    batches = sum(math.ceil(p.count / max(1, p.surge_nodes(p.count))) for p in c.agent_pools)
    return max(MIN_EXPECTED_MINUTES, batches * MINUTES_PER_BATCH)


def _provisioning(ctx: CheckContext, c: ClusterInfo) -> Iterator[Finding]:
    state = (c.provisioning_state or "").lower()
    if state == "failed":
        evidence = [f"provisioningState = {c.provisioning_state}"]
        if c.provisioning_error:
            evidence.append(f"status.provisioningError = {c.provisioning_error}")
        else:
            evidence.append("no status.provisioningError recorded: read the failed operation")
        yield Finding(
            code="cluster.provisioning-failed",
            severity=Severity.CRITICAL,
            title=f"Cluster {c.name} is in provisioningState Failed"
            + (f": {c.provisioning_error.split(':')[0]}" if c.provisioning_error else ""),
            subject=c.id or c.name,
            evidence=tuple(evidence),
            cause="The last operation on the cluster failed; the control plane or the nodes may "
            "be partly configured, and the API server may not answer.",
            remediation=(
                Step(
                    "Read the error AKS recorded.",
                    ctx.az_aks("show", "--query status.provisioningError"),
                ),
                Step(
                    "Find the failed operation and its error in the activity log.",
                    f"az monitor activity-log list --resource-id {q(c.id)} --status Failed "
                    "--offset 7d --query '[].{op:operationName.value, status:status.value, "
                    "error:properties.statusMessage}' -o json"
                    if c.id
                    else None,
                ),
                _reconcile(ctx),
            ),
            docs=FAILED_DOCS,
        )
        return
    if state not in IN_PROGRESS and state != "canceled":
        return
    expected = _expected_minutes(c)
    started = c.last_modified
    minutes = (ctx.snapshot.now - started) / 60 if started else None
    stuck = minutes is not None and minutes > expected
    evidence = [f"provisioningState = {c.provisioning_state}"]
    if minutes is not None:
        evidence.append(
            f"last operation began {minutes:.0f} min ago (systemData.lastModifiedAt); an "
            f"operation on this cluster should take at most ~{expected} min"
        )
    else:
        evidence.append("when the operation began is unknown (no systemData.lastModifiedAt)")
    if state == "canceled":
        severity, title = Severity.WARNING, "its last operation was cancelled"
        cause = (
            "The last operation was cancelled part-way; node pools and settings may be left "
            "between the old and the new configuration until an operation completes."
        )
    elif stuck:
        severity, title = Severity.WARNING, f"{c.provisioning_state} for {minutes:.0f} min"
        cause = (
            "The operation has run far longer than an upgrade of this cluster should; it is "
            "probably stuck (a node that does not drain: a PodDisruptionBudget that allows no "
            "eviction, quota, or a failing VM extension)."
        )
    else:
        severity, title = Severity.INFO, f"{c.provisioning_state} (an operation is running)"
        cause = (
            "Routine: an operation such as an upgrade or a scale is running. Nodes are "
            "replaced one surge batch at a time; the API server stays up, pods move."
        )
    yield Finding(
        code="cluster.provisioning-failed",
        severity=severity,
        title=f"Cluster {c.name}: {title}",
        subject=c.id or c.name,
        evidence=tuple(evidence),
        cause=cause,
        remediation=(
            Step("Watch the state.", ctx.az_aks("show", "--query provisioningState -o tsv")),
            Step(
                "See what the operation is doing to the nodes.",
                "kubectl get nodes -o wide && kubectl get pdb -A",
            ),
            *((_reconcile(ctx),) if severity is Severity.WARNING else ()),
        ),
        docs=FAILED_DOCS if severity is Severity.WARNING else DOCS["apiserver"],
    )


def _pools_failed(ctx: CheckContext, c: ClusterInfo) -> Iterator[Finding]:
    for pool in c.agent_pools:
        if pool.provisioning_state.lower() != "failed":
            continue
        evidence = [f"agentPoolProfiles[{pool.name}].provisioningState = Failed"]
        if pool.provisioning_error:
            evidence.append(f"status.provisioningError = {pool.provisioning_error}")
        yield Finding(
            code="cluster.provisioning-failed",
            severity=Severity.CRITICAL,
            title=f"Node pool {pool.name} is in provisioningState Failed",
            subject=f"{c.id or c.name}/agentPools/{pool.name}",
            evidence=tuple(evidence),
            cause="The last operation on this node pool failed; its nodes may not have "
            "joined the cluster.",
            remediation=(
                Step(
                    "Inspect the node pool and its recorded error.",
                    f"az aks nodepool show --resource-group {ctx.rg} --cluster-name "
                    f"{ctx.name} --name {q(pool.name)} "
                    "--query '{state:provisioningState, error:status.provisioningError}'",
                ),
                Step(
                    "Reconcile the node pool after fixing the cause (an update with no change).",
                    f"az aks nodepool update --resource-group {ctx.rg} --cluster-name "
                    f"{ctx.name} --name {q(pool.name)}",
                ),
            ),
            docs=FAILED_DOCS,
        )


def _minor(version: str) -> int | None:
    parts = version.split(".")
    try:
        return int(parts[1]) if len(parts) >= 2 and parts[0] == "1" else None
    except ValueError:
        return None


def _month(text: str, years: int = 0) -> float:
    year, month = (int(x) for x in text.split("-"))
    return float(calendar.timegm((year + years, month, 1, 0, 0, 0)))


def version_support(ctx: CheckContext, c: ClusterInfo) -> Iterator[Finding]:
    minor = _minor(c.kubernetes_version)
    if minor is None:
        return
    lts = c.support_plan == LTS_PLAN
    plan = "long-term support" if lts else "community support"
    offered = ctx.snapshot.kubernetes_versions
    evidence = [
        f"kubernetesVersion = {c.kubernetes_version}",
        f"supportPlan = {c.support_plan or 'KubernetesOfficial'} ({plan})",
    ]
    if offered is not None:
        match = [v for v in offered if v.minor == f"1.{minor}"]
        wanted = LTS_PLAN if lts else "KubernetesOfficial"
        if any(not v.support_plans or wanted in v.support_plans for v in match):
            return
        if not match and minor > max((_minor(v.minor) or 0 for v in offered), default=0):
            return  # newer than anything listed: not an outdated version
        evidence.append(
            f"AKS offers in {c.location or 'this region'}: "
            + ", ".join(
                v.minor + (" (LTS)" if LTS_PLAN in v.support_plans else "") for v in offered
            )
        )
    else:
        end = CALENDAR.get(minor)
        if end is None and minor > max(CALENDAR):
            return
        years = LTS_YEARS if lts else 0
        if end is not None and ctx.snapshot.now < _month(end, years):
            return
        evidence.append(
            f"the AKS release calendar (as of {TABLE_DATE}) ends {plan} for 1.{minor} in "
            + (f"{int(end[:4]) + years}{end[4:]}" if end else "the past")
        )
    steps = [
        Step("List the versions you can upgrade to.", ctx.az_aks("get-upgrades", "-o table")),
    ]
    if not lts:
        steps.append(
            Step(
                "If you cannot upgrade yet and AKS offers long-term support for this version "
                "(`az aks get-versions` lists AKSLongTermSupport), the Premium tier's LTS plan "
                "extends its support by a year.",
                ctx.az_aks("update", "--tier premium --k8s-support-plan AKSLongTermSupport"),
            )
        )
    yield Finding(
        code="cluster.version-outdated",
        severity=Severity.INFO,
        title=f"Kubernetes {c.kubernetes_version} is out of AKS {plan}",
        subject=c.id or c.name,
        evidence=tuple(evidence),
        cause="Out-of-support versions get no fixes, and their networking components "
        "(CNI, kube-proxy, konnectivity) miss known repairs.",
        remediation=tuple(steps),
        docs=LTS_DOCS if lts else VERSIONS_DOCS,
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="apiserver.cluster_state",
        scenario="apiserver",
        codes=("cluster.stopped", "cluster.provisioning-failed", "cluster.version-outdated"),
        fn=cluster_state,
        needs=(CLUSTER,),
        uses=(VERSIONS,),
    ),
)
