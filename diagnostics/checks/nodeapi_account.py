"""`nodeapi.account-not-found`: the service account asked about with `--as NAMESPACE/SA` cannot
exist because its namespace does not. A usage error the answer tells the requester privately
(diagnostics.diagnosis.missing_subject), like a service that does not exist.

Decided from the namespace list only: aksdiag does not read ServiceAccounts, so an account
missing from a namespace that exists is not detected here (the RBAC check then reports what
the name would be allowed to do). Every namespace holds `default`, so a missing namespace is
the one certain case.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from diagnostics.checks.base import DOCS, Check, CheckContext, q
from diagnostics.checks.nodeapi_common import SCENARIO
from diagnostics.diagnosis import Link, same_subject
from diagnostics.model import Finding, Severity, Step


def namespace_missing(ctx: CheckContext) -> bool:
    """Whether `--as` names a namespace the snapshot's namespace list does not hold."""
    snap, account = ctx.snapshot, ctx.args.as_account
    if account is None or not snap.has("namespaces") or not snap.namespaces:
        return False
    ns = account[0]
    return ns not in snap.namespaces_by_name and ns not in snap.pods_by_namespace


def account(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.args.as_account is None or not namespace_missing(ctx):
        return
    ns, name = ctx.args.as_account
    known = sorted(ctx.snapshot.namespaces_by_name)
    evidence = [f"namespace {ns} does not exist, so no service account {ns}/{name} can"]
    close = difflib.get_close_matches(ns, known, n=3, cutoff=0.5)
    if close:
        evidence.append(f"did you mean: {', '.join(f'{c}/{name}' for c in close)}")
    yield Finding(
        code="nodeapi.account-not-found",
        severity=Severity.WARNING,
        title=f"Service account {ns}/{name} does not exist (no namespace {ns})",
        subject=f"ServiceAccount/{ns}/{name}",
        evidence=tuple(evidence),
        cause="`--as` names the service account whose API access to check; its namespace "
        "is not in the cluster (a typo, or the workload was deployed elsewhere).",
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
        needs=("namespaces",),
        uses=("pods",),
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
