"""Commands the bot prints for nodes and pools, as AKS accepts them: run-command on scale set
instances (Windows: PowerShell, located by providerID), the script's output rather than
run-command's JSON, supported node replacement instead of `az vmss reimage`, new pools with a
lowercase name on a subnet that exists, and the current debug image."""

from __future__ import annotations

import shlex

from builders import SUB, agent_pool, az_cluster, event, nnc, node, pod, write_snapshot

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.runner import run

WIN = "aksnpwin000002"
SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/"
    "vnet-prod/subnets/{}"
)
CNI_V1_MSG = (
    "Failed create pod sandbox: rpc error: code = Unknown desc = NetworkPlugin cni failed to set "
    'up pod "web-1_shop" network: Failed to allocate address: Failed to delegate: Failed to '
    "allocate address: No available addresses"
)
AZURE_FLAT = {"networkPlugin": "azure", "serviceCidr": "10.0.0.0/16", "dnsServiceIp": "10.0.0.10"}


def _pool(**kw):
    return agent_pool(**kw)


def _commands(report, code):
    return [
        s.command for f in report.findings if f.code == code for s in f.remediation if s.command
    ]


def _diagnose(tmp_path, **snap):
    folder = write_snapshot(tmp_path / "snap", **snap)
    return run("pod-ip", SnapshotSource(folder, "prod"), ScenarioArgs())


def _windows_node():
    n = node(WIN, pool="npwin", os="windows", max_pods=30)
    n["spec"]["providerID"] = (
        f"azure:///subscriptions/{SUB}/resourceGroups/mc_rg-prod_prod_westeurope/providers/"
        "Microsoft.Compute/virtualMachineScaleSets/aks-npwin-38214757-vmss/virtualMachines/2"
    )
    return n


def test_windows_node_gets_a_powershell_run_command_on_its_scale_set_instance(tmp_path):
    cluster = az_cluster(
        networkProfile=AZURE_FLAT,
        agentPoolProfiles=[
            _pool(),
            _pool(name="npwin", osType="Windows", vnetSubnetId=SUBNET.format("nodes")),
        ],
    )
    pods = [pod(f"web-{i}", "shop", WIN, f"10.240.0.{10 + i}", {"app": "web"}) for i in range(3)]
    pods.append(pod("web-x", "shop", WIN, "", {"app": "web"}, phase="Pending", ready=False))
    report = _diagnose(
        tmp_path,
        cluster=cluster,
        nodes=[_windows_node()],
        pods=pods,
        events=[
            event("FailedCreatePodSandBox", CNI_V1_MSG, name="web-x", namespace="shop", host=WIN)
        ],
    )
    cmds = [c for c in _commands(report, "podip.ip-leak") if "run-command" in c]
    assert cmds, report.findings
    argv = shlex.split(cmds[0])
    assert argv[:4] == ["az", "vmss", "run-command", "invoke"]
    assert argv[argv.index("--name") + 1] == "aks-npwin-38214757-vmss"
    assert argv[argv.index("--instance-id") + 1] == "2"
    assert argv[argv.index("--command-id") + 1] == "RunPowerShellScript"
    assert "C:\\k\\azure-vnet-ipam.json" in argv[argv.index("--scripts") + 1]
    assert argv[-4:] == ["--query", "value[0].message", "-o", "tsv"]
    assert not any(c.startswith("kubectl debug node/") for c in _commands(report, "podip.ip-leak"))


def test_new_pool_on_a_full_pod_subnet_goes_to_a_new_subnet_with_a_lowercase_name(tmp_path):
    pool = _pool(count=10, vnetSubnetId=SUBNET.format("nodes"), podSubnetId=SUBNET.format("pods"))
    report = _diagnose(
        tmp_path,
        cluster=az_cluster(networkProfile=AZURE_FLAT, agentPoolProfiles=[pool]),
        nodes=[node("aks-nodepool1-38214757-vmss000003")],
        nodenetworkconfigs=[nnc("aks-nodepool1-38214757-vmss000003", subnet="10.241.0.0/24")],
    )
    (cmd,) = [c for c in _commands(report, "podip.subnet-capacity") if "nodepool add" in c]
    argv = shlex.split(cmd)
    assert argv[argv.index("--name") + 1] == "newpool"
    assert argv[argv.index("--vnet-subnet-id") + 1] == SUBNET.format("nodes")
    assert argv[argv.index("--pod-subnet-id") + 1] == SUBNET.format("NEW_POD_SUBNET")


def test_managed_vnet_gets_no_subnet_flag_it_would_reject(tmp_path):
    pool = _pool(count=60, maxPods=250)  # 61 × 251 > the managed 10.224.0.0/16's 65,531
    pool["count"] = 300
    report = _diagnose(
        tmp_path, cluster=az_cluster(networkProfile=AZURE_FLAT, agentPoolProfiles=[pool])
    )
    cmds = _commands(report, "podip.subnet-capacity")
    assert cmds
    assert not any("--vnet-subnet-id" in c for c in cmds)
    assert any("--network-plugin-mode overlay" in c for c in cmds)


def test_dynamic_pod_subnet_sized_for_demand_is_quiet_and_static_block_counts_blocks(tmp_path):
    # 10 nodes + 1 surge, maxPods 20: 220 pods fit a /24 (251); whole 16-IP batches would not
    dynamic = _pool(
        count=10, maxPods=20, vnetSubnetId=SUBNET.format("nodes"), podSubnetId=SUBNET.format("pods")
    )
    args = {
        "nodes": [node("aks-nodepool1-38214757-vmss000003")],
        "nodenetworkconfigs": [nnc("aks-nodepool1-38214757-vmss000003", subnet="10.241.0.0/24")],
    }
    quiet = _diagnose(
        tmp_path / "d",
        cluster=az_cluster(networkProfile=AZURE_FLAT, agentPoolProfiles=[dynamic]),
        **args,
    )
    assert _commands(quiet, "podip.subnet-capacity") == []
    static = dynamic | {"podIpAllocationMode": "StaticBlock"}
    report = _diagnose(
        tmp_path / "s",
        cluster=az_cluster(networkProfile=AZURE_FLAT, agentPoolProfiles=[static]),
        **args,
    )
    (f,) = [f for f in report.findings if f.code == "podip.subnet-capacity"]
    assert "352 IPs needed" in f.title  # 11 × ceil(21 / 16) × 16


def test_overlay_node_without_spec_pod_cidr_but_with_a_node_network_config_is_not_full(tmp_path):
    n1, n2 = "aks-nodepool1-38214757-vmss000003", "aks-nodepool1-38214757-vmss000004"
    overlay_nnc = nnc(n2, subnet="10.244.0.0/16")
    overlay_nnc["status"]["networkContainers"][0]["type"] = "Overlay"
    report = _diagnose(
        tmp_path,
        cluster=az_cluster(),
        nodes=[node(n1, pod_cidr="10.244.3.0/24"), node(n2)],
        nodenetworkconfigs=[overlay_nnc],
    )
    assert [f for f in report.findings if f.code == "podip.subnet-capacity"] == []
