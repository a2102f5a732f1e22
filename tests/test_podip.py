"""pod-ip scenario over snapshot folders: every code raised by a fixture, silent when healthy,
and the false-alarm traps (ImagePullBackOff pods hold IPs, recovered pods, --node, odd names)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from builders import agent_pool, az_cluster, event, event_v1, nnc, node, pod, write_snapshot

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.model import Finding, Report, Severity
from diagnostics.runner import run

N1 = "aks-nodepool1-38214757-vmss000003"
N2 = "aks-nodepool1-38214757-vmss00000a"  # instance 10 in base 36
MC = "MC_rg-prod_prod_westeurope"
CNS_MSG = (
    "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for "
    "sandbox 'ac1b1354613465324654c1588ac64f1a756aa32f14732246ac4132133ba21364': plugin "
    "type='azure-vnet' failed (add): IPAM Invoker Add failed with error: Failed to get IP address "
    "from CNS with error: %w: AllocateIPConfig failed: not enough IPs available for "
    "9c6a7f37-dd43-4f7c-a01f-1ff41653609c, waiting on Azure CNS to allocate more with NC Status: "
)
CNI_V1_MSG = (
    "Failed create pod sandbox: rpc error: code = Unknown desc = NetworkPlugin cni failed to set "
    'up pod "deployment-azuredisk6-874857994-487td_default" network: Failed to allocate address: '
    "Failed to delegate: Failed to allocate address: No available addresses"
)
KUBENET_MSG = (
    "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to set up sandbox "
    'container "5b1c0e" network for pod "web-7d4b9c8f6d-q8x7z": networkPlugin kubenet failed to '
    'set up pod "web-7d4b9c8f6d-q8x7z_shop" network: error adding container to network '
    '"kubenet": failed to allocate for range 0: no IP addresses available in range set: '
    "10.244.3.1-10.244.3.254"
)

KUBENET = {
    "networkPlugin": "kubenet",
    "podCidr": "10.244.0.0/16",
    "podCidrs": ["10.244.0.0/16"],
    "serviceCidr": "10.0.0.0/16",
    "dnsServiceIp": "10.0.0.10",
}
AZURE_FLAT = {"networkPlugin": "azure", "serviceCidr": "10.0.0.0/16", "dnsServiceIp": "10.0.0.10"}
SUBNET = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-net/providers/"
    "Microsoft.Network/virtualNetworks/vnet-prod/subnets/{}"
)


def pool(**kw: Any) -> dict[str, Any]:
    return agent_pool(**({"upgradeSettings": {"maxSurge": "1"}} | kw))


def running(n: int, node_name: str = N1, ns: str = "shop", start: int = 10) -> list[dict[str, Any]]:
    return [
        pod(
            f"web-7d4b9c8f6d-{i:05x}",
            ns,
            node_name,
            f"10.241.0.{start + i}",
            {"app": "web"},
            owner=("ReplicaSet", "web-7d4b9c8f6d"),
        )
        for i in range(n)
    ]


def stuck(name: str, node_name: str = N1, ns: str = "shop") -> dict[str, Any]:
    return pod(name, ns, node_name, "", {"app": "api"}, phase="Pending", ready=False)


def diagnose(
    tmp_path, scenario: str = "pod-ip", args: ScenarioArgs | None = None, **snapshot: Any
) -> Report:
    folder = write_snapshot(tmp_path / "snap", **snapshot)
    return run(scenario, SnapshotSource(folder, "prod"), args or ScenarioArgs())


def found(report: Report, code: str) -> list[Finding]:
    return [f for f in report.findings if f.code == code]


def loud(report: Report) -> list[str]:
    return sorted(f.code for f in report.findings if f.severity.at_least(Severity.WARNING))


def commands(f: Finding) -> list[str]:
    return [s.command for s in f.remediation if s.command]


# ---------------------------------------------------------------- healthy
def test_healthy_overlay_cluster_raises_nothing(tmp_path):
    report = diagnose(
        tmp_path,
        cluster=az_cluster(),
        nodes=[node(N1, pod_cidr="10.244.3.0/24"), node(N2, pod_cidr="10.244.4.0/24")],
        pods=running(12) + running(8, N2, start=100),
        events=[event("Pulled", "Successfully pulled image", type="Normal", host=N1)],
    )
    assert report.findings == []
    assert not [u for u in report.unavailable if u.checks]


def test_healthy_dynamic_cluster_with_normal_headroom(tmp_path):
    cluster = az_cluster(
        networkProfile=AZURE_FLAT,
        agentPoolProfiles=[
            pool(vnetSubnetId=SUBNET.format("nodes"), podSubnetId=SUBNET.format("pods"))
        ],
    )
    report = diagnose(
        tmp_path,
        cluster=cluster,
        nodes=[node(N1)],
        pods=running(20),
        nodenetworkconfigs=[nnc(N1, requested=32, assigned=32, subnet="10.241.0.0/16")],
        events=[],
    )
    assert loud(report) == []


# ---------------------------------------------------------------- allocation-failed
@pytest.mark.parametrize("shape", [event, event_v1], ids=["core-v1", "events.k8s.io"])
def test_allocation_failed_in_both_event_shapes(tmp_path, shape):
    report = diagnose(
        tmp_path,
        cluster=az_cluster(),
        nodes=[node(N1)],
        pods=[*running(5), stuck("api-5f8d7c9b4-xk2lp")],
        events=[
            shape(
                "FailedCreatePodSandBox",
                CNS_MSG,
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                count=204,
                host=N1,
                last="2026-11-20T08:09:00Z",
            )
        ],
    )
    (f,) = found(report, "podip.allocation-failed")
    assert f.severity is Severity.CRITICAL
    assert f.subject == f"node/{N1}"
    text = "\n".join(f.evidence)
    assert "204 FailedCreatePodSandBox warnings" in text
    assert "shop/api-5f8d7c9b4-xk2lp (x204, ContainerCreating, no IP)" in text
    assert "not enough IPs available" in text
    assert "kubectl describe pod -n shop api-5f8d7c9b4-xk2lp" in commands(f)


@pytest.mark.parametrize(
    "message",
    [
        CNS_MSG,
        CNI_V1_MSG,
        KUBENET_MSG,
        'failed to setup network for sandbox "9f1": Failed to allocate address: address pool exhausted',
    ],
    ids=["not-enough-ips", "no-available-addresses", "range-set", "failed-to-allocate"],
)
def test_each_allocation_message_is_recognised(tmp_path, message):
    report = diagnose(
        tmp_path,
        nodes=[node(N1)],
        pods=[stuck("api-5f8d7c9b4-xk2lp")],
        events=[
            event(
                "FailedCreatePodSandBox",
                message,
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                host=N1,
            )
        ],
    )
    assert [f.code for f in report.findings] == ["podip.allocation-failed"]


def test_other_sandbox_errors_and_normal_events_are_not_allocation_failures(tmp_path):
    report = diagnose(
        tmp_path,
        nodes=[node(N1)],
        pods=[stuck("api-5f8d7c9b4-xk2lp")],
        events=[
            event(
                "FailedCreatePodSandBox",
                "Failed to create pod sandbox: rpc error: code = "
                "DeadlineExceeded desc = context deadline exceeded",
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                host=N1,
            ),
            event(
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created. No available addresses",
                type="Normal",
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                host=N1,
            ),
        ],
    )
    assert found(report, "podip.allocation-failed") == []


def test_failures_of_pods_that_since_got_an_address_are_a_warning(tmp_path):
    report = diagnose(
        tmp_path,
        nodes=[node(N1)],
        pods=running(3),
        events=[
            event(
                "FailedCreatePodSandBox",
                CNS_MSG,
                name="web-7d4b9c8f6d-00000",
                namespace="shop",
                count=3,
                host=N1,
            )
        ],
    )
    (f,) = found(report, "podip.allocation-failed")
    assert f.severity is Severity.WARNING
    assert "every affected pod has an address now or is gone" in f.evidence


def test_event_without_host_is_placed_on_the_pods_node(tmp_path):
    report = diagnose(
        tmp_path,
        nodes=[node(N2)],
        pods=[stuck("api-5f8d7c9b4-xk2lp", N2)],
        events=[
            event_v1(
                "FailedCreatePodSandBox", CNI_V1_MSG, name="api-5f8d7c9b4-xk2lp", namespace="shop"
            )
        ],
    )
    (f,) = found(report, "podip.allocation-failed")
    assert f.subject == f"node/{N2}"


# ---------------------------------------------------------------- ip-leak
def test_leak_on_azure_cni_with_nodenetworkconfig(tmp_path):
    report = diagnose(
        tmp_path,
        cluster=az_cluster(networkProfile=AZURE_FLAT),
        nodes=[node(N1, max_pods=110)],
        pods=[*running(21), stuck("api-5f8d7c9b4-xk2lp")],
        nodenetworkconfigs=[nnc(N1, requested=48, assigned=48)],
        events=[
            event(
                "FailedCreatePodSandBox",
                CNS_MSG,
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                count=74,
                host=N1,
            )
        ],
    )
    (f,) = found(report, "podip.ip-leak")
    assert f.severity is Severity.WARNING
    assert f.title.startswith(f"IP leak on {N1}")
    text = "\n".join(f.evidence)
    assert "requested 48, allocated 48" in text and "release threshold 150% = 24" in text
    assert "27 allocated IPs are used by no pod" in text
    cmds = commands(f)
    assert f"kubectl get nnc -n kube-system {N1} -o wide" in cmds
    jq = (
        f"kubectl get pods -A --field-selector spec.nodeName={N1},status.phase=Running -o json | "
        "jq -r '.items[] | select(.spec.hostNetwork != true) | .status.podIP' | wc -l"
    )
    assert jq in cmds
    assert any("--field-selector spec.nodeName=" + N1 in c and "azure-cns" in c for c in cmds)
    assert found(report, "podip.node-ip-exhausted") == []


def test_free_ips_within_the_release_threshold_without_failures_are_no_leak(tmp_path):
    report = diagnose(
        tmp_path,
        nodes=[node(N1, max_pods=110)],
        pods=running(21),
        nodenetworkconfigs=[nnc(N1, requested=48, assigned=48)],
        events=[],
    )
    assert found(report, "podip.ip-leak") == []


def test_suspected_leak_on_kubenet_counts_imagepullbackoff_pods(tmp_path):
    pulling = [
        pod(
            f"worker-6c9f8d7b5-{i:05x}",
            "batch",
            N1,
            f"10.244.3.{200 + i}",
            {"app": "worker"},
            phase="Pending",
            ready=False,
            waiting="ImagePullBackOff",
        )
        for i in range(5)
    ]
    report = diagnose(
        tmp_path,
        cluster=az_cluster(networkProfile=KUBENET),
        nodes=[node(N1, pod_cidr="10.244.3.0/24", max_pods=110)],
        pods=running(7) + pulling + [stuck("api-5f8d7c9b4-xk2lp")],
        events=[
            event(
                "FailedCreatePodSandBox",
                KUBENET_MSG,
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                count=31,
                host=N1,
            )
        ],
    )
    (f,) = found(report, "podip.ip-leak")
    assert f.severity is Severity.WARNING
    assert "suspected" in f.title
    text = "\n".join(f.evidence)
    assert "pod CIDR 10.244.3.0/24 holds 254 addresses" in text
    assert (
        "12 non-hostNetwork pods hold an IP (7 running, 5 in ImagePullBackOff hold one too)" in text
    )
    cmds = commands(f)
    run_cmd = next(c for c in cmds if c.startswith("az vmss run-command invoke"))
    argv = shlex.split(run_cmd)
    assert argv[argv.index("--resource-group") + 1] == MC
    assert argv[argv.index("--name") + 1] == "aks-nodepool1-38214757-vmss"
    assert argv[argv.index("--instance-id") + 1] == "3"
    assert "/var/lib/cni/networks" in argv[argv.index("--scripts") + 1]
    debug = next(s for s in f.remediation if (s.command or "").startswith("kubectl debug"))
    assert (
        debug.command
        == f"kubectl debug node/{N1} -it --image=mcr.microsoft.com/azurelinux/busybox:1.36"
    )
    assert "chroot /host" in debug.text and "creates" in debug.text
    # reimaging a scale set instance directly is unsupported on AKS: delete the machine
    assert not any("vmss reimage" in c for c in cmds)
    assert (
        "az aks nodepool delete-machines --resource-group rg-prod --cluster-name prod "
        f"--name nodepool1 --machine-names {N1}" in cmds
    )
    assert run_cmd.endswith("--query 'value[0].message' -o tsv")


def test_base36_instance_id_in_run_command(tmp_path):
    report = diagnose(
        tmp_path,
        cluster=az_cluster(networkProfile=KUBENET),
        nodes=[node(N2, pod_cidr="10.244.4.0/24", max_pods=110)],
        pods=[*running(4, N2), stuck("api-5f8d7c9b4-xk2lp", N2)],
        events=[
            event(
                "FailedCreatePodSandBox",
                KUBENET_MSG,
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                host=N2,
            )
        ],
    )
    (f,) = found(report, "podip.ip-leak")
    run_cmd = next(c for c in commands(f) if c.startswith("az vmss run-command"))
    assert "--instance-id 10 " in run_cmd


def test_imagepullbackoff_pods_make_a_full_node_exhausted_not_leaking(tmp_path):
    """Azure CNI (node subnet): 18 running + 11 ImagePullBackOff = 29 of maxPods 30 hold IPs."""
    pulling = [
        pod(
            f"worker-6c9f8d7b5-{i:05x}",
            "batch",
            N1,
            f"10.240.0.{100 + i}",
            {"app": "worker"},
            phase="Pending",
            ready=False,
            waiting="ImagePullBackOff",
        )
        for i in range(11)
    ]
    report = diagnose(
        tmp_path,
        cluster=az_cluster(networkProfile=AZURE_FLAT),
        nodes=[node(N1, max_pods=30)],
        pods=running(18) + pulling + [stuck("api-5f8d7c9b4-xk2lp")],
        events=[
            event(
                "FailedCreatePodSandBox",
                CNI_V1_MSG,
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                count=12,
                host=N1,
            )
        ],
    )
    assert found(report, "podip.ip-leak") == []
    (f,) = found(report, "podip.node-ip-exhausted")
    assert f.severity is Severity.WARNING
    assert f.title == f"{N1} uses every pod IP it may have (29 of 30)"
    assert any(
        c.startswith(
            "az aks nodepool scale --resource-group rg-prod --cluster-name prod "
            "--name nodepool1 --node-count 4"
        )
        for c in commands(f)
    )


# ---------------------------------------------------------------- node-ip-exhausted
def test_nnc_that_asked_for_more_than_it_got_on_a_full_node(tmp_path):
    report = diagnose(
        tmp_path,
        nodes=[node(N1, max_pods=60)],
        pods=running(31),
        nodenetworkconfigs=[nnc(N1, requested=48, assigned=32)],
        events=[],
    )
    (f,) = found(report, "podip.node-ip-exhausted")
    assert "CNS asked for 16 more IPs than it got" in "\n".join(f.evidence)


# ---------------------------------------------------------------- terminated-pods-backlog
def test_terminated_pods_reaching_max_pods(tmp_path):
    done = [
        pod(
            f"report-28930230-{i:05x}",
            "batch",
            N1,
            "",
            {"job-name": "report-28930230"},
            phase="Succeeded",
            ready=False,
            owner=("Job", "report-28930230"),
            finished="2026-11-20T07:30:00Z",
        )
        for i in range(30)
    ] + [
        pod(
            f"etl-7f9c{i:02d}",
            "batch",
            N1,
            "",
            {"job-name": "etl"},
            phase="Failed",
            ready=False,
            owner=("Job", "etl"),
            finished="2026-11-19T10:00:00Z",
        )
        for i in range(4)
    ]
    report = diagnose(tmp_path, nodes=[node(N1, max_pods=30)], pods=running(5) + done, events=[])
    (f,) = found(report, "podip.terminated-pods-backlog")
    # no allocation failure: finished pods hold no IP (holds_ip), so it is clean-up, not an alarm
    assert f.severity is Severity.INFO
    text = "\n".join(f.evidence)
    assert "no IP allocation failure on this node" in text
    assert (
        f"34 terminated pods are still on {N1} (4 Failed, 30 Succeeded); the node's maxPods is 30"
        in text
    )
    assert "made by: CronJob batch/report (30 pods), Job batch/etl (4 pods)" in text
    cmds = commands(f)
    assert (
        f"kubectl delete pods -A --field-selector spec.nodeName={N1},status.phase=Succeeded" in cmds
    )
    cron = next(c for c in cmds if c.startswith("kubectl patch cronjob"))
    argv = shlex.split(cron)
    assert argv[:6] == ["kubectl", "patch", "cronjob", "-n", "batch", "report"]
    assert '"ttlSecondsAfterFinished":3600' in argv[-1]
    assert any(c.startswith("kubectl patch job -n batch etl ") for c in cmds)
    assert not any("terminated-pod-gc-threshold" in c for c in cmds)
    assert any("--terminated-pod-gc-threshold cannot be lowered" in s.text for s in f.remediation)


def test_fewer_terminated_pods_on_a_node_with_allocation_failures(tmp_path):
    done = [pod(f"job-{i}", "batch", N1, "", {}, phase="Failed", ready=False) for i in range(8)]
    report = diagnose(
        tmp_path,
        nodes=[node(N1, max_pods=30)],
        pods=running(20) + done + [stuck("api-5f8d7c9b4-xk2lp")],
        events=[
            event(
                "FailedCreatePodSandBox",
                CNI_V1_MSG,
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                host=N1,
            )
        ],
    )
    (f,) = found(report, "podip.terminated-pods-backlog")
    assert f.severity is Severity.WARNING


def test_a_few_terminated_pods_on_a_quiet_node_are_fine(tmp_path):
    done = [pod(f"job-{i}", "batch", N1, "", {}, phase="Succeeded", ready=False) for i in range(8)]
    report = diagnose(tmp_path, nodes=[node(N1, max_pods=30)], pods=running(20) + done, events=[])
    assert found(report, "podip.terminated-pods-backlog") == []


# ---------------------------------------------------------------- subnet-capacity
def test_kubenet_pod_cidr_too_small_for_max_nodes_plus_surge(tmp_path):
    net = dict(KUBENET, podCidr="10.244.0.0/22", podCidrs=["10.244.0.0/22"])
    cluster = az_cluster(
        networkProfile=net,
        agentPoolProfiles=[pool(count=3, enableAutoScaling=True, minCount=3, maxCount=4)],
    )
    report = diagnose(tmp_path, cluster=cluster, nodes=[node(N1, pod_cidr="10.244.0.0/24")])
    (f,) = found(report, "podip.subnet-capacity")
    assert f.severity is Severity.WARNING
    text = "\n".join(f.evidence)
    assert "10.244.0.0/22, which holds 4 of them" in text
    assert "4 nodes plus 1 surge nodes during upgrades = 5 /24s" in text


def test_kubenet_nodes_without_a_pod_cidr_are_named(tmp_path):
    cluster = az_cluster(networkProfile=KUBENET)
    report = diagnose(
        tmp_path, cluster=cluster, nodes=[node(N1, pod_cidr="10.244.3.0/24"), node(N2)]
    )
    (f,) = found(report, "podip.subnet-capacity")
    assert f"nodes that got no pod CIDR (already full): {N2}" in f.evidence


def test_overlay_with_a_wide_pod_cidr_is_fine(tmp_path):
    report = diagnose(tmp_path, cluster=az_cluster(), nodes=[node(N1, pod_cidr="10.244.3.0/24")])
    assert found(report, "podip.subnet-capacity") == []


def test_azure_cni_node_subnet_of_unknown_size_states_the_requirement(tmp_path):
    cluster = az_cluster(
        networkProfile=AZURE_FLAT,
        agentPoolProfiles=[pool(count=5, vnetSubnetId=SUBNET.format("aks-nodes"))],
    )
    report = diagnose(tmp_path, cluster=cluster)
    (f,) = found(report, "podip.subnet-capacity")
    assert f.severity is Severity.INFO
    assert "(nodes + surge) × (maxPods + 1) = 186 IPs" in f.evidence[0]
    assert (
        f"az network vnet subnet show --ids {SUBNET.format('aks-nodes')} --query addressPrefix -o tsv"
        in commands(f)
    )


def test_dynamic_pod_subnet_smaller_than_the_pools_need(tmp_path):
    cluster = az_cluster(
        networkProfile=AZURE_FLAT,
        agentPoolProfiles=[
            pool(count=10, vnetSubnetId=SUBNET.format("nodes"), podSubnetId=SUBNET.format("pods"))
        ],
    )
    report = diagnose(
        tmp_path,
        cluster=cluster,
        nodes=[node(N1)],
        pods=running(20),
        nodenetworkconfigs=[nnc(N1, requested=32, assigned=32, subnet="10.241.0.0/24")],
    )
    (f,) = found(report, "podip.subnet-capacity")
    assert f.severity is Severity.WARNING
    # DynamicIndividual: 16-IP batches by demand, no primary IP: (10 + 1 surge) × 30
    assert "330 IPs needed, 251 usable" in f.title


def test_nnc_reporting_subnet_full_or_getting_no_ips(tmp_path):
    full = nnc(N1, requested=48, assigned=32, nc_status="NCUpdateSubnetFullError")
    starved = nnc(N2, requested=16, assigned=0, ips=0)
    report = diagnose(
        tmp_path,
        cluster=az_cluster(networkProfile=AZURE_FLAT),
        nodes=[node(N1), node(N2)],
        pods=running(20),
        nodenetworkconfigs=[full, starved],
        events=[],
    )
    (f,) = [f for f in found(report, "podip.subnet-capacity") if "is full" in f.title]
    text = "\n".join(f.evidence)
    assert f"NCUpdateSubnetFullError: {N1}" in text
    assert f"no IPs at all: {N2} (requested 16)" in text


def test_subnet_capacity_needs_the_cluster_resource(tmp_path):
    report = diagnose(tmp_path, nodes=[node(N1)], pods=running(2), events=[])
    (u,) = [u for u in report.unavailable if u.source == "cluster"]
    assert "podip.subnet-capacity" in u.checks


# ---------------------------------------------------------------- --node and sources
def test_node_argument_limits_the_scenario_to_that_node(tmp_path):
    events = [
        event(
            "FailedCreatePodSandBox",
            CNI_V1_MSG,
            name="api-5f8d7c9b4-xk2lp",
            namespace="shop",
            host=N1,
        ),
        event(
            "FailedCreatePodSandBox",
            CNI_V1_MSG,
            name="api-5f8d7c9b4-zz9q2",
            namespace="shop",
            host=N2,
        ),
    ]
    snap: dict[str, Any] = dict(
        nodes=[node(N1), node(N2)],
        events=events,
        pods=[stuck("api-5f8d7c9b4-xk2lp"), stuck("api-5f8d7c9b4-zz9q2", N2)],
    )
    report = diagnose(tmp_path, args=ScenarioArgs(node=N2), **snap)
    assert [f.subject for f in report.findings] == [f"node/{N2}"]


def test_unknown_node_is_reported_with_close_names(tmp_path):
    report = diagnose(
        tmp_path,
        args=ScenarioArgs(node="aks-nodepool1-38214757-vmss000004"),
        nodes=[node(N1), node(N2)],
        pods=running(2),
        events=[],
    )
    (f,) = found(report, "podip.node-not-found")
    assert f.severity is Severity.WARNING
    assert any(N1 in line and "did you mean" in line for line in f.evidence)


def test_missing_events_are_reported_not_skipped(tmp_path):
    report = diagnose(tmp_path, nodes=[node(N1)], pods=running(2))
    (u,) = [u for u in report.unavailable if u.source == "events"]
    assert {"podip.allocation-failed", "podip.ip-leak"} <= set(u.checks)
    assert "could not check" in u.sentence()


def test_odd_resource_group_names_survive_shell_quoting(tmp_path):
    rg = "rg-prod (eu)"
    cluster = az_cluster(rg=rg, networkProfile=KUBENET, nodeResourceGroup="MC_rg-prod (eu)_prod")
    report = diagnose(
        tmp_path,
        cluster=cluster,
        nodes=[node(N1, pod_cidr="10.244.3.0/24", max_pods=110)],
        pods=[*running(3), stuck("api-5f8d7c9b4-xk2lp")],
        events=[
            event(
                "FailedCreatePodSandBox",
                KUBENET_MSG,
                name="api-5f8d7c9b4-xk2lp",
                namespace="shop",
                host=N1,
            )
        ],
    )
    (f,) = found(report, "podip.ip-leak")
    for cmd in commands(f):
        argv = shlex.split(cmd)
        if "--resource-group" in argv:
            want = "rg-prod (eu)" if argv[:2] == ["az", "aks"] else "MC_rg-prod (eu)_prod"
            assert argv[argv.index("--resource-group") + 1] == want


# ---------------------------------------------------------------- bundled examples
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_CODES = {
    "broken-podip-cni": {
        "podip.allocation-failed",
        "podip.ip-leak",
        "podip.node-ip-exhausted",
        "podip.terminated-pods-backlog",
        "podip.subnet-capacity",
    },
    "broken-podip-kubenet": {
        "podip.allocation-failed",
        "podip.ip-leak",
        "podip.terminated-pods-backlog",
        "podip.subnet-capacity",
    },
}


@pytest.mark.parametrize("folder", sorted(EXAMPLE_CODES))
def test_example_folders_raise_their_codes_in_health(folder):
    report = run("health", SnapshotSource(EXAMPLES / folder, folder))
    assert {f.code for f in report.findings if f.scenario == "pod-ip"} == EXAMPLE_CODES[folder]
    assert not [u for u in report.unavailable if "internal error" in u.reason]


def test_cni_example_names_the_leaking_node_and_the_full_subnet():
    report = run("pod-ip", SnapshotSource(EXAMPLES / "broken-podip-cni", "prod"))
    (leak,) = found(report, "podip.ip-leak")
    assert leak.subject == "node/aks-userpool-16493051-vmss000000"
    (full,) = [f for f in found(report, "podip.subnet-capacity") if "is full" in f.title]
    assert "aks-userpool-16493051-vmss000002 (requested 16)" in "\n".join(full.evidence)
    (exhausted,) = found(report, "podip.node-ip-exhausted")
    assert exhausted.subject == "node/aks-userpool-16493051-vmss000001"


def test_example_node_argument_and_unknown_node():
    src = SnapshotSource(EXAMPLES / "broken-podip-kubenet", "prod")
    one = run("pod-ip", src, ScenarioArgs(node="aks-nodepool1-27781234-vmss000001"))
    assert not [f for f in one.findings if f.code != "podip.subnet-capacity"]
    missing = run("pod-ip", src, ScenarioArgs(node="aks-nodepool1-27781234-vmss000009"))
    assert [f.code for f in missing.findings] == ["podip.node-not-found"]
