"""An Azure Resource Manager emulator on loopback (TLS, since azure-core's bearer policy wants
it) for the real azure-mgmt-containerservice and azure-mgmt-network clients:

- ManagedCluster GET (fixtures in the ARM REST shape or the `az aks show` shape, served as REST),
  `listClusterUserCredential` (a kubeconfig pointing at a KubeEmulator);
- public IP, public IP prefix, subnet and NAT gateway GETs; the Kubernetes versions of a
  region (`locations/LOC/kubernetesVersions`);
- the network path (any REST body added with `add`): GET by id, and the lists the collectors
  page through (resource group and subscription lists, child lists such as a policy's rule
  collection groups or a zone's virtual network links), in any subscription; a cluster's
  `outboundNetworkDependenciesEndpoints`;
- `runCommand` POST -> 202 with Location and Azure-AsyncOperation, polled to a result whose
  `logs` hold what `kubectl get ... -o json` prints, computed from a KubeEmulator's objects;
- the cluster's diagnostic settings list, and a Log Analytics query endpoint
  (`POST /v1{resource id}/query`, the API's real answer shape: `tables[].columns[].name/type`,
  `rows`, and `error` beside the tables for a partial answer) serving audit rows as aksdiag's
  query aggregates them (see `logs_tables`);
- an App Service style managed identity endpoint (`/msi/token`) so DefaultAzureCredential works
  in a subprocess with IDENTITY_ENDPOINT/IDENTITY_HEADER;
- faults (429 + Retry-After, 500, 404, 403, delays) and per-path counts from EmulatorServer.
Standard library only.
"""

from __future__ import annotations

import base64
import json
import shlex
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from ._http import EmulatorServer, Reply, Request
from ._select import SelectorError

if TYPE_CHECKING:
    from .k8s_api import KubeEmulator

Obj = dict[str, Any]
ARM_TOKEN = "FAKE-arm-token-0123456789abcdef"
AAD_TOKEN = "FAKE-aad-token-for-the-aks-server-app"
AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"
IDENTITY_HEADER = "FAKE-identity-header"

_ENVELOPE = {
    "id",
    "name",
    "type",
    "location",
    "tags",
    "sku",
    "identity",
    "extendedlocation",
    "etag",
    "systemdata",
    "kind",
    "properties",
    "zones",
    "resourcegroup",
}
# `az aks show` spellings -> the REST spellings ARM itself uses (the ones that matter here).
_REST = {
    k.lower(): k
    for k in (
        "authorizedIPRanges",
        "privateFQDN",
        "azurePortalFQDN",
        "dnsServiceIP",
        "effectiveOutboundIPs",
        "enablePrivateClusterPublicFQDN",
        "managedOutboundIPs",
        "outboundIPs",
        "outboundIPPrefixes",
        "podSubnetID",
        "vnetSubnetID",
        "privateDNSZone",
        "nodePublicIPPrefixID",
        "enableNodePublicIP",
        "podIPAllocationMode",
        "osSKU",
        "osDiskSizeGB",
        "enableRBAC",
        "enableAzureRBAC",
        "adminGroupObjectIDs",
        "publicIPs",
        "publicIPPrefixes",
    )
}


