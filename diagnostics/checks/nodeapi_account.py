"""`nodeapi.account-not-found`: the service account asked about with `--as NAMESPACE/SA` does
not exist. A usage error the answer tells the requester privately
(diagnostics.diagnosis.missing_subject), like a service that does not exist.

Decided from the ServiceAccount list (names only) when it was read; otherwise from the
namespace list alone (every namespace holds `default`, so only a missing namespace is certain).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.nodeapi_common import SCENARIO
from diagnostics.diagnosis import Link, same_subject
from diagnostics.model import Finding, Severity, Step


def _namespace_missing(ctx: CheckContext, ns: str) -> bool:
    snap = ctx.snapshot
    if snap.has("serviceaccounts") and snap.serviceaccounts:
        return ns not in {a.namespace for a in snap.serviceaccounts}
    if snap.has("namespaces") and snap.namespaces:
        return ns not in snap.namespaces_by_name and ns not in snap.pods_by_namespace
    return False


def account_missing(ctx: CheckContext) -> bool:
    """Whether the snapshot shows that `--as NAMESPACE/SA` does not exist."""
    snap, account = ctx.snapshot, ctx.args.as_account
    if account is None:
        return False
    if snap.has("serviceaccounts") and snap.serviceaccounts:
        return account not in {(a.namespace, a.name) for a in snap.serviceaccounts}
    return _namespace_missing(ctx, account[0])


def account(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.args.as_account is None or not account_missing(ctx):
        return
    ns, name = ctx.args.as_account
    snap = ctx.snapshot
    if not _namespace_missing(ctx, ns):
        in_ns = sorted(a.name for a in snap.serviceaccounts if a.namespace == ns)
        title = f"Service account {ns}/{name} does not exist"
        evidence = [f"namespace {ns} has {len(in_ns)} service accounts and none is named {name}"]
        close = [f"{ns}/{c}" for c in difflib.get_close_matches(name, in_ns, n=3, cutoff=0.5)]
    else:
        known = sorted(snap.namespaces_by_name or {a.namespace for a in snap.serviceaccounts})
        title = f"Service account {ns}/{name} does not exist (no namespace {ns})"
        evidence = [f"namespace {ns} does not exist, so no service account {ns}/{name} can"]
        close = [f"{c}/{name}" for c in difflib.get_close_matches(ns, known, n=3, cutoff=0.5)]
    if close:
        evidence.append(f"did you mean: {', '.join(close)}")
    elsewhere = sorted(
        a.namespace
        for a in snap.serviceaccounts
        if a.name == name and f"{a.namespace}/{name}" not in close
    )
    if elsewhere:
        evidence.append(f"a service account named {name} exists in: {', '.join(elsewhere[:6])}")
    yield Finding(
        code="nodeapi.account-not-found",
        severity=Severity.WARNING,
        title=title,
        subject=f"ServiceAccount/{ns}/{name}",
        evidence=tuple(evidence),
        cause="`--as` names the service account whose API access to check; it is not in the "
        "cluster (a typo, or the workload runs as another account or in another namespace).",
        remediation=(
            Step(
                "Find the account in any namespace.",
                f"kubectl get serviceaccounts -A --field-selector {q('metadata.name=' + name)}",
            ),
        ),
        docs=DOCS["rbac"],
    )


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.account",
        scenario=SCENARIO,
        codes=("nodeapi.account-not-found",),
        fn=account,
        needs_any=(("serviceaccounts",), ("namespaces",)),
        uses=("pods", "namespaces", "serviceaccounts"),
        applies=lambda args: args.as_account is not None,
    ),
)

# A service account that does not exist explains whatever else is said about it.
EXPLAINS = (
    Link(
        "nodeapi.account-not-found",
        "nodeapi.*",
        same_subject,
        "nothing can run as an account that does not exist",
    ),
)
