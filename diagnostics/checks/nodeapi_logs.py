"""The API server's side, from its control-plane logs (SPEC "Control-plane logs"): who got 403
Forbidden and who got 429 Too Many Requests, read from the audit log in Log Analytics, and
whether the cluster sends those logs anywhere at all (`cluster.control-plane-logs-off`).

What an identity is decides what to advise: a workload's service account may be granted exactly
what it was denied (derived from the denied requests, never a broad role); AKS-managed
identities (kube-system components, nodes, the control plane) are never widened, since AKS owns
their RBAC; `system:anonymous` is RBAC working. The `nodeapi.rbac-forbidden` code is raised
through the RBAC check in `nodeapi_rbac` (one owner per code); this module holds the logic.
`cluster.control-plane-logs-off` lives in `nodeapi_logs_off`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace

from diagnostics.checks.base import DOCS, Check, CheckContext, duration_text, q
from diagnostics.checks.nodeapi_common import SCENARIO
from diagnostics.controlplane import AuditRow
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import AUDIT_LOG

HANDFUL = 10  # fewer denials than this in the window are a lead, not an outage
MAX_IDENTITIES = 8
MAX_LINES = 6
# Namespaces whose service accounts AKS (or an AKS add-on) creates and whose RBAC it owns.
AKS_NAMESPACES = frozenset(
    {
        "kube-system",
        "kube-node-lease",
        "kube-public",
        "calico-system",
        "tigera-operator",
        "gatekeeper-system",
        "app-routing-system",
        "aks-command",
        "aks-istio-system",
    }
)
AKS_USERS = frozenset(
    {"aksService", "masterclient", "nodeclient", "hcpService", "aksProblemDetector"}
)
DOCS_APF = "https://kubernetes.io/docs/concepts/cluster-administration/flow-control/"


def identity_kind(identity: str) -> str:
    """anonymous, managed (AKS owns its RBAC), workload (a service account of yours) or user."""
    if identity in ("system:anonymous", "system:unauthenticated"):
        return "anonymous"
    if identity.startswith("system:serviceaccount:"):
        parts = identity.split(":")
        return "managed" if len(parts) > 2 and parts[2] in AKS_NAMESPACES else "workload"
    if identity.startswith("system:") or identity in AKS_USERS:
        return "managed"
    return "user"


def is_managed_namespace(namespace: str) -> bool:
    return namespace in AKS_NAMESPACES


def _hm(t: float | None) -> str:
    return time.strftime("%H:%M", time.gmtime(t)) if t else "?"


def request_text(r: AuditRow) -> str:
    if r.resource.startswith("/") or not r.resource:
        return f"{r.verb} {r.resource or '(no resource)'}"
    group = f" ({r.api_group})" if r.api_group else ""
    return f"{r.verb} {r.resource}{group}" + (
        f" in {r.namespace}" if r.namespace else " cluster-wide"
    )


def period(ctx: CheckContext) -> str:
    log = ctx.snapshot.audit
    seconds = ctx.args.since or (log.window_seconds if log else None)
    return f"in the last {duration_text(seconds)}" if seconds else "in the audit rows read"


def rows_with(ctx: CheckContext, code: int, identity: str | None = None) -> list[AuditRow]:
    """Audit rows with this status code, inside --since when given (relative to the data's now)."""
    log = ctx.snapshot.audit
    if log is None:
        return []
    rows = [r for r in log.rows if r.code == code and (identity is None or r.identity == identity)]
    if ctx.args.since:
        start = ctx.snapshot.now - ctx.args.since
        rows = [r for r in rows if r.last is None or r.last >= start]
    return rows


def by_identity(rows: list[AuditRow]) -> list[tuple[str, list[AuditRow]]]:
    groups: dict[str, list[AuditRow]] = defaultdict(list)
    for r in rows:
        groups[r.identity].append(r)
    return sorted(groups.items(), key=lambda kv: (-sum(r.count for r in kv[1]), kv[0]))


def _span(rows: list[AuditRow]) -> tuple[float | None, float | None]:
    firsts = [r.first for r in rows if r.first]
    lasts = [r.last for r in rows if r.last]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)


