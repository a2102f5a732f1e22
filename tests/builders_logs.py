"""Builders for control-plane log fixtures: audit events in the three shapes they reach aksdiag
(aksdiag's aggregated rows, raw `AKSAudit` rows, raw `AzureDiagnostics` rows with `log_s`), as
`az monitor log-analytics query` prints them (every value a string, dynamic columns as JSON
strings), and diagnostic settings as `az monitor diagnostic-settings list` / ARM return them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from builders import SUB

CLUSTER_ID = (
    f"/subscriptions/{SUB}/resourcegroups/rg-prod/providers/Microsoft.ContainerService/"
    "managedClusters/prod"
)
WORKSPACE = (
    f"/subscriptions/{SUB}/resourceGroups/rg-monitor/providers/"
    "Microsoft.OperationalInsights/workspaces/ops-logs"
)
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CAPTURED = NOW.isoformat().replace("+00:00", "Z")
MODES = ("aggregated", "AKSAudit", "AzureDiagnostics")


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")  # 7 fraction digits, as Log Analytics writes


def spec(
    identity: str,
    verb: str,
    resource: str,
    namespace: str,
    code: int,
    agent: str,
    count: int,
    first_min: int = 58,
    last_min: int = 19,
    group: str = "",
) -> dict[str, Any]:
    """One kind of request: `count` events from `first_min` to `last_min` minutes before NOW."""
    return dict(
        identity=identity,
        verb=verb,
        resource=resource,
        namespace=namespace,
        code=code,
        agent=agent,
        count=count,
        first=NOW - timedelta(minutes=first_min),
        last=NOW - timedelta(minutes=last_min),
        group=group,
    )


def _events(s: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    n = s["count"]
    for i in range(n):
        t = s["first"] + (s["last"] - s["first"]) * (i / max(1, n - 1))
        res, _, sub = s["resource"].partition("/")
        ref: dict[str, Any] = {"resource": res, "apiVersion": "v1"}
        if sub:
            ref["subresource"] = sub
        if s["namespace"]:
            ref["namespace"] = s["namespace"]
        if s["group"]:
            ref["apiGroup"] = s["group"]
        out.append(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": str(uuid.uuid4()),
                "stage": "ResponseComplete",
                "requestURI": f"/api/v1/{s['resource']}",
                "verb": s["verb"],
                "user": {"username": s["identity"], "groups": ["system:authenticated"]},
                "sourceIPs": ["10.244.1.17"],
                "userAgent": s["agent"],
                "objectRef": ref,
                "responseStatus": {"metadata": {}, "code": s["code"]},
                "requestReceivedTimestamp": iso(t),
                "stageTimestamp": iso(t),
            }
        )
    return out


def rows(specs: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """The rows `az monitor log-analytics query -o json` prints for these requests."""
    if mode == "aggregated":
        return [
            {
                "Identity": s["identity"],
                "Verb": s["verb"],
                "Resource": s["resource"],
                "ApiGroup": s["group"],
                "Namespace": s["namespace"],
                "Code": str(s["code"]),
                "UserAgent": s["agent"],
                "Requests": str(s["count"]),
                "FirstSeen": iso(s["first"]),
                "LastSeen": iso(s["last"]),
                "TableName": "PrimaryResult",
            }
            for s in specs
        ]
    out = []
    for s in specs:
        for e in _events(s):
            if mode == "AKSAudit":
                out.append(
                    {
                        "TimeGenerated": e["stageTimestamp"],
                        "Category": "kube-audit",
                        "AuditId": e["auditID"],
                        "Verb": e["verb"],
                        "RequestUri": e["requestURI"],
                        "User": json.dumps(e["user"]),
                        "ObjectRef": json.dumps(e["objectRef"]),
                        "ResponseStatus": json.dumps(e["responseStatus"]),
                        "UserAgent": e["userAgent"],
                        "Level": "Metadata",
                        "Stage": "ResponseComplete",
                        "TableName": "PrimaryResult",
                    }
                )
            else:
                out.append(
                    {
                        "TimeGenerated": e["stageTimestamp"],
                        "Category": "kube-audit",
                        "ResourceId": CLUSTER_ID.upper(),
                        "log_s": json.dumps(e),
                        "pod_s": "kube-apiserver-7d9c6b5f4-abcde",
                        "TableName": "PrimaryResult",
                    }
                )
    return out


def setting(
    name: str,
    categories: list[str],
    workspace: str | None = WORKSPACE,
    dedicated: bool = True,
    storage: str | None = None,
) -> dict[str, Any]:
    """A diagnostic setting as `az monitor diagnostic-settings list -o json` prints it."""
    return {
        "id": f"{CLUSTER_ID}/providers/microsoft.insights/diagnosticSettings/{name}",
        "name": name,
        "type": "Microsoft.Insights/diagnosticSettings",
        "logAnalyticsDestinationType": "Dedicated" if dedicated and workspace else None,
        "workspaceId": workspace,
        "storageAccountId": storage,
        "logs": [
            {
                "category": c,
                "categoryGroup": None,
                "enabled": True,
                "retentionPolicy": {"days": 0, "enabled": False},
            }
            for c in categories
        ],
        "metrics": [],
        "resourceGroup": "rg-prod",
    }


# The incident the issue describes, and its noise.
PROMETHEUS = spec(
    "system:serviceaccount:monitoring:prometheus",
    "list",
    "pods",
    "",
    403,
    "prometheus/v2.53.0",
    412,
    last_min=19,
)
ANONYMOUS = spec("system:anonymous", "get", "/", "", 403, "Go-http-client/1.1", 3)
KUBE_PROXY = spec(
    "system:serviceaccount:kube-system:kube-proxy",
    "list",
    "endpointslices",
    "",
    403,
    "kube-proxy/v1.32.5",
    40,
    group="discovery.k8s.io",
)
THROTTLED = spec(
    "system:serviceaccount:ci:deployer",
    "list",
    "configmaps",
    "ci",
    429,
    "argocd-application-controller/v2.11",
    260,
)
HEALTHY_READS = spec(
    "system:serviceaccount:monitoring:prometheus", "list", "pods", "", 200, "prometheus/v2.53.0", 30
)
