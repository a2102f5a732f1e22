"""Registers the Azure network path checks (SPEC "The Azure network path") in the scenarios
they answer: `node-api` (NSGs, routes, Azure Firewall, DNS links), `apiserver` (DNS links) and
`service` (kubenet routes, NSGs inside the VNet)."""

from __future__ import annotations

from diagnostics.checks import netpath_dns, nodeapi_path, service_azure
from diagnostics.checks.base import Check, CheckRegistry
from diagnostics.resources import CLUSTER, NETWORK, PRIVATE_DNS


def register(registry: CheckRegistry) -> None:
    """The service checks only use the network path: without arm/ the report lists `network`
    as not read, and the service's own checks stay unaffected."""
    nodeapi_path.register(registry)
    dns_uses = ("pods", "nodes", "events")
    registry.add(
        Check(
            "nodeapi.private_dns_link",
            "node-api",
            ("nodeapi.private-dns-link",),
            netpath_dns.nodeapi_link,
            needs=(CLUSTER, NETWORK),
            uses=dns_uses,
        )
    )
    registry.add(
        Check(
            "apiserver.private_dns_link",
            "apiserver",
            ("apiserver.private-dns-link",),
            netpath_dns.apiserver_link,
            needs=(CLUSTER, PRIVATE_DNS),
        )
    )
    registry.add(
        Check(
            "service.kubenet_routes",
            "service",
            ("service.kubenet-routes-missing",),
            service_azure.kubenet_routes,
            needs=(CLUSTER, "nodes"),
            uses=(NETWORK,),
        )
    )
    registry.add(
        Check(
            "service.nsg_pods",
            "service",
            ("service.nsg-blocks-pods",),
            service_azure.nsg_blocks_pods,
            needs=(CLUSTER, "services", "pods"),
            uses=(NETWORK,),
        )
    )
