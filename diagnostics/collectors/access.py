"""SubjectAccessReview for `--as NAMESPACE/SERVICEACCOUNT`: may that service account do what
the article's in-pod test does? The permissions asked are exactly the ones the RBAC check
needs (`diagnostics.checks.nodeapi_rbac.needed`: list pods in its namespace, GET /api), so the
live answers and the check's own evaluation of RBAC objects speak of the same things. The
answers become `Snapshot.access_reviews`. Creating a SubjectAccessReview changes nothing.
"""

from __future__ import annotations

from typing import Any

from diagnostics.checks.nodeapi_rbac import Account, needed
from diagnostics.collectors.k8s import KubeApi, ReadError
from diagnostics.snapshot import AccessReview

SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def review(api: KubeApi, namespace: str, service_account: str) -> list[AccessReview]:
    """One SubjectAccessReview per permission the account needs."""
    account = Account(namespace, service_account)
    out: list[AccessReview] = []
    for perm in needed(account):
        spec: dict[str, Any] = {"user": account.user, "groups": list(account.groups)}
        if perm.url:
            spec["nonResourceAttributes"] = {"path": perm.url, "verb": perm.verb}
        else:
            spec["resourceAttributes"] = {
                "namespace": perm.namespace,
                "verb": perm.verb,
                "group": perm.group,
                "resource": perm.resource,
            }
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        status = api.post(SAR_PATH, body).get("status")
        if not isinstance(status, dict):
            raise ReadError("the SubjectAccessReview answer has no status")
        out.append(
            AccessReview(
                namespace=namespace,
                service_account=service_account,
                verb=perm.verb,
                resource=perm.url or perm.resource,
                target_namespace=perm.namespace,
                allowed=bool(status.get("allowed")) and not status.get("denied"),
                reason=str(status.get("reason") or status.get("evaluationError") or ""),
            )
        )
    return out