def row_lines(rows: list[AuditRow], code: int) -> list[str]:
    out = [
        f"{r.count} × {code} on {request_text(r)} (user agent {r.user_agent or 'none'}), "
        f"{_hm(r.first)}–{_hm(r.last)} UTC"
        for r in sorted(rows, key=lambda r: -r.count)[:MAX_LINES]
    ]
    if len(rows) > MAX_LINES:
        out.append(f"and {len(rows) - MAX_LINES} more kinds of request")
    return out


def log_notes(ctx: CheckContext) -> list[str]:
    log = ctx.snapshot.audit
    if log is None:
        return []
    notes = []
    if not log.reads_visible:
        notes.append(
            "only kube-audit-admin reaches Log Analytics: it leaves out get and list, so "
            "denied reads are not in these counts"
        )
    if log.truncated:
        notes.append("the query hit its row cap: the rarest combinations are not shown")
    if log.partial:
        notes.append(f"Log Analytics answered partially: {log.partial}")
    return notes


# ---------------------------------------------------------------- 403s
def _grant_yaml(sa_namespace: str, sa: str, rows: list[AuditRow]) -> str:
    """Roles granting exactly the denied requests: a Role per namespace, a ClusterRole for
    cluster-scoped requests and non-resource URLs, each bound to the service account."""
    scopes: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in rows:
        scopes[r.namespace if not r.resource.startswith("/") else ""][
            (r.api_group, r.resource)
        ].add(r.verb)
    name = f"{sa}-aksdiag-grant"[:253]
    docs = []
    for ns in sorted(scopes):
        kind = "Role" if ns else "ClusterRole"
        meta = f"  name: {name}\n" + (f"  namespace: {ns}\n" if ns else "")
        rules = ""
        for (group, res), verbs in sorted(scopes[ns].items()):
            vs = ", ".join(f'"{v}"' for v in sorted(verbs))
            if res.startswith("/"):
                rules += f'  - nonResourceURLs: ["{res}"]\n    verbs: [{vs}]\n'
            else:
                rules += (
                    f'  - apiGroups: ["{group}"]\n    resources: ["{res}"]\n    verbs: [{vs}]\n'
                )
        docs.append(
            f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n{meta}rules:\n{rules}"
        )
        docs.append(
            f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}Binding\nmetadata:\n{meta}"
            f"subjects:\n  - kind: ServiceAccount\n    name: {sa}\n    namespace: {sa_namespace}\n"
            f"roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: {kind}\n  name: {name}\n"
        )
    return "kubectl apply -f - <<'EOF'\n" + "---\n".join(docs) + "EOF"


def can_i(rows: list[AuditRow], user: str) -> str:
    cmds = []
    for r in sorted(rows, key=lambda r: -r.count)[:3]:
        what = (
            r.resource
            if r.resource.startswith("/")
            else (f"{r.resource}.{r.api_group}" if r.api_group else r.resource)
        )
        ns = (
            f" --namespace {q(r.namespace)}"
            if r.namespace and not r.resource.startswith("/")
            else ""
        )
        cmds.append(f"kubectl auth can-i {q(r.verb)} {q(what)} --as={q(user)}{ns}")
    return " && ".join(dict.fromkeys(cmds))


def forbidden_severity(kind: str, total: int, with_as: bool = False) -> Severity:
    if kind == "anonymous" or total < HANDFUL:
        return Severity.WARNING if with_as and kind == "workload" else Severity.INFO
    return {"workload": Severity.CRITICAL}.get(kind, Severity.WARNING)


