"""Snapshot folders for the command templates no bundled example reaches (tools/check_commands):
failed and long-running operations, Windows nodes, pod subnets and pod CIDRs that run out,
authorized-range edge cases, Cilium policies, a broken CoreDNS. Built with tests/builders."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from builders import (
    SUB,
    agent_pool,
    az_cluster,
    cilium_policy,
    configmap,
    endpointslice,
    event,
    kubernetes_api,
    nnc,
    node,
    pod,
    service,
    write_snapshot,
)

SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/"
    "vnet-prod/subnets/{}"
)
N1 = "aks-nodepool1-38214757-vmss000003"
WIN = "aksnpwin000002"
CNI_V1 = (
    "Failed create pod sandbox: rpc error: code = Unknown desc = NetworkPlugin cni failed to set "
    'up pod "web-x_shop" network: Failed to allocate address: No available addresses'
)


def _pool(**kw: Any) -> dict[str, Any]:
    return agent_pool(**kw)


def _net(**kw: Any) -> dict[str, Any]:
    c = az_cluster()
    return {**c["networkProfile"], **kw}


def _cases() -> dict[str, dict[str, Any]]:
    flat = _net(networkPlugin="azure", networkPluginMode=None, podCidr=None, podCidrs=None)
    win = node(WIN, pool="npwin", os="windows")
    win["spec"]["providerID"] = (
        f"azure:///subscriptions/{SUB}/resourceGroups/mc_rg-prod_prod_westeurope/providers/"
        "Microsoft.Compute/virtualMachineScaleSets/aks-npwin-38214757-vmss/virtualMachines/2"
    )
    failing = [pod("web-x", "shop", WIN, "", {"app": "web"}, phase="Pending", ready=False)]
    coredns = [
        pod(
            f"coredns-7d9-{s}",
            "kube-system",
            N1,
            "",
            {"k8s-app": "kube-dns"},
            ready=False,
            restarts=9,
            waiting="CrashLoopBackOff",
        )
        for s in "ab"
    ]
    cilium = copy.deepcopy(az_cluster())
    cilium["networkProfile"].update(networkPolicy="cilium", networkDataplane="cilium")
    return {
        "failed": {
            "cluster": az_cluster(
                provisioningState="Failed",
                status={
                    "provisioningError": {"code": "VMExtensionProvisioningError", "message": "x"}
                },
                agentPoolProfiles=[_pool(provisioningState="Failed")],
                kubernetesVersion="1.29.9",
                currentKubernetesVersion="1.29.9",
            )
        },
        "upgrading": {
            "cluster": az_cluster(
                provisioningState="Upgrading", systemData={"lastModifiedAt": "2026-11-19T00:00:00Z"}
            ),
            "captured_at": "2026-11-20T10:00:00Z",
        },
        "only-outbound": {
            "cluster": az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["0.0.0.0/32"]})
        },
        "no-ranges": {"cluster": az_cluster()},
        "node-public-ips": {
            "cluster": az_cluster(
                apiServerAccessProfile={"authorizedIpRanges": ["20.50.0.0/24"]},
                agentPoolProfiles=[
                    _pool(enableNodePublicIp=True),
                    _pool(
                        name="pips",
                        enableNodePublicIp=True,
                        nodePublicIpPrefixId=SUBNET.format("x"),
                    ),
                ],
            )
        },
        "windows-leak": {
            "cluster": az_cluster(
                networkProfile=flat,
                agentPoolProfiles=[
                    _pool(),
                    _pool(name="npwin", osType="Windows", vnetSubnetId=SUBNET.format("n")),
                ],
            ),
            "nodes": [win],
            "pods": failing,
            "events": [
                event("FailedCreatePodSandBox", CNI_V1, name="web-x", namespace="shop", host=WIN)
            ],
        },
        "pod-subnet-full": {
            "cluster": az_cluster(
                networkProfile=flat,
                agentPoolProfiles=[
                    _pool(
                        count=10,
                        vnetSubnetId=SUBNET.format("nodes"),
                        podSubnetId=SUBNET.format("pods"),
                        podIpAllocationMode="StaticBlock",
                    )
                ],
            ),
            "nodes": [node(N1)],
            "nodenetworkconfigs": [
                nnc(
                    N1,
                    requested=48,
                    assigned=32,
                    subnet="10.241.0.0/24",
                    nc_status="NCUpdateSubnetFullError",
                )
            ],
        },
        "managed-vnet-full": {
            "cluster": az_cluster(
                networkProfile=flat, agentPoolProfiles=[_pool(count=300, maxPods=250)]
            )
        },
        "overlay-full": {
            "cluster": az_cluster(
                networkProfile=_net(podCidr="10.244.0.0/22", podCidrs=["10.244.0.0/22"]),
                agentPoolProfiles=[_pool(count=10)],
            )
        },
        "cilium": {
            "cluster": cilium,
            **kubernetes_api("20.31.50.4"),
            "pods": [
                pod("worker-1", "shop", N1, "10.244.0.21", {"app": "worker"}),
                pod("web-1", "shop", N1, "10.244.0.22", {"app": "web"}, ports=[("http", 8080)]),
            ],
            "services": [
                *kubernetes_api("20.31.50.4")["services"],
                service("web", "shop", {"app": "web"}, [("http", 80, 8080)]),
            ],
            "endpointslices": [
                *kubernetes_api("20.31.50.4")["endpointslices"],
                endpointslice("web", "shop", [("10.244.0.22", True, "web-1")]),
            ],
            "networkpolicies": [],
            "ciliumnetworkpolicies": [
                cilium_policy(
                    "lockdown",
                    "shop",
                    {},
                    egress=[{}],
                    ingress=[{"toPorts": [{"ports": [{"port": "9090"}]}]}],
                )
            ],
            "ciliumclusterwidenetworkpolicies": [],
        },
        "coredns-down": {
            "cluster": az_cluster(),
            "pods": coredns,
            "services": [
                service("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, [("dns", 53, 53)])
            ],
            "endpointslices": [endpointslice("kube-dns", "kube-system", [], [("dns", 53)])],
            "configmaps": [configmap("coredns-custom", {"corp.server": "corp:53 {\n forwrd .\n"})],
        },
    }


def fixture_folders(root: Path) -> list[Path]:
    out = []
    for name, res in _cases().items():
        res = dict(res)
        out.append(write_snapshot(root / name, **res))
    return out
