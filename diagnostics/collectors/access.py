"""SubjectAccessReview for `--as NAMESPACE/SERVICEACCOUNT`: may that service account do what
the article's in-pod test does (list pods through the API server) and the usual reads an app
makes of its own namespace? The answers become `Snapshot.access_reviews` for
`nodeapi.rbac-forbidden`. Creating a SubjectAccessReview is read-only: it changes nothing.
"""

from __future__ import annotations

from diagnostics.collectors.k8s import KubeApi, ReadError
from diagnostics.snapshot import AccessReview

SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
OWN = ""  # the service account's own namespace

# (verb, group, resource, namespace): the article's `GET /api/v1/namespaces/default/pods`,
# and reads in the account's own namespace.
REVIEWS: tuple[tuple[str, str, str, str], ...] = (
    ("list", "", "pods", "default"),
    ("list", "", "pods", OWN),
    ("get", "", "pods", OWN),
    ("watch", "", "pods", OWN),
    ("list", "", "services", OWN),
    ("list", "discovery.k8s.io", "endpointslices", OWN),
)


def review(api: KubeApi, namespace: str, service_account: str) -> list[AccessReview]:
    """Ask the API server, one SubjectAccessReview per (verb, resource, namespace)."""
    user = f"system:serviceaccount:{namespace}:{service_account}"
    groups = [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]
    out: list[AccessReview] = []
    seen: set[tuple[str, str, str]] = set()
    for verb, group, resource, target in REVIEWS:
        target = target or namespace
        if (verb, resource, target) in seen:
            continue
        seen.add((verb, resource, target))
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": groups,
                "resourceAttributes": {
                    "namespace": target, "verb": verb, "group": group, "resource": resource,
                },
            },
        }  # fmt: skip
        answer = api.post(SAR_PATH, body)
        status = answer.get("status")
        if not isinstance(status, dict):
            raise ReadError("the SubjectAccessReview answer has no status")
        out.append(
            AccessReview(
                namespace=namespace,
                service_account=service_account,
                verb=verb,
                resource=resource,
                target_namespace=target,
                allowed=bool(status.get("allowed")) and not status.get("denied"),
                reason=str(status.get("reason") or status.get("evaluationError") or ""),
            )
        )
    return out