def forbidden_steps(ctx: CheckContext, identity: str, rows: list[AuditRow]) -> list[Step]:
    kind = identity_kind(identity)
    if kind == "workload":
        _, _, ns, sa = identity.split(":", 3)
        return [
            Step(
                f"Decide whether {ns}/{sa} should make these calls at all: a 403 is RBAC doing "
                "its job when an app asks for more than it needs or looks in the wrong namespace. "
                "If it should, grant exactly what was denied, and nothing more:",
                _grant_yaml(ns, sa, rows),
            ),
            Step("Check the result as the API server sees it.", can_i(rows, identity)),
        ]
    if kind == "managed":
        name = identity.rsplit(":", 1)[-1]
        return [
            Step(
                f"{identity} belongs to AKS (a kube-system component, a node or the control "
                "plane): AKS owns its RBAC, so do not grant it more. Look for a change to the "
                "bindings AKS installed for it, or an admission policy rejecting it.",
                f"kubectl get clusterrolebindings,rolebindings --all-namespaces -o wide | grep -F -- {q(name)}",
            ),
            Step(
                "If nothing was changed and the denials go on, open an Azure support request "
                "with this evidence. (If it is a component you installed yourself into "
                "kube-system, treat it as your workload: grant exactly what it was denied.)"
            ),
        ]
    if kind == "anonymous":
        return [
            Step(
                "Requests without credentials reach the API server (scanners on a public "
                "endpoint, or a client that sends no token) and RBAC denies them, as it should. "
                "See who may reach the endpoint at all:",
                ctx.az_aks("show", "--query apiServerAccessProfile"),
            )
        ]
    return [
        Step(
            f"{identity} is a person or an external identity. If they need this, grant it with "
            "Azure RBAC for Kubernetes or a RoleBinding; check what they may do now:",
            can_i(rows, identity),
        )
    ]


def forbidden_finding(ctx: CheckContext, identity: str, rows: list[AuditRow]) -> Finding:
    kind = identity_kind(identity)
    total = sum(r.count for r in rows)
    first, last = _span(rows)
    top = sorted(rows, key=lambda r: -r.count)
    what = request_text(top[0]) + (", …" if len(top) > 1 else "")
    who = {"managed": " (AKS-managed)", "anonymous": " (unauthenticated)"}.get(kind, "")
    causes = {
        "workload": "The API server's RBAC authorizer denied these requests: no binding grants "
        "this service account those verbs on those resources. The workload keeps asking, so "
        "what it needs the answers for (its cache, leader election, discovery) is not happening.",
        "managed": "An AKS component is being denied. AKS installs and owns the RBAC of its "
        "components; denials usually follow a change to those bindings or a policy engine "
        "(Gatekeeper, Kyverno) rejecting its requests.",
        "anonymous": "Unauthenticated requests are denied by RBAC: that is the API server "
        "protecting itself, not a fault.",
        "user": "RBAC denied a person or an external identity: usually RBAC working as configured.",
    }
    return Finding(
        code="nodeapi.rbac-forbidden",
        severity=forbidden_severity(kind, total),
        title=f"{identity}{who} got {total} × 403 ({what}) {period(ctx)}, last at {_hm(last)} UTC",
        subject=f"Identity/{identity}",
        evidence=tuple(
            [
                f"{total} × 403 Forbidden between {_hm(first)} and {_hm(last)} UTC (audit log)",
                *row_lines(rows, 403),
                *log_notes(ctx),
            ]
        ),
        cause=causes[kind],
        remediation=tuple(forbidden_steps(ctx, identity, rows)),
        docs=DOCS["rbac"],
    )


def audit_forbidden(ctx: CheckContext) -> Iterator[Finding]:
    """`nodeapi.rbac-forbidden` without --as: every identity the audit log shows denied."""
    groups = by_identity(rows_with(ctx, 403))
    for identity, rows in groups[:MAX_IDENTITIES]:
        yield forbidden_finding(ctx, identity, rows)
    rest = groups[MAX_IDENTITIES:]
    if rest:
        n = sum(r.count for _, rows in rest for r in rows)
        yield Finding(
            code="nodeapi.rbac-forbidden",
            severity=Severity.INFO,
            title=f"{len(rest)} more identities got {n} × 403 {period(ctx)}",
            subject="Identity/others",
            evidence=tuple(f"{i}: {sum(r.count for r in rows)} × 403" for i, rows in rest[:20]),
            cause="Fewer denials than the identities above; listed for completeness.",
            docs=DOCS["rbac"],
        )


