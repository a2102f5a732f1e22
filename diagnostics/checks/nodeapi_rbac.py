"""`nodeapi.rbac-forbidden`, the article's 403. Without `--as`: every identity the API server's
audit log shows denied (see `nodeapi_logs`). With `--as NAMESPACE/SA`: may that service account
do what the article's in-pod curl does (list pods in its namespace, read the API's discovery
document)? The audit log, when read, says whether it actually asked and was denied, which
decides severity and the fix; without it, a denied pod list is only a lead (least-privilege apps
never list pods). AKS-managed accounts (kube-system components) are never advised more rights.

Live SubjectAccessReview answers (`Snapshot.access_reviews`) win when present; otherwise the
RBAC objects are evaluated the way the API server's RBAC authorizer does: ClusterRoleBindings
grant everywhere, RoleBindings grant in their namespace (also when they bind a ClusterRole),
subjects match as ServiceAccount, User `system:serviceaccount:NS:SA`, or the groups every
service account belongs to; `*` matches any verb, resource and API group; aggregated
ClusterRoles count with the rules they collect.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property

from diagnostics.checks import nodeapi_account, nodeapi_logs
from diagnostics.checks.base import DOCS, Check, CheckContext, ScenarioArgs, q
from diagnostics.checks.nodeapi_common import SCENARIO, in_pod_test_step
from diagnostics.model import Finding, Severity, Step
from diagnostics.resources import ACCESS_REVIEW, AUDIT_LOG
from diagnostics.snapshot import AccessReview, RbacRule, Role, RoleBinding, Snapshot, Subject

RBAC_SOURCES = ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
MAX_LISTED = 6


@dataclass(frozen=True, slots=True)
class Permission:
    """One request: a verb on a resource in a namespace, or on a non-resource URL."""

    verb: str
    resource: str = ""
    group: str = ""
    namespace: str = ""
    url: str = ""

    def __str__(self) -> str:
        if self.url:
            return f"{self.verb} {self.url}"
        where = f" in {self.namespace}" if self.namespace else " cluster-wide"
        return f"{self.verb} {self.resource}{where}"

    def can_i(self, user: str) -> str:
        what = self.url or self.resource
        ns = f" --namespace {q(self.namespace)}" if self.namespace else ""
        return f"kubectl auth can-i {q(self.verb)} {q(what)} --as={q(user)}{ns}"


@dataclass(frozen=True, slots=True)
class Account:
    namespace: str
    name: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> tuple[str, ...]:
        return (
            "system:serviceaccounts",
            f"system:serviceaccounts:{self.namespace}",
            "system:authenticated",
        )


def needed(account: Account) -> tuple[Permission, ...]:
    return (
        Permission("list", "pods", "", account.namespace),
        Permission("get", url="/api"),
    )


def subject_matches(subject: Subject, account: Account, binding_namespace: str) -> bool:
    if subject.kind == "ServiceAccount":
        # The authorizer defaults a ServiceAccount subject's namespace to the binding's.
        return (
            subject.name == account.name
            and (subject.namespace or binding_namespace) == account.namespace
        )
    if subject.kind == "User":
        return subject.name == account.user
    if subject.kind == "Group":
        return subject.name in account.groups
    return False


def _has(values: tuple[str, ...], wanted: str) -> bool:
    return "*" in values or wanted in values


def rule_allows(rule: RbacRule, perm: Permission) -> bool:
    if not _has(rule.verbs, perm.verb):
        return False
    if perm.url:
        return any(
            u == "*" or u == perm.url or (u.endswith("*") and perm.url.startswith(u[:-1]))
            for u in rule.non_resource_urls
        )
    if rule.resource_names:  # a rule limited to names never authorizes a list or a collection
        return False
    return _has(rule.api_groups, perm.group) and _has(rule.resources, perm.resource)


@dataclass(frozen=True, slots=True)
class Grant:
    binding: str  # "RoleBinding shop/x", "ClusterRoleBinding y"
    role: str  # "ClusterRole view"
    subject: str  # "ServiceAccount shop/x", "Group system:authenticated"

    def __str__(self) -> str:
        return f"{self.binding} -> {self.role} (as {self.subject})"


class RbacIndex:
    """The RBAC objects of a snapshot, indexed once."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.cluster_roles = {r.name: r for r in snap.clusterroles}
        self.roles = {(r.namespace, r.name): r for r in snap.roles}

    @cached_property
    def _aggregated(self) -> dict[str, tuple[RbacRule, ...]]:
        memo: dict[str, tuple[RbacRule, ...]] = {}

        def resolve(role: Role, seen: frozenset[str]) -> tuple[RbacRule, ...]:
            if role.name in memo:
                return memo[role.name]
            rules = list(role.rules)
            for sel in role.aggregation:
                for other in self.snap.clusterroles:
                    if (
                        other.name in seen
                        or other.name == role.name
                        or not sel.matches(other.labels)
                    ):
                        continue
                    for r in resolve(other, seen | {role.name}):
                        if r not in rules:
                            rules.append(r)
            memo[role.name] = tuple(rules)
            return memo[role.name]

        for role in self.snap.clusterroles:
            resolve(role, frozenset())
        return memo

    def rules(self, kind: str, name: str, namespace: str) -> tuple[RbacRule, ...] | None:
        """A binding's roleRef -> its rules; None when the role does not exist."""
        if kind == "ClusterRole":
            return self._aggregated.get(name) if name in self.cluster_roles else None
        role = self.roles.get((namespace, name))
        return role.rules if role else None

    def bindings(self, account: Account) -> list[tuple[RoleBinding, Subject]]:
        """Bindings that apply to the account: cluster-wide, and in its namespace."""
        out = []
        for b in self.snap.clusterrolebindings:
            out += [(b, s) for s in b.subjects if subject_matches(s, account, "")]
        for b in self.snap.rolebindings:
            if b.namespace == account.namespace:
                out += [(b, s) for s in b.subjects if subject_matches(s, account, b.namespace)]
        return out

    def grants(self, account: Account, perm: Permission) -> list[Grant]:
        out = []
        for binding, subject in self.bindings(account):
            cluster_wide = not binding.namespace
            if perm.url and not cluster_wide:
                continue  # non-resource URLs are granted only by ClusterRoleBindings
            if not cluster_wide and perm.namespace != binding.namespace:
                continue
            rules = self.rules(binding.role_kind, binding.role_name, binding.namespace)
            if rules and any(rule_allows(r, perm) for r in rules):
                out.append(_grant(binding, subject))
        return out


