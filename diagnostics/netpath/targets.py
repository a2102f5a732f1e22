"""What nodes must reach, as `Target`s: the API server (the address `default/kubernetes`
points at), the cluster's own egress endpoints (`egress-endpoints.json`) or else the documented
required list for its cloud, and the VNet's custom DNS servers on 53.

The documented list (outbound-rules-control-egress) per cloud; NTP (UDP 123) is not needed by
nodes provisioned after March 2021 and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.netpath.match import Endpoint, is_public, sample_name
from diagnostics.netpath.model import EgressEndpoint, VirtualNetwork
from diagnostics.snapshot import ClusterInfo

# cloud -> (API server FQDN pattern, [(fqdn, service tag, critical, why)])
CLOUDS: dict[str, tuple[str, tuple[tuple[str, str, bool, str], ...]]] = {
    "AzureCloud": (
        "*.hcp.{region}.azmk8s.io",
        (
            ("mcr.microsoft.com", "MicrosoftContainerRegistry", True, "system images (MCR)"),
            ("*.data.mcr.microsoft.com", "AzureFrontDoor.FirstParty", True, "MCR storage (CDN)"),
            ("management.azure.com", "AzureResourceManager", True, "Azure Resource Manager"),
            ("login.microsoftonline.com", "AzureActiveDirectory", True, "Microsoft Entra ID"),
            ("packages.microsoft.com", "", False, "node packages"),
            ("acs-mirror.azureedge.net", "", False, "kubelet, CNI and other binaries"),
            ("packages.aks.azure.com", "", False, "kubelet, CNI and other binaries (new mirror)"),
        ),
    ),
    "AzureUSGovernment": (
        "*.hcp.{region}.cx.aks.containerservice.azure.us",
        (
            ("mcr.microsoft.com", "MicrosoftContainerRegistry", True, "system images (MCR)"),
            ("*.data.mcr.microsoft.com", "AzureFrontDoor.FirstParty", True, "MCR storage (CDN)"),
            (
                "management.usgovcloudapi.net",
                "AzureResourceManager",
                True,
                "Azure Resource Manager",
            ),
            ("login.microsoftonline.us", "AzureActiveDirectory", True, "Microsoft Entra ID"),
            ("packages.microsoft.com", "", False, "node packages"),
            ("acs-mirror.azureedge.net", "", False, "kubelet, CNI and other binaries"),
            ("packages.aks.azure.com", "", False, "kubelet, CNI and other binaries (new mirror)"),
        ),
    ),
    "AzureChinaCloud": (
        "*.cx.prod.service.azk8s.cn",
        (
            ("mcr.azk8s.cn", "MicrosoftContainerRegistry", True, "system images (MCR mirror)"),
            ("*.data.mcr.azure.cn", "", True, "MCR storage"),
            ("management.chinacloudapi.cn", "AzureResourceManager", True, "Azure Resource Manager"),
            ("login.chinacloudapi.cn", "AzureActiveDirectory", True, "Microsoft Entra ID"),
            ("packages.microsoft.com", "", False, "node packages"),
            ("*.azk8s.cn", "", False, "kubelet, CNI and other binaries"),
        ),
    ),
}
_CRITICAL_NAMES = ("mcr.", "login.", "management.", ".azmk8s.io", "azk8s.cn", "containerservice")


@dataclass(frozen=True, slots=True)
class Target:
    """One destination nodes need, and how bad losing it is."""

    dst: Endpoint
    port: int
    protocol: str  # TCP / UDP
    critical: bool
    why: str
    api_server: bool = False
    service_tag: str = ""  # the NSG service tag that covers it (MicrosoftContainerRegistry...)

    @property
    def text(self) -> str:
        name = self.dst.fqdn or self.dst.ip
        if self.dst.fqdn and not self.api_server:
            name = self.dst.label  # the name as required (`*.data.mcr.microsoft.com`)
        if self.dst.fqdn and self.dst.ip:
            name = f"{self.dst.fqdn} ({self.dst.ip})"
        return f"{name} {self.protocol} {self.port}"


def cloud_of(location: str) -> str:
    loc = location.lower()
    if loc.startswith(("usgov", "usdod")):
        return "AzureUSGovernment"
    if loc.startswith("china"):
        return "AzureChinaCloud"
    return "AzureCloud"


def _tags(ip: str, region: str, extra: str = "", azure: bool = True) -> frozenset[str]:
    """The service tags of a destination: VirtualNetwork for a private address; Internet for
    a public one, plus AzureCloud (and its region) when it is an Azure service, plus its own
    service tag. A name with no known tag is only `Internet`."""
    if ip and not is_public(ip):
        return frozenset({"virtualnetwork"})
    tags = {"internet"}
    if azure:
        tags |= {"azurecloud", f"azurecloud.{region.lower()}"} if region else {"azurecloud"}
    if extra:
        tags |= {extra.lower(), f"{extra.lower()}.{region.lower()}"}
    return frozenset(tags)


def api_target(c: ClusterInfo, api_ips: tuple[str, ...]) -> Target:
    ip = api_ips[0] if api_ips else ""
    host = (c.private_fqdn or c.fqdn) if c.private_cluster else (c.fqdn or c.private_fqdn)
    if c.vnet_integration:
        host = ""  # API Server VNet Integration: nodes dial the internal IP, no DNS on the path
    dst = Endpoint(f"API server {host or ip}", ip=ip, tags=_tags(ip, c.location), fqdn=host)
    if not ip and c.private_cluster:
        dst = Endpoint(f"API server {host}", tags=frozenset({"virtualnetwork"}), fqdn=host)
    return Target(dst, 443, "TCP", True, "API server (kubelet, konnectivity, pods)", True)


def _proto(p: str) -> str:
    return "UDP" if p.lower() == "udp" else "TCP"


def required_targets(
    c: ClusterInfo,
    api_ips: tuple[str, ...],
    endpoints: list[EgressEndpoint] | None,
    dns_servers: tuple[str, ...],
) -> list[Target]:
    """What nodes need: the API server, then the cluster's egress endpoints (or the documented
    list), then the custom DNS servers."""
    out = [api_target(c, api_ips)]
    region = c.location
    seen = {out[0].dst.fqdn.lower()} if out[0].dst.fqdn else set()
    if endpoints:
        for ep in endpoints:
            name = ep.fqdn.lower()
            if not name or ep.port == 123 or name in seen or ".hcp." in name:
                continue
            seen.add(name)
            dst = Endpoint(
                name, tags=_tags("", region, azure=False), fqdn=sample_name(name, region)
            )
            out.append(
                Target(
                    dst,
                    ep.port,
                    _proto(ep.protocol),
                    any(k in name for k in _CRITICAL_NAMES),
                    ep.description or ep.category,
                )
            )
    else:
        _, listed = CLOUDS[cloud_of(region)]
        for name, tag, critical, why in listed:
            dst = Endpoint(
                name, tags=_tags("", region, tag, bool(tag)), fqdn=sample_name(name, region)
            )
            out.append(Target(dst, 443, "TCP", critical, why, service_tag=tag))
    for ip in dns_servers:
        dst = Endpoint(f"DNS server {ip}", ip=ip, tags=_tags(ip, region))
        out.append(Target(dst, 53, "UDP", True, "custom DNS server of the node VNet"))
    return out


def requirement_lines(
    c: ClusterInfo, endpoints: list[EgressEndpoint] | None, dns_servers: tuple[str, ...] = ()
) -> list[str]:
    """The egress to allow, one destination per line (for appliances aksdiag cannot read)."""
    lines = []
    pattern, listed = CLOUDS[cloud_of(c.location)]
    if not c.private_cluster:
        wildcard = pattern.format(region=c.location or "REGION")
        host = f"{c.fqdn} ({wildcard})" if c.fqdn else wildcard
        lines.append(f"{host} TCP 443 — API server (keep TLS ALPN intact: konnectivity needs it)")
    if endpoints:
        seen = set()
        for ep in endpoints:
            key = (ep.fqdn.lower(), ep.port)
            if ep.port == 123 or key in seen or (".hcp." in ep.fqdn and not c.private_cluster):
                continue
            seen.add(key)
            lines.append(
                f"{ep.fqdn} {_proto(ep.protocol)} {ep.port} — {ep.description or ep.category}"
            )
    else:
        lines += [f"{name} TCP 443 — {why}" for name, _, _, why in listed]
    lines += [f"{ip} UDP/TCP 53 — custom DNS server" for ip in dns_servers]
    return lines


def vnet_space(vnet: VirtualNetwork | None) -> tuple[str, ...]:
    return vnet.address_space if vnet else ()