def _respell(value: Any) -> Any:
    if isinstance(value, dict):
        return {_REST.get(str(k).lower(), k): _respell(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_respell(v) for v in value]
    return value


def rest_cluster(body: Obj) -> Obj:
    """Either cluster.json shape -> the ARM REST body ARM would serve."""
    if isinstance(body.get("properties"), dict):
        return _respell(body)
    out = {k: v for k, v in body.items() if k.lower() in _ENVELOPE and k != "resourceGroup"}
    out["properties"] = {k: v for k, v in body.items() if k.lower() not in _ENVELOPE}
    return _respell(out)


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class ArmEmulator(EmulatorServer):
    fold_case = True

    def __init__(
        self,
        *,
        k8s: KubeEmulator | None = None,
        token: str = ARM_TOKEN,
        run_command_polls: int = 1,
        run_command_forbidden: tuple[str, ...] = (),
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        super().__init__(certfile, keyfile)
        self.k8s = k8s
        self.tokens = {token}
        self.run_command_polls = run_command_polls
        self.run_command_forbidden = set(run_command_forbidden)
        self._resources: dict[str, Obj] = {}  # lowercased id -> body
        self._outbound: dict[str, list[Obj]] = {}  # lowercased cluster id -> endpoint categories
        self._commands: dict[str, dict[str, Any]] = {}
        self.run_command_requests: list[Obj] = []
        self.kubeconfig_server: str | None = None  # defaults to k8s.url
        self.ca_data: str | None = None  # base64 PEM of the KubeEmulator's CA, for kubeconfigs
        self._mutex = threading.Lock()
        self.diagnostic_settings: dict[str, list[Obj]] = {}  # lowercased resource id -> settings
        self.audit_rows: dict[str, list[Obj]] = {}  # lowercased resource id -> aggregated rows
        self.logs_partial = False  # answer with the rows and a PartialError beside them
        self.log_queries: list[Obj] = []  # {"resource", "body", "prefer"} of each query

    # ------------------------------------------------------------ fixtures
    def add_cluster(self, body: Obj) -> str:
        rest = rest_cluster(body)
        self._resources[rest["id"].lower()] = rest
        return str(rest["id"])

    def add_public_ip(self, resource_id: str, address: str | None) -> None:
        props: Obj = {"publicIPAllocationMethod": "Static", "provisioningState": "Succeeded"}
        if address:
            props["ipAddress"] = address
        self._resources[resource_id.lower()] = {
            "id": resource_id,
            "name": resource_id.rsplit("/", 1)[-1],
            "location": "westeurope",
            "type": "Microsoft.Network/publicIPAddresses",
            "properties": props,
        }

    def add_public_ip_prefix(self, resource_id: str, cidr: str | None) -> None:
        props: Obj = {"prefixLength": int(cidr.split("/")[1]) if cidr else 31}
        if cidr:
            props["ipPrefix"] = cidr
        self._resources[resource_id.lower()] = {
            "id": resource_id,
            "name": resource_id.rsplit("/", 1)[-1],
            "location": "westeurope",
            "type": "Microsoft.Network/publicIPPrefixes",
            "sku": {"name": "Standard"},
            "properties": {**props, "provisioningState": "Succeeded"},
        }

    def add_kubernetes_versions(self, subscription: str, location: str, values: list[Obj]) -> str:
        """`GET .../locations/LOC/kubernetesVersions`: `{"values": [...]}` as ARM serves it."""
        rid = (
            f"/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/"
            f"{location}/kubernetesVersions"
        )
        self._resources[rid.lower()] = {"values": values}
        return rid

    def add_subnet(self, subnet_id: str, prefix: str, nat_gateway_id: str | None = None) -> None:
        props: Obj = {"addressPrefix": prefix, "provisioningState": "Succeeded"}
        if nat_gateway_id:
            props["natGateway"] = {"id": nat_gateway_id}
        self._resources[subnet_id.lower()] = {
            "id": subnet_id,
            "name": subnet_id.rsplit("/", 1)[-1],
            "type": "Microsoft.Network/virtualNetworks/subnets",
            "properties": props,
        }

    def add_nat_gateway(
        self, nat_id: str, public_ip_ids: list[str], prefix_ids: tuple[str, ...] = ()
    ) -> None:
        self._resources[nat_id.lower()] = {
            "id": nat_id,
            "name": nat_id.rsplit("/", 1)[-1],
            "location": "westeurope",
            "type": "Microsoft.Network/natGateways",
            "sku": {"name": "Standard"},
            "properties": {
                "publicIpAddresses": [{"id": i} for i in public_ip_ids],
                "publicIpPrefixes": [{"id": i} for i in prefix_ids],
                "provisioningState": "Succeeded",
            },
        }

    def add_diagnostic_setting(self, resource_id: str, setting: Obj) -> None:
        """A setting in either shape (az flattened or REST); served in the REST shape."""
        if "properties" not in setting:
            props = {
                k: v for k, v in setting.items() if k not in ("id", "name", "type", "resourceGroup")
            }
            setting = {
                "id": setting["id"],
                "name": setting["name"],
                "type": setting["type"],
                "properties": props,
            }
        self.diagnostic_settings.setdefault(resource_id.lower(), []).append(setting)

    def add(self, body: Obj) -> str:
        """Any ARM resource, as its REST body (`properties` wrapper)."""
        self._resources[str(body["id"]).lower()] = body
        return str(body["id"])

    def add_outbound_endpoints(self, cluster_id: str, items: list[Obj]) -> None:
        self._outbound[cluster_id.lower()] = items

    def _list(self, low: str) -> Reply | None:
        """A collection GET: `{"value": [...]}` of the resources directly under `low`."""
        if low.endswith("/outboundnetworkdependenciesendpoints"):
            parent = low.rsplit("/", 1)[0]
            if parent not in self._resources:
                return None
            return Reply(200, {"value": self._outbound.get(parent, [])})
        segs = low.strip("/").split("/")
        if len(segs) == 5 and segs[0] == "subscriptions" and segs[2] == "providers":
            sub, tail = f"/subscriptions/{segs[1]}/", f"/providers/{segs[3]}/{segs[4]}/"
            items = [
                b
                for k, b in self._resources.items()
                if k.startswith(sub) and tail in k and "/" not in k.split(tail, 1)[1]
            ]
            return Reply(200, {"value": items})
        if "providers" not in segs or len(segs) < 7:
            return None
        depth = len(segs) - segs.index("providers")
        parent = low.rsplit("/", 1)[0]
        if depth > 3 and parent not in self._resources:
            return None  # a child collection of a resource that does not exist
        prefix = low + "/"
        items = [
            b
            for k, b in self._resources.items()
            if k.startswith(prefix) and "/" not in k[len(prefix) :]
        ]
        return Reply(200, {"value": items})

    # ------------------------------------------------------------ routing
    def error_body(self, status: int) -> Any:
        codes = {
            429: "TooManyRequests",
            500: "InternalServerError",
            404: "ResourceNotFound",
            403: "AuthorizationFailed",
            401: "InvalidAuthenticationToken",
        }
        return {
            "error": {"code": codes.get(status, "Error"), "message": f"injected fault: {status}"}
        }

    def route(self, req: Request) -> Reply:
        if req.path == "/msi/token":
            return self._msi(req)
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return _error(
                401, "InvalidAuthenticationToken", "The access token is missing or invalid."
            )
        path = req.path.rstrip("/")
        low = path.lower()
        if req.method == "POST" and low.startswith("/v1/") and low.endswith("/query"):
            return self._logs_query(req, low[len("/v1") : -len("/query")].replace("//", "/"))
        if req.method == "GET" and low.endswith("/providers/microsoft.insights/diagnosticsettings"):
            resource = low.rsplit("/providers/microsoft.insights/", 1)[0]
            if resource not in self._resources:
                return _error(404, "ResourceNotFound", f"The Resource '{resource}' was not found.")
            return Reply(200, {"value": self.diagnostic_settings.get(resource, [])})
        if req.method == "POST" and low.endswith("/listclusterusercredential"):
            return self._credentials(low.rsplit("/", 1)[0])
        if req.method == "POST" and low.endswith("/runcommand"):
            return self._run_command(req, path.rsplit("/", 1)[0])
        if "/commandresults/" in low:
            return self._command_result(low.rsplit("/", 1)[-1])
        if "/operations/" in low and "microsoft.containerservice/locations/" in low:
            return self._operation(low.rsplit("/", 1)[-1])
        if req.method == "GET" and low in self._resources:
            return Reply(200, self._resources[low])
        if req.method == "GET" and (listed := self._list(low)) is not None:
            return listed
        return _error(404, "ResourceNotFound", f"The Resource '{path}' was not found.")

    def _logs_query(self, req: Request, resource: str) -> Reply:
        body = req.json() or {}
        self.log_queries.append(
            {"resource": resource, "body": body, "prefer": req.headers.get("prefer", "")}
        )
        if resource not in self._resources:
            return Reply(404, {"error": {"code": "ResourceNotFound", "message": "not found"}})
        query = str(body.get("query", ""))
        cap = int(query.rsplit("| top ", 1)[1].split()[0]) if "| top " in query else None
        answer: Obj = {"tables": [logs_table(self.audit_rows.get(resource, [])[:cap])]}
        if self.logs_partial:
            answer["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [
                    {
                        "code": "EngineError",
                        "message": "Something went wrong processing your query on the server.",
                        "innererror": {
                            "code": "-2133196760",
                            "message": "Query exceeded the memory limit of 8 GB",
                        },
                    }
                ],
            }
        return Reply(200, answer)

    def _msi(self, req: Request) -> Reply:
        if req.headers.get("x-identity-header") != IDENTITY_HEADER:
            return Reply(401, {"error": "invalid identity header"})
        resource = req.query.get("resource", "")
        token = AAD_TOKEN if AKS_SERVER_APP in resource else ARM_TOKEN
        return Reply(
            200,
            {
                "access_token": token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": resource,
                "token_type": "Bearer",
            },
        )

    def _credentials(self, cluster_id: str) -> Reply:
        if cluster_id not in self._resources:
            return _error(404, "ResourceNotFound", "cluster not found")
        server = self.kubeconfig_server or (self.k8s.url if self.k8s else "https://127.0.0.1:1")
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "aks",
            "clusters": [
                {
                    "name": "aks",
                    "cluster": {"server": server, "certificate-authority-data": self.ca_data or ""},
                }
            ],
            "contexts": [{"name": "aks", "context": {"cluster": "aks", "user": "clusterUser_aks"}}],
            "users": [
                {
                    "name": "clusterUser_aks",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "kubelogin",
                            "args": [
                                "get-token",
                                "--login",
                                "devicecode",
                                "--server-id",
                                "6dae42f8-4368-4678-94ff-3960e28e3630",
                            ],
                        }
                    },
                }
            ],
        }
        value = base64.b64encode(json.dumps(doc).encode()).decode()
        return Reply(200, {"kubeconfigs": [{"name": "clusterUser", "value": value}]})

    # ------------------------------------------------------------ run command
    def _run_command(self, req: Request, cluster_path: str) -> Reply:
        if cluster_path.lower() not in self._resources:
            return _error(404, "ResourceNotFound", "cluster not found")
        body = req.json() or {}
        self.run_command_requests.append(body)
        cmd_id = uuid.uuid4().hex
        logs, code = self._execute(str(body.get("command", "")))
        with self._mutex:
            self._commands[cmd_id] = {
                "polls": self.run_command_polls,
                "logs": logs,
                "exit": code,
                "cluster": cluster_path,
            }
        sub = cluster_path.split("/")[2]
        api = req.query.get("api-version", "")
        return Reply(
            202,
            None,
            {
                "Location": f"{self.url}{cluster_path}/commandResults/{cmd_id}?api-version={api}",
                "Azure-AsyncOperation": f"{self.url}/subscriptions/{sub}/providers/"
                f"Microsoft.ContainerService/locations/westeurope/operations/{cmd_id}?api-version={api}",
            },
        )

    def _tick(self, cmd_id: str) -> dict[str, Any] | None:
        with self._mutex:
            cmd = self._commands.get(cmd_id)
            if cmd is not None and cmd["polls"] > 0:
                cmd["polls"] -= 1
                return {**cmd, "pending": True}
            return cmd

    def _operation(self, cmd_id: str) -> Reply:
        cmd = self._tick(cmd_id)
        if cmd is None:
            return _error(404, "NotFound", "operation not found")
        return Reply(
            200,
            {
                "id": cmd_id,
                "name": cmd_id,
                "status": "InProgress" if cmd.get("pending") else "Succeeded",
            },
        )

    def _command_result(self, cmd_id: str) -> Reply:
        cmd = self._tick(cmd_id)
        if cmd is None:
            return _error(404, "NotFound", "command not found")
        if cmd.get("pending"):
            return Reply(
                202, None, {"Location": f"{self.url}{cmd['cluster']}/commandResults/{cmd_id}"}
            )
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return Reply(
            200,
            {
                "id": cmd_id,
                "properties": {
                    "provisioningState": "Succeeded",
                    "exitCode": cmd["exit"],
                    "startedAt": now,
                    "finishedAt": now,
                    "logs": cmd["logs"],
                },
            },
        )

    def _execute(self, command: str) -> tuple[str, int]:
        """A tiny shell: `;`-separated `echo '...'` and `kubectl get R[,R] [-A|-n NS]
        [--field-selector S] [-l S] -o json [2>&1]` run against the KubeEmulator's objects."""
        out: list[str] = []
        code = 0
        for part in command.split(";"):
            words = [w for w in shlex.split(part) if w != "2>&1"]
            if not words:
                continue
            if words[0] == "echo":
                out.append(" ".join(words[1:]))
                continue
            if words[:2] != ["kubectl", "get"] or self.k8s is None:
                out.append(f"sh: {words[0]}: not found")
                code = 127
                continue
            text, code = self._kubectl_get(words[2:])
            out.append(text)
        return "\n".join(out) + "\n", code

    def _kubectl_get(self, args: list[str]) -> tuple[str, int]:
        assert self.k8s is not None
        names, namespace, fields, labels = "", "", "", ""
        it = iter(args)
        for a in it:
            if a in ("-A", "--all-namespaces", "-o", "json", "-ojson"):
                continue
            if a in ("-n", "--namespace"):
                namespace = next(it)
            elif a.startswith("--field-selector"):
                fields = a.split("=", 1)[1] if "=" in a else next(it)
            elif a in ("-l", "--selector"):
                labels = next(it)
            elif not a.startswith("-"):
                names = a
        items: list[Obj] = []
        for name in names.split(","):
            res = self.k8s.resources.get(name)
            if res is None:
                return f'error: the server doesn\'t have a resource type "{name}"', 1
            if name in self.run_command_forbidden:
                scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                return (
                    f'Error from server (Forbidden): {name} is forbidden: User "aks-command" '
                    f'cannot list resource "{name}" in API group "{res.group}" {scope}'
                ), 1
            try:
                items += self.k8s.kubectl_list(name, namespace, fields, labels)["items"]
            except SelectorError as exc:
                return f"Error from server (BadRequest): {exc}", 1
        doc = {
            "apiVersion": "v1",
            "items": items,
            "kind": "List",
            "metadata": {"resourceVersion": ""},
        }
        warning = ""
        if "endpoints" in names.split(","):  # what kubectl 1.33+ prints on stderr
            warning = (
                "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 "
                "EndpointSlice\n"
            )
        return warning + json.dumps(doc, indent=4), 0


LOG_COLUMNS = (
    ("Identity", "string"),
    ("Verb", "string"),
    ("Resource", "string"),
    ("ApiGroup", "string"),
    ("Namespace", "string"),
    ("Code", "int"),
    ("UserAgent", "string"),
    ("Requests", "long"),
    ("FirstSeen", "datetime"),
    ("LastSeen", "datetime"),
)


def logs_table(rows: list[Obj]) -> Obj:
    """Aggregated audit rows (builders_logs "aggregated" shape) as a Log Analytics table."""
    return {
        "name": "PrimaryResult",
        "columns": [{"name": n, "type": t} for n, t in LOG_COLUMNS],
        "rows": [
            [int(r[n]) if t in ("int", "long") else r[n] for n, t in LOG_COLUMNS] for r in rows
        ],
    }
