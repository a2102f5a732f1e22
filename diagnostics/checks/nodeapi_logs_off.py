"""`cluster.control-plane-logs-off`: no diagnostic setting sends the API server's audit log to a
Log Analytics workspace, so its 403s and 429s cannot be read. The fix is `az monitor
diagnostic-settings create` with the real cluster id (and the workspace of an existing setting
when there is one), `kube-audit-admin` by default and `kube-audit` only while investigating
denied reads: it is the costliest AKS log category.
"""

from __future__ import annotations

from collections.abc import Iterator

from diagnostics.checks.base import Check, CheckContext, q
from diagnostics.checks.nodeapi_common import SCENARIO
from diagnostics.controlplane import APISERVER_CATEGORY, audit_destination
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import CLUSTER, DIAGNOSTIC_SETTINGS

DOCS_AUDIT = "https://learn.microsoft.com/en-us/azure/aks/monitor-apiserver"


def cluster_id_arg(ctx: CheckContext) -> str:
    c = ctx.snapshot.cluster
    return q(c.id) if c and c.id else f'"$({ctx.az_aks("show", "--query id -o tsv")})"'


def _create(resource: str, name: str, workspace: str, categories: tuple[str, ...]) -> str:
    logs = ",".join(f'{{"category":"{c}","enabled":true}}' for c in categories)
    return (
        f"az monitor diagnostic-settings create --name {q(name)} --resource {resource} "
        f"--workspace {workspace} --logs {q('[' + logs + ']')} --export-to-resource-specific true"
    )


def logs_off(ctx: CheckContext) -> Iterator[Finding]:
    settings = ctx.snapshot.diagnostic_settings
    sent, _ = audit_destination(settings)
    if sent:
        return
    resource = cluster_id_arg(ctx)
    workspace = next(
        (q(s.workspace_id) for s in settings if s.workspace_id), "WORKSPACE_RESOURCE_ID"
    )
    evidence = [s.describe() for s in settings] or ["the cluster has no diagnostic setting"]
    evidence.append("neither kube-audit nor kube-audit-admin reaches a Log Analytics workspace")
    yield Finding(
        code="cluster.control-plane-logs-off",
        severity=Severity.INFO,
        title="The API server's audit log is not sent to Log Analytics",
        subject=f"ManagedCluster/{ctx.snapshot.cluster.name if ctx.snapshot.cluster else ctx.snapshot.label}",
        evidence=tuple(evidence),
        cause="On AKS the control plane is managed: its logs exist only where the cluster's "
        "diagnostic settings send them. Without the audit log, 403s and 429s seen by the API "
        "server (who was denied or throttled, doing what) cannot be checked.",
        remediation=(
            Step(
                "Send the write audit log and the API server log to a workspace, in the "
                "resource-specific tables (AKSAuditAdmin, AKSControlPlane). kube-audit-admin "
                "leaves out get and list events and costs a fraction of kube-audit.",
                _create(
                    resource,
                    "aksdiag-control-plane",
                    workspace,
                    ("kube-audit-admin", APISERVER_CATEGORY),
                ),
            ),
            Step(
                "While investigating denied reads (403 on get or list), add kube-audit too: it "
                "logs every request and is usually the largest and costliest AKS log category.",
                _create(resource, "aksdiag-audit-reads", workspace, ("kube-audit",)),
            ),
            Step(
                "Remove it when done.",
                f"az monitor diagnostic-settings delete --name aksdiag-audit-reads --resource {resource}",
            ),
        ),
        docs=DOCS_AUDIT,
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.logs_off",
        scenario=SCENARIO,
        codes=("cluster.control-plane-logs-off",),
        fn=logs_off,
        needs=(DIAGNOSTIC_SETTINGS,),
        uses=(CLUSTER,),
    ),
)
