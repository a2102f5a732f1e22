"""A Kubernetes API server emulator on loopback, good enough for the official Python client and
the real `kubectl`: discovery (`/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`,
`/version`), lists with `kind`/`apiVersion`/`metadata.resourceVersion`, label and field
selectors, `limit`/`continue`, namespaced and cluster paths, single-object GETs, and
`POST .../subjectaccessreviews` answered from the stored RBAC objects or a fixture table.

Bearer tokens are checked (401 otherwise). Faults (401/403/404/429/500, delays, dropped
connections) and per-path request counts come from `EmulatorServer`. Standard library only.

    with KubeEmulator(pods=[...], services=[...]) as k8s:
        kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig")
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._http import EmulatorServer, Reply, Request
from ._select import SelectorError, field_matcher, label_matcher, rbac_review

Obj = dict[str, Any]
DEFAULT_TOKEN = "FAKE-k8s-token-0123456789abcdef"


@dataclass(frozen=True)
class Resource:
    name: str
    group: str
    version: str
    kind: str
    namespaced: bool
    short: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("get", "list", "watch")
    plural: str = ""  # the API's plural, when `name` must differ (two groups share a plural)

    @property
    def resource(self) -> str:
        return self.plural or self.name

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery(self) -> Obj:
        out: Obj = {
            "name": self.resource,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short:
            out["shortNames"] = list(self.short)
        return out


RESOURCES: tuple[Resource, ...] = (
    Resource("pods", "", "v1", "Pod", True, ("po",)),
    Resource("services", "", "v1", "Service", True, ("svc",)),
    Resource("endpoints", "", "v1", "Endpoints", True, ("ep",)),
    Resource("events", "", "v1", "Event", True, ("ev",)),
    Resource("nodes", "", "v1", "Node", False, ("no",)),
    Resource("namespaces", "", "v1", "Namespace", False, ("ns",)),
    Resource("configmaps", "", "v1", "ConfigMap", True, ("cm",)),
    Resource("secrets", "", "v1", "Secret", True),
    Resource("serviceaccounts", "", "v1", "ServiceAccount", True, ("sa",)),
    Resource("daemonsets", "apps", "v1", "DaemonSet", True, ("ds",)),
    Resource("deployments", "apps", "v1", "Deployment", True, ("deploy",)),
    Resource("jobs", "batch", "v1", "Job", True),
    Resource("cronjobs", "batch", "v1", "CronJob", True, ("cj",)),
    Resource("poddisruptionbudgets", "policy", "v1", "PodDisruptionBudget", True, ("pdb",)),
    Resource("endpointslices", "discovery.k8s.io", "v1", "EndpointSlice", True),
    Resource("networkpolicies", "networking.k8s.io", "v1", "NetworkPolicy", True, ("netpol",)),
    Resource("roles", "rbac.authorization.k8s.io", "v1", "Role", True),
    Resource("rolebindings", "rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    Resource("clusterroles", "rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    Resource("clusterrolebindings", "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False),
    Resource(
        "subjectaccessreviews",
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        False,
        verbs=("create",),
    ),
    Resource("nodenetworkconfigs", "acn.azure.com", "v1alpha", "NodeNetworkConfig", True, ("nnc",)),
    Resource("ciliumnetworkpolicies", "cilium.io", "v2", "CiliumNetworkPolicy", True, ("cnp",)),
    Resource(
        "ciliumclusterwidenetworkpolicies",
        "cilium.io",
        "v2",
        "CiliumClusterwideNetworkPolicy",
        False,
        ("ccnp",),
    ),
    Resource(
        "networkpolicies.crd.projectcalico.org",
        "crd.projectcalico.org",
        "v1",
        "NetworkPolicy",
        True,
        plural="networkpolicies",
    ),
    Resource("globalnetworkpolicies", "crd.projectcalico.org", "v1", "GlobalNetworkPolicy", False),
    # API Priority and Fairness, which the apiserver-throttled advice reads
    Resource("flowschemas", "flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", False),
    Resource(
        "prioritylevelconfigurations",
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        False,
    ),
)
NNC = "nodenetworkconfigs"
PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version"}


def _status(code: int, reason: str, message: str) -> Reply:
    return Reply(
        code,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
    )


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class KubeEmulator(EmulatorServer):
    """Serve fixture objects, given per resource name like `write_snapshot`'s keyword lists."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        tokens: tuple[str, ...] = (),
        nnc_installed: bool = True,
        rv0_ignores_limit: bool = False,
        sar: dict[tuple[str, str, str, str], bool] | None = None,
        version: str = "v1.32.5",
        certfile: str | None = None,
        keyfile: str | None = None,
        **resources: list[Obj],
    ) -> None:
        super().__init__(certfile, keyfile)
        self.token = token
        self.tokens = {token, *tokens}
        self.rv0_ignores_limit = rv0_ignores_limit
        self.sar = dict(sar or {})  # (user, verb, resource, namespace) -> allowed
        self.version = version
        self.resources = {r.name: r for r in RESOURCES if nnc_installed or r.name != NNC}
        self._store: dict[str, list[Obj]] = {name: [] for name in self.resources}
        self._rv = 1000
        self._store_lock = threading.Lock()
        for name, items in resources.items():
            if name == NNC and not nnc_installed:
                continue  # without the CRD there are no such objects
            self.add(name, *items)

    @classmethod
    def from_snapshot(cls, folder: str | Path, **kw: Any) -> KubeEmulator:
        """Serve the objects of a snapshot folder's k8s/*.json (kubectl Lists)."""
        resources: dict[str, Any] = {}
        for path in sorted(Path(folder, "k8s").glob("*.json")):
            doc = json.loads(path.read_text())
            resources[path.stem] = doc.get("items", []) if isinstance(doc, dict) else doc
        if not kw.get("nnc_installed", True):
            resources.pop(NNC, None)
        return cls(**kw, **resources)

    # ------------------------------------------------------------ fixtures
    def add(self, resource: str, *objs: Obj) -> None:
        if resource not in self.resources:
            raise KeyError(f"the emulator does not serve {resource!r}")
        with self._store_lock:
            for obj in objs:
                self._rv += 1
                obj = copy.deepcopy(obj)
                obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
                self._store[resource].append(obj)
            self._store[resource].sort(
                key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"].get("name", ""))
            )

    def kubectl_list(
        self, resource: str, namespace: str = "", field_selector: str = "", label_selector: str = ""
    ) -> Obj:
        """What `kubectl get RESOURCE [-n NS | -A] -o json` prints (items typed, a `List`)."""
        res = self.resources[resource]
        by_labels = label_matcher(label_selector)
        by_fields = field_matcher(resource, field_selector)
        items = [
            self._typed(res, o)
            for o in self.objects(resource)
            if (not namespace or (o.get("metadata") or {}).get("namespace") == namespace)
            and by_labels((o.get("metadata") or {}).get("labels") or {})
            and by_fields(o)
        ]
        return {
            "apiVersion": "v1",
            "items": items,
            "kind": "List",
            "metadata": {"resourceVersion": ""},
        }

    def objects(self, resource: str) -> list[Obj]:
        with self._store_lock:
            return list(self._store.get(resource, ()))

    def write_kubeconfig(
        self,
        path: str | Path,
        context: str = "emulator",
        token: str | None = None,
        ca_file: str | None = None,
        namespace: str = "default",
    ) -> Path:
        """A kubeconfig (JSON is YAML) pointing at this server with a FAKE bearer token."""
        cluster: Obj = {"server": self.url}
        if ca_file:
            cluster["certificate-authority"] = str(ca_file)
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": f"{context}-cluster", "cluster": cluster}],
            "users": [{"name": f"{context}-user", "user": {"token": token or self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": f"{context}-cluster",
                        "user": f"{context}-user",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": context,
        }
        p = Path(path)
        p.write_text(json.dumps(doc, indent=2))
        return p

    # ------------------------------------------------------------ routing
    def error_body(self, status: int) -> Any:
        return _status(status, _REASONS.get(status, "Unknown"), f"injected fault: {status}").body

    def route(self, req: Request) -> Reply:
        path = req.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return Reply(200, "ok")
        if path not in PUBLIC_PATHS:
            scheme, _, token = req.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token.strip() not in self.tokens:
                return _status(401, "Unauthorized", "Unauthorized")
        if path == "/version":
            major, minor = self.version.lstrip("v").split(".")[:2]
            return Reply(
                200,
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": self.version,
                    "platform": "linux/amd64",
                },
            )
        if path == "/api":
            return Reply(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                    ],
                },
            )
        if path == "/apis":
            return Reply(200, self._groups())
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return _status(
                404, "NotFound", f"the server could not find the requested resource ({path})"
            )
        gv = f"{group}/{version}" if group else version
        served = [r for r in self.resources.values() if r.group == group and r.version == version]
        if not served:
            return _status(
                404, "NotFound", f"the server could not find the requested resource ({path})"
            )
        if not rest:
            return Reply(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": gv,
                    "resources": [r.discovery() for r in served],
                },
            )
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        res = next((r for r in served if r.resource == rest[0]), None)
        if res is None or (namespace and not res.namespaced) or len(rest) > 2:
            return _status(
                404, "NotFound", f"the server could not find the requested resource ({path})"
            )
        if res.name == "subjectaccessreviews":
            return (
                self._review(req)
                if req.method == "POST"
                else _status(405, "MethodNotAllowed", "create only")
            )
        if req.method != "GET":
            return _status(405, "MethodNotAllowed", f"{req.method} is not served by the emulator")
        if len(rest) == 2:
            return self._get(res, namespace, rest[1])
        return self._list(res, namespace, req.query)

    def _groups(self) -> Obj:
        groups: dict[str, list[str]] = {}
        for r in self.resources.values():
            if r.group and r.version not in groups.setdefault(r.group, []):
                groups[r.group].append(r.version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in groups.items()
            ],
        }

    def _typed(self, res: Resource, obj: Obj) -> Obj:
        return {"apiVersion": res.group_version, "kind": res.kind, **obj}

    def _get(self, res: Resource, namespace: str, name: str) -> Reply:
        for obj in self.objects(res.name):
            meta = obj.get("metadata") or {}
            if meta.get("name") == name and (
                not res.namespaced or meta.get("namespace") == namespace
            ):
                return Reply(200, self._typed(res, obj))
        return _status(404, "NotFound", f'{res.name} "{name}" not found')

    def _list(self, res: Resource, namespace: str, query: dict[str, str]) -> Reply:
        rv_param, cont = query.get("resourceVersion"), query.get("continue", "")
        if cont and rv_param:
            return _status(
                400, "BadRequest", "specifying resource version is not allowed when using continue"
            )
        try:
            by_labels = label_matcher(query.get("labelSelector", ""))
            by_fields = field_matcher(res.name, query.get("fieldSelector", ""))
        except SelectorError as exc:
            return _status(400, "BadRequest", str(exc))
        items = self.objects(res.name)
        if namespace or query.get("labelSelector") or query.get("fieldSelector"):
            items = [
                o
                for o in items
                if (not namespace or (o.get("metadata") or {}).get("namespace") == namespace)
                and by_labels((o.get("metadata") or {}).get("labels") or {})
                and by_fields(o)
            ]
        start = 0
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode()))
                start = int(token["start"])
            except (ValueError, KeyError, TypeError):
                return _status(400, "BadRequest", "continue key is not valid")
        limit = int(query.get("limit") or 0)
        if rv_param == "0" and self.rv0_ignores_limit:
            limit = 0  # served from the watch cache, which ignored limit before Kubernetes 1.33
        page = items[start : start + limit] if limit else items[start:]
        meta: Obj = {"resourceVersion": str(self._rv)}
        if limit and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": self._rv, "start": start + limit}).encode()
            ).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        # Items of a real list carry neither kind nor apiVersion (kubectl adds them).
        page = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]
        return Reply(
            200,
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.group_version,
                "metadata": meta,
                "items": page,
            },
        )

    def _review(self, req: Request) -> Reply:
        body = req.json() or {}
        spec = body.get("spec") or {}
        attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
        key = (  # (user, verb, resource or non-resource path, namespace)
            spec.get("user", ""),
            attrs.get("verb", ""),
            attrs.get("resource") or attrs.get("path", ""),
            attrs.get("namespace", ""),
        )
        if key in self.sar:
            allowed, reason = self.sar[key], "fixture table"
        else:
            with self._store_lock:
                allowed, reason = rbac_review(self._store, spec)
        status: Obj = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        return Reply(
            201,
            {
                "kind": "SubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": status,
            },
        )
