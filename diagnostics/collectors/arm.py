"""Azure Resource Manager reads: the ManagedCluster, the cluster user kubeconfig, and the
cluster's egress public IPs resolved to addresses.

Clients are the official SDKs (azure-mgmt-containerservice, azure-mgmt-network) with a token
credential (azure-identity's DefaultAzureCredential in production: workload identity in AKS,
the Azure CLI on a laptop). The endpoint and token scope are settings, for sovereign clouds.
The SDK's retry policy retries 429/5xx honouring Retry-After; failures become `ReadError`s
whose reason is a sentence for the report.

Egress IPs are computed, not guessed: the load balancer's and the managed NAT gateway's
`effectiveOutboundIPs`, and for `userAssignedNATGateway` the node subnets' NAT gateway and its
public IPs. Public IP prefixes (the load balancer's outbound prefixes, node public IP prefixes,
a NAT gateway's prefixes) resolve to their CIDR. Whatever cannot be resolved is returned as a
reason per id. Also the Kubernetes versions AKS offers in the cluster's region.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.core.tools import parse_resource_id

from diagnostics.collectors.armjson import parse_cluster, parse_versions
from diagnostics.collectors.k8s import ReadError, secs
from diagnostics.snapshot import ClusterInfo, KubernetesVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AzureTarget:
    subscription: str
    resource_group: str
    name: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.name}"
        )


@dataclass(slots=True)
class Egress:
    """Egress public IPs: resolved addresses, extra NAT gateway IP ids found through the node
    subnets (user-assigned NAT gateway), and reasons for the ids that could not be resolved."""

    addresses: dict[str, str] = field(default_factory=dict)  # lowercased id -> IP or CIDR
    nat_ids: tuple[str, ...] = ()  # public IP (and prefix) ids of a user-assigned NAT gateway
    unresolved: dict[str, str] = field(default_factory=dict)  # id -> why


def arm_error(exc: Exception, what: str) -> ReadError:
    """An azure-core exception -> a ReadError that says what could not be read and why."""
    status = getattr(exc, "status_code", None)
    message = ""
    err = getattr(exc, "error", None)
    if err is not None and getattr(err, "message", None):
        message = str(err.message)
    elif isinstance(exc, HttpResponseError) and exc.message:
        message = str(exc.message).split("\n")[0]
    detail = f": {message}" if message else ""
    if isinstance(exc, ClientAuthenticationError) and status is None:
        return ReadError(
            f"no Azure credentials for {what}: {str(exc).splitlines()[0][:300]} "
            "(sign in with `az login`, or give the bot a workload identity)",
            "unauthorized",
        )
    if status == 401:
        return ReadError(f"unauthorized (401) reading {what}{detail}", "unauthorized", 401)
    if status == 403:
        return ReadError(f"forbidden: {what}{detail}", "forbidden", 403)
    if status == 404:
        return ReadError(f"not found: {what} does not exist{detail}", "not-found", 404)
    if status == 429 or (status or 0) >= 500:
        return ReadError(
            f"Azure Resource Manager answered {status} for {what} after retries{detail}",
            "overload",
            status,
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return ReadError(f"Azure Resource Manager unreachable for {what}: {exc}", "unreachable")
    return ReadError(f"{what}: {type(exc).__name__}: {str(exc)[:300]}", "error", status)


def _named(resource_id: str, kind: str) -> dict[str, str] | None:
    """The parts of an ARM id (azure-mgmt-core's parse_resource_id) when it names a resource
    of type `kind` (case-insensitive, e.g. `publicIPAddresses`), else None."""
    p = {k: str(v) for k, v in parse_resource_id(resource_id).items()}
    if str(p.get("resource_type", "")).lower() != kind.lower() or not p.get("resource_name"):
        return None
    return p


def _prefix_cidr(net: Any, rg: str, name: str) -> str | None:
    return net.public_ip_prefixes.get(rg, name).ip_prefix  # type: ignore[no-any-return]


def _ip_address(net: Any, rg: str, name: str) -> str | None:
    return net.public_ip_addresses.get(rg, name).ip_address  # type: ignore[no-any-return]


class ArmClient:
    """The ARM calls aksdiag makes for one subscription's cluster."""

    def __init__(
        self,
        credential: TokenCredential,
        subscription: str,
        *,
        endpoint: str = "https://management.azure.com",
        scope: str | None = None,
        timeout: float = 30.0,
        retry_total: int = 3,
        connection_verify: str | bool | None = None,
        polling_interval: float = 3.0,
    ) -> None:
        self.credential = credential
        self.subscription = subscription
        self.endpoint = endpoint.rstrip("/")
        self.scope = scope or f"{self.endpoint}/.default"
        self.timeout = timeout
        self.polling_interval = polling_interval
        self._kw: dict[str, Any] = {
            "base_url": self.endpoint,
            "credential_scopes": [self.scope],
            "retry_total": retry_total,
            "retry_backoff_max": 10,
            "connection_timeout": min(timeout, 10.0),
            "read_timeout": timeout,
        }
        if connection_verify is not None:
            self._kw["connection_verify"] = connection_verify
        self._aks: Any = None
        self._network: dict[str, Any] = {}
        self._rest: Any = None
        self._private_dns: dict[str, Any] = {}

    @property
    def aks(self) -> Any:
        if self._aks is None:
            from azure.mgmt.containerservice import ContainerServiceClient

            self._aks = ContainerServiceClient(self.credential, self.subscription, **self._kw)
        return self._aks

    def network(self, subscription: str) -> Any:
        if subscription not in self._network:
            from azure.mgmt.network import NetworkManagementClient

            self._network[subscription] = NetworkManagementClient(
                self.credential, subscription, **self._kw
            )
        return self._network[subscription]

    def private_dns(self, subscription: str) -> Any:
        if subscription not in self._private_dns:
            from azure.mgmt.privatedns import PrivateDnsManagementClient

            self._private_dns[subscription] = PrivateDnsManagementClient(
                self.credential, subscription, **self._kw
            )
        return self._private_dns[subscription]

    # ------------------------------------------------------------ the cluster
    def cluster_body(self, resource_group: str, name: str) -> dict[str, Any]:
        """The ManagedCluster as ARM's REST body (the model's as_dict() keeps REST names)."""
        what = f"managed cluster {resource_group}/{name}"
        try:
            model = self.aks.managed_clusters.get(resource_group, name)
        except Exception as exc:
            raise arm_error(exc, what) from None
        body = model.as_dict() if hasattr(model, "as_dict") else dict(model)
        return body

    def cluster(self, resource_group: str, name: str) -> tuple[ClusterInfo, dict[str, Any]]:
        body = self.cluster_body(resource_group, name)
        try:
            return parse_cluster(body), body
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise ReadError(
                f"managed cluster {resource_group}/{name}: unexpected body: {exc}"
            ) from None

    def user_kubeconfig(self, resource_group: str, name: str) -> dict[str, Any]:
        """The cluster user kubeconfig (server and CA; its kubelogin user is replaced by us)."""
        what = f"the user credentials of {resource_group}/{name} (listClusterUserCredential)"
        try:
            result = self.aks.managed_clusters.list_cluster_user_credentials(
                resource_group, name, format="exec"
            )
        except Exception as exc:
            raise arm_error(exc, what) from None
        for item in result.kubeconfigs or ():
            value = item.value
            raw = base64.b64decode(value) if isinstance(value, str) else bytes(value or b"")
            doc = yaml.safe_load(raw)
            if isinstance(doc, dict):
                return doc
        raise ReadError(f"{what}: ARM returned no kubeconfig")

    # ------------------------------------------------------------ egress public IPs
    def egress(self, cluster: ClusterInfo) -> Egress:
        out = Egress()
        ids = [*cluster.lb_outbound_ip_ids, *cluster.nat_outbound_ip_ids]
        if cluster.outbound_type.lower() == "userassignednatgateway":
            nat_ids = self._user_nat_ips(cluster, out)
            out.nat_ids = tuple(i for i in nat_ids if i.lower() not in {x.lower() for x in ids})
            ids += list(out.nat_ids)
        for rid in dict.fromkeys(ids):
            if _named(rid, "publicIPPrefixes") is not None:
                self._resolve_prefix(rid, out)
            else:
                self._resolve_ip(rid, out)
        prefixes = [*cluster.lb_outbound_prefix_ids]
        prefixes += [p.node_public_ip_prefix_id for p in cluster.agent_pools]
        for rid in dict.fromkeys(p for p in prefixes if p):
            self._resolve_prefix(rid, out)
        return out

    def _resolve_prefix(self, rid: str, out: Egress) -> None:
        """A public IP prefix -> its CIDR (`ipPrefix`), kept with the addresses."""
        self._resolve(rid, out, "publicIPPrefixes", "public IP prefix", "range", _prefix_cidr)

    def _resolve_ip(self, rid: str, out: Egress) -> None:
        """A public IP address resource -> its address."""
        self._resolve(rid, out, "publicIPAddresses", "public IP", "address", _ip_address)

    def _resolve(
        self,
        rid: str,
        out: Egress,
        kind: str,
        what: str,
        value: str,
        read: Callable[[Any, str, str], str | None],
    ) -> None:
        """One egress resource by id -> `out.addresses` (lowercased id), or why not."""
        p = _named(rid, kind)
        if p is None:
            out.unresolved[rid] = f"not a {what} resource id"
            return
        net = self.network(p.get("subscription", self.subscription))
        try:
            got = read(net, p.get("resource_group", ""), p["resource_name"])
        except Exception as exc:
            out.unresolved[rid] = arm_error(exc, f"{what} {p['resource_name']}").reason
            return
        if got:
            out.addresses[rid.lower()] = str(got)
        else:
            out.unresolved[rid] = f"the {what} has no {value} allocated"

    def _user_nat_ips(self, cluster: ClusterInfo, out: Egress) -> list[str]:
        subnets = {p.vnet_subnet_id for p in cluster.agent_pools if p.vnet_subnet_id}
        if not subnets:
            out.unresolved["natGateway"] = (
                "outbound type userAssignedNATGateway but no node pool names its subnet"
            )
            return []
        found: list[str] = []
        for sid in sorted(subnets):
            p = _named(sid, "subnets")
            if p is None:
                out.unresolved[sid] = "not a subnet resource id"
                continue
            net = self.network(p.get("subscription", self.subscription))
            try:
                subnet = net.subnets.get(p.get("resource_group", ""), p["name"], p["resource_name"])
            except Exception as exc:
                out.unresolved[sid] = arm_error(exc, f"subnet {p['resource_name']}").reason
                continue
            nat_ref = getattr(subnet, "nat_gateway", None)
            if nat_ref is None or not nat_ref.id:
                out.unresolved[sid] = "the node subnet has no NAT gateway attached"
                continue
            q = _named(nat_ref.id, "natGateways")
            if q is None:
                out.unresolved[nat_ref.id] = "not a NAT gateway resource id"
                continue
            try:
                nat = self.network(q.get("subscription", self.subscription)).nat_gateways.get(
                    q.get("resource_group", ""), q["resource_name"]
                )
            except Exception as exc:
                out.unresolved[nat_ref.id] = arm_error(
                    exc, f"NAT gateway {q['resource_name']}"
                ).reason
                continue
            found += [r.id for r in nat.public_ip_addresses or () if r.id]
            found += [r.id for r in nat.public_ip_prefixes or () if r.id]  # resolved to CIDRs
        return found

    # ------------------------------------------------------------ Kubernetes versions
    def kubernetes_versions_body(self, location: str) -> dict[str, Any]:
        """`az aks get-versions --location LOC` as ARM's REST body (`values[]`)."""
        what = f"the Kubernetes versions AKS offers in {location}"
        try:
            result = self.aks.managed_clusters.list_kubernetes_versions(location)
        except Exception as exc:
            raise arm_error(exc, what) from None
        return result.as_dict() if hasattr(result, "as_dict") else dict(result)

    def kubernetes_versions(self, location: str) -> list[KubernetesVersion]:
        """The minor versions AKS offers in `location`, with their support plans."""
        body = self.kubernetes_versions_body(location)
        try:
            return parse_versions(body)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ReadError(
                f"the Kubernetes versions AKS offers in {location}: unexpected body: {exc}"
            ) from None

    # ------------------------------------------------------------ run command
    def run_command(
        self,
        resource_group: str,
        name: str,
        command: str,
        cluster_token: str | None,
        timeout: float,
    ) -> tuple[str, int | None]:
        """Run a command in the cluster through ARM (`az aks command invoke`); (logs, exit)."""
        from azure.mgmt.containerservice import models

        what = f"run command on {resource_group}/{name}"
        request = models.RunCommandRequest(command=command, cluster_token=cluster_token)
        try:
            poller = self.aks.managed_clusters.begin_run_command(
                resource_group, name, request, polling_interval=self.polling_interval
            )
            poller.wait(timeout)
            if not poller.done():
                raise ReadError(f"{what}: no result within {secs(timeout)}", "timeout")
            result = poller.result()
        except ReadError:
            raise
        except Exception as exc:
            raise arm_error(exc, what) from None
        state = str(result.provisioning_state or "")
        if state and state.lower() not in ("succeeded",):
            reason = result.reason or state
            raise ReadError(f"{what}: {state}: {reason}")
        return str(result.logs or ""), result.exit_code

    # ------------------------------------------------------------ plain ARM GETs
    @property
    def rest(self) -> Any:
        """An ARM pipeline (auth, retries honouring Retry-After, timeouts, TLS settings) for reads
        no installed SDK client offers: diagnostic settings (collectors.logs)."""
        if self._rest is None:
            from azure.core.pipeline.policies import HeadersPolicy, RetryPolicy, UserAgentPolicy
            from azure.mgmt.core import ARMPipelineClient
            from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

            kw = {k: v for k, v in self._kw.items() if k not in ("base_url", "credential_scopes")}
            policies = [
                HeadersPolicy(),
                UserAgentPolicy("aksdiag"),
                RetryPolicy(
                    retry_total=kw.pop("retry_total"), retry_backoff_max=kw.pop("retry_backoff_max")
                ),
                ARMChallengeAuthenticationPolicy(self.credential, self.scope),
            ]
            self._rest = ARMPipelineClient(self.endpoint, policies=policies, **kw)
        return self._rest