def _grant(binding: RoleBinding, subject: Subject) -> Grant:
    kind = "RoleBinding" if binding.namespace else "ClusterRoleBinding"
    where = f"{binding.namespace}/{binding.name}" if binding.namespace else binding.name
    who = f"{subject.kind} {subject.namespace + '/' if subject.namespace else ''}{subject.name}"
    return Grant(f"{kind} {where}", f"{binding.role_kind} {binding.role_name}", who)


def _binding_lines(index: RbacIndex, account: Account) -> list[str]:
    """What the account is bound to, excluding the groups every authenticated user is in."""
    lines = []
    for binding, subject in index.bindings(account):
        if subject.kind == "Group" and subject.name == "system:authenticated":
            continue
        grant = _grant(binding, subject)
        rules = index.rules(binding.role_kind, binding.role_name, binding.namespace)
        if rules is None:
            lines.append(f"{grant}: that {binding.role_kind} does not exist")
        else:
            summary = "; ".join(
                f"{','.join(r.verbs)} {','.join(r.resources or r.non_resource_urls)}"
                for r in rules[:3]
            )
            lines.append(f"{grant}: {summary or 'no rules'}")
    return lines[:MAX_LISTED]


def _from_reviews(reviews: list[AccessReview]) -> tuple[list[str], list[str]]:
    denied: list[str] = []
    allowed: list[str] = []
    for r in reviews:
        what = f"{r.verb} {r.resource}" + (
            f" in {r.target_namespace}" if r.target_namespace else ""
        )
        line = f"SubjectAccessReview: {what} -> {'allowed' if r.allowed else 'denied'}"
        line += f" ({r.reason})" if r.reason else ""
        (allowed if r.allowed else denied).append(line)
    return denied, allowed