def managed_account(
    ctx: CheckContext,
    user: str,
    subject: str,
    evidence: list[str],
    audit: list[AuditRow],
    denied: bool,
) -> Finding:
    """`--as` an AKS-managed account: report what was found, never advise widening it."""
    if audit:
        return replace(
            forbidden_finding(ctx, user, audit), subject=subject, evidence=tuple(evidence)
        )
    _, _, namespace, name = user.split(":", 3)
    return Finding(
        code="nodeapi.rbac-managed",
        severity=Severity.INFO,
        title=f"{namespace}/{name} is an AKS-managed account: AKS owns its RBAC",
        subject=subject,
        evidence=tuple(evidence),
        cause=f"Components in {namespace} get exactly the rights AKS gives them; "
        + (
            "that it may not list pods or read discovery is by design unless the audit log "
            "shows it denied."
            if denied
            else "nothing it needs for the article's test is denied."
        ),
        remediation=(
            Step(
                "Do not grant it more. If it fails, look at its own pods and the bindings AKS "
                "installed for it.",
                "kubectl get clusterrolebindings,rolebindings --all-namespaces -o wide | "
                f"grep -F -- {q(name)}",
            ),
        ),
        docs=DOCS["rbac"],
    )


# ---------------------------------------------------------------- 429s
def throttled(ctx: CheckContext) -> Iterator[Finding]:
    for identity, rows in by_identity(rows_with(ctx, 429))[:MAX_IDENTITIES]:
        kind = identity_kind(identity)
        total = sum(r.count for r in rows)
        first, last = _span(rows)
        agents = ", ".join(dict.fromkeys(r.user_agent for r in rows if r.user_agent)) or "none"
        client = (
            "This identity belongs to AKS: do not tune it; if the throttling goes on, open an "
            "Azure support request."
            if kind == "managed"
            else "Fix the client: make fewer requests (informers and watches instead of "
            "repeated lists; fewer replicas polling), or, if the load is legitimate, raise its "
            "client-side QPS and burst (client-go defaults to 5 QPS, burst 10; controllers "
            "usually expose --kube-api-qps and --kube-api-burst)."
        )
        yield Finding(
            code="nodeapi.apiserver-throttled",
            severity=Severity.WARNING if total >= HANDFUL else Severity.INFO,
            title=f"{identity} was throttled: {total} × 429 {period(ctx)}, last at {_hm(last)} UTC",
            subject=f"Identity/{identity}",
            evidence=tuple(
                [
                    f"{total} × 429 Too Many Requests between {_hm(first)} and {_hm(last)} UTC, "
                    f"user agent {agents}",
                    *row_lines(rows, 429),
                    *log_notes(ctx),
                ]
            ),
            cause="The API server sheds load with API Priority and Fairness: when the priority "
            "level a request's flow schema maps to has no free seat and its queues are full, it "
            "answers 429. The client retries, adds latency, and other clients of the same "
            "priority level suffer too.",
            remediation=(
                Step(
                    "See the flow schemas (which one matches this client) and the priority levels "
                    "(their concurrency shares and queues).",
                    "kubectl get flowschemas,prioritylevelconfigurations",
                ),
                Step(
                    "See which priority levels reject requests, as the API server counts them.",
                    "kubectl get --raw /metrics | grep -E '^apiserver_flowcontrol_rejected_requests_total'",
                ),
                Step(client),
                Step(
                    "A Free-tier control plane has less capacity than the Standard tier; check "
                    "which one the cluster has.",
                    ctx.az_aks("show", "--query sku"),
                ),
            ),
            docs=DOCS_APF,
        )


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.throttled",
        scenario=SCENARIO,
        codes=("nodeapi.apiserver-throttled",),
        fn=throttled,
        needs=(AUDIT_LOG,),
    ),
)
