"""Label and field selectors as the Kubernetes API server parses them, and RBAC evaluation for
SubjectAccessReview answers. Standard library only; used by the Kubernetes API emulator."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]


class SelectorError(ValueError):
    """Becomes a 400 BadRequest, as the API server answers a selector it cannot parse."""


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_SET = re.compile(r"^(\S+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQ = re.compile(r"^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$")


Labels = dict[str, str]


def _is_in(key: str, values: set[str]) -> Callable[[Labels], bool]:
    return lambda labels: labels.get(key) in values


def _has(key: str) -> Callable[[Labels], bool]:
    return lambda labels: key in labels


def _negate(test: Callable[[Labels], bool]) -> Callable[[Labels], bool]:
    return lambda labels: not test(labels)


def label_matcher(text: str) -> Callable[[dict[str, str]], bool]:
    """`a=b,c!=d,e in (x,y),f notin (z),g,!h` -> predicate over a labels dict."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for term in _split_top(text or ""):
        if m := _SET.match(term):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            tests.append(_is_in(key, values) if op == "in" else _negate(_is_in(key, values)))
        elif term.startswith("!"):
            tests.append(_negate(_has(term[1:].strip())))
        elif m := _EQ.match(term):
            key, op, value = m.groups()
            tests.append(_negate(_is_in(key, {value})) if op == "!=" else _is_in(key, {value}))
        elif re.fullmatch(r"[A-Za-z0-9_./-]+", term):
            tests.append(_has(term))
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda labels: all(t(labels) for t in tests)


# Field labels each resource supports (the API server answers 400 for any other).
_COMMON = {"metadata.name", "metadata.namespace"}
FIELD_LABELS: dict[str, set[str]] = {
    "pods": _COMMON
    | {
        "spec.nodeName",
        "status.phase",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "events": _COMMON
    | {
        "type",
        "reason",
        "source",
        "reportingComponent",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
    },
    "nodes": _COMMON | {"spec.unschedulable"},
    "secrets": _COMMON | {"type"},
    "namespaces": _COMMON | {"status.phase"},
}


def _field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


def field_matcher(resource: str, text: str) -> Callable[[Obj], bool]:
    tests: list[tuple[str, bool, str]] = []
    allowed = FIELD_LABELS.get(resource, _COMMON)
    for term in _split_top(text or ""):
        m = _EQ.match(term)
        if not m:
            raise SelectorError(f"invalid field selector: {term!r}")
        key, op, value = m.groups()
        if key not in allowed:
            raise SelectorError(f"field label not supported: {key}")
        tests.append((key, op == "!=", value))
    return lambda obj: all(
        (_field_value(obj, k) != v) if neg else (_field_value(obj, k) == v) for k, neg, v in tests
    )


# ---------------------------------------------------------------- RBAC
def _rule_allows(rule: Obj, verb: str, group: str, resource: str, name: str) -> bool:
    def has(values: Iterable[str] | None, wanted: str) -> bool:
        values = list(values or ())
        return "*" in values or wanted in values

    if not has(rule.get("verbs"), verb) or not has(rule.get("apiGroups"), group):
        return False
    if not has(rule.get("resources"), resource):
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(name) and name in names)


def _url_allows(rule: Obj, verb: str, path: str) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    for url in rule.get("nonResourceURLs") or ():
        if url == path or url == "*" or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rbac_review(store: dict[str, list[Obj]], spec: Obj) -> tuple[bool, str]:
    """Evaluate a SubjectAccessReview spec against stored Roles and bindings."""
    user = spec.get("user", "")
    groups = set(spec.get("groups") or ())
    attrs = spec.get("resourceAttributes") or {}
    url_attrs = spec.get("nonResourceAttributes")
    verb, group = attrs.get("verb", ""), attrs.get("group", "")
    if url_attrs is not None:
        verb = url_attrs.get("verb", "")
    resource, namespace, name = (
        attrs.get("resource", ""),
        attrs.get("namespace", ""),
        attrs.get("name", ""),
    )
    sa_ns, sa_name = "", ""
    if user.startswith("system:serviceaccount:"):
        sa_ns, _, sa_name = user.removeprefix("system:serviceaccount:").partition(":")

    def subject_matches(s: Obj, binding_ns: str) -> bool:
        kind = s.get("kind")
        if kind == "ServiceAccount":
            return s.get("name") == sa_name and (s.get("namespace") or binding_ns) == sa_ns
        if kind == "User":
            return s.get("name") == user
        if kind == "Group":
            return s.get("name") in groups
        return False

    def role_rules(kind: str, role_name: str, ns: str) -> list[Obj]:
        pool = store.get("clusterroles" if kind == "ClusterRole" else "roles", [])
        for r in pool:
            meta = r.get("metadata") or {}
            if meta.get("name") == role_name and (
                kind == "ClusterRole" or meta.get("namespace") == ns
            ):
                return list(r.get("rules") or ())
        return []

    bindings = [("ClusterRoleBinding", b) for b in store.get("clusterrolebindings", [])]
    if url_attrs is None:  # non-resource URLs are granted cluster-wide only
        bindings += [
            ("RoleBinding", b)
            for b in store.get("rolebindings", [])
            if (b.get("metadata") or {}).get("namespace") == namespace
        ]
    for kind, b in bindings:
        meta = b.get("metadata") or {}
        bns = meta.get("namespace", "")
        if not any(subject_matches(s, bns) for s in b.get("subjects") or ()):
            continue
        ref = b.get("roleRef") or {}
        for rule in role_rules(ref.get("kind", ""), ref.get("name", ""), bns):
            if url_attrs is not None:
                ok = _url_allows(rule, verb, url_attrs.get("path", ""))
            else:
                ok = _rule_allows(rule, verb, group, resource, name)
            if ok:
                where = (
                    f'{kind} "{meta.get("name")}"'
                    if kind.startswith("Cluster")
                    else (f'{kind} "{meta.get("name")}/{bns}"')
                )
                return (
                    True,
                    f'RBAC: allowed by {where} of {ref.get("kind")} "{ref.get("name")}" to {user}',
                )
    return False, ""