def rbac(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.args.as_account is None:
        yield from nodeapi_logs.audit_forbidden(ctx)
        return
    if nodeapi_account.account_missing(ctx):
        return  # nodeapi.account-not-found says so
    account = Account(*ctx.args.as_account)
    snap = ctx.snapshot
    perms = needed(account)
    reviews = [
        r
        for r in snap.access_reviews
        if (r.namespace, r.service_account) == (account.namespace, account.name)
    ]
    index = RbacIndex(snap)
    evaluated = bool(reviews) or all(snap.has(s) for s in RBAC_SOURCES)
    if not evaluated:  # the audit log alone: what the account asked for and was denied
        denied_lines: list[str] = []
        allowed_lines = ["RBAC objects and access reviews were not read: the audit log answers"]
        denied_pods = denied_api = False
    elif reviews:
        denied_lines, allowed_lines = _from_reviews(reviews)
        denied_pods = any(not r.allowed and r.resource == "pods" for r in reviews)
        denied_api = any(not r.allowed and r.resource.startswith("/") for r in reviews)
    else:
        grants = {p: index.grants(account, p) for p in perms}
        denied_lines = [f"no binding grants {account.user} `{p}`" for p in perms if not grants[p]]
        allowed_lines = [f"`{p}` granted by {grants[p][0]}" for p in perms if grants[p]]
        denied_pods, denied_api = not grants[perms[0]], not grants[perms[1]]
    running = [
        p.name
        for p in snap.pods_by_namespace.get(account.namespace, [])
        if p.service_account == account.name and not p.terminated
    ]
    evidence = denied_lines + allowed_lines
    if evaluated and not reviews:
        evidence += _binding_lines(index, account) or [
            f"no RoleBinding or ClusterRoleBinding names {account.user}"
        ]
    if running:
        shown = ", ".join(running[:MAX_LISTED]) + (
            f" and {len(running) - MAX_LISTED} more" if len(running) > MAX_LISTED else ""
        )
        evidence.append(f"pods running as this account: {shown}")
    subject = f"ServiceAccount/{account.namespace}/{account.name}"
    test = in_pod_test_step(account.namespace, account.name)
    audit = nodeapi_logs.rows_with(ctx, 403, account.user)
    if audit:
        denials = sum(r.count for r in audit)
        evidence = [
            f"audit log: {denials} × 403 for this account {nodeapi_logs.period(ctx)}",
            *nodeapi_logs.row_lines(audit, 403),
            *nodeapi_logs.log_notes(ctx),
            *evidence,
        ]
    elif snap.audit is not None:
        evidence.append(
            f"audit log: no 403 for this account {nodeapi_logs.period(ctx)}"
            + ("" if snap.audit.reads_visible else " (kube-audit-admin only: reads not logged)")
        )
    if nodeapi_logs.is_managed_namespace(account.namespace):
        yield nodeapi_logs.managed_account(
            ctx, account.user, subject, evidence, audit, bool(denied_lines)
        )
        return
    if audit:
        finding = nodeapi_logs.forbidden_finding(ctx, account.user, audit)
        yield replace(
            finding,
            severity=nodeapi_logs.forbidden_severity("workload", denials, with_as=True),
            subject=subject,
            evidence=tuple(evidence),
            remediation=(*finding.remediation, test),
        )
        return
    if not denied_lines:
        yield Finding(
            code="nodeapi.rbac-allowed",
            severity=Severity.OK,
            title=f"{account.namespace}/{account.name} may list pods and read the API"
            if evaluated
            else f"The audit log shows no 403 for {account.namespace}/{account.name}",
            subject=subject,
            evidence=tuple(evidence),
            cause="RBAC is not why this account's calls fail; look at the network findings.",
            remediation=(test,),
            docs=DOCS["rbac"],
        )
        return
    steps = []
    if denied_pods:
        steps.append(
            Step(
                f"Only if the app lists pods (the article's test does; many apps never do): "
                f"grant {account.namespace}/{account.name} read access to pods in "
                f"{account.namespace} (a Role and a RoleBinding).",
                _role_yaml(account),
            )
        )
    if denied_api:
        steps.append(
            Step(
                "Restore API discovery for the account (every authenticated user normally has it "
                "through the system:discovery ClusterRoleBinding).",
                f"kubectl create clusterrolebinding {q(account.name + '-discovery')} "
                f"--clusterrole=system:discovery --serviceaccount={q(account.namespace + ':' + account.name)}",
            )
        )
    steps.append(
        Step(
            "Check the result as the API server sees it.",
            " && ".join(p.can_i(account.user) for p in perms),
        )
    )
    steps.append(test)
    if snap.audit is None:
        evidence.append(
            "whether the app actually makes these calls is in the audit log, which was not read"
        )
    yield Finding(
        code="nodeapi.rbac-forbidden",
        # No evidence the app makes the call: a lead. Discovery is every client's, and granted
        # to all authenticated users by default: losing it breaks clients.
        severity=Severity.WARNING if denied_api else Severity.INFO,
        title=f"Service account {account.namespace}/{account.name} is forbidden: "
        + ", ".join(str(p) for p, d in zip(perms, (denied_pods, denied_api), strict=True) if d),
        subject=subject,
        evidence=tuple(evidence),
        cause="The API server authorizes each request of a pod with its service account's RBAC "
        "bindings; with none that grants the request it answers 403 Forbidden (the article's "
        "403), even though the network path works. That matters only for calls the app makes.",
        remediation=tuple(steps),
        docs=DOCS["rbac"],
    )


def _role_yaml(account: Account) -> str:
    name = f"{account.name}-pod-reader"[:253]
    ns = account.namespace
    return (
        "kubectl apply -f - <<'EOF'\n"
        "apiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: Role\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {ns}\n"
        "rules:\n"
        '  - apiGroups: [""]\n'
        '    resources: ["pods"]\n'
        '    verbs: ["get", "list", "watch"]\n'
        "---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: RoleBinding\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {ns}\n"
        "subjects:\n"
        "  - kind: ServiceAccount\n"
        f"    name: {account.name}\n"
        f"    namespace: {ns}\n"
        "roleRef:\n"
        "  apiGroup: rbac.authorization.k8s.io\n"
        "  kind: Role\n"
        f"  name: {name}\n"
        "EOF"
    )


def _for_args(check: Check, args: ScenarioArgs) -> Check:
    """Without --as the audit log alone answers; with it, reviews or RBAC objects do."""
    if args.as_account is None:
        return replace(check, needs_any=((AUDIT_LOG,),), uses=())
    return replace(check, needs_any=(*check.needs_any, (AUDIT_LOG,)))


CHECKS: tuple[Check, ...] = (
    Check(
        name="nodeapi.rbac",
        scenario=SCENARIO,
        codes=("nodeapi.rbac-forbidden", "nodeapi.rbac-allowed", "nodeapi.rbac-managed"),
        fn=rbac,
        needs_any=((ACCESS_REVIEW,), RBAC_SOURCES),
        uses=("pods", AUDIT_LOG),
        adapt=_for_args,
    ),
)
