"""Group 6: the Azure network path's cost. A live `node-api` run that reads every network
resource (VNets, NSGs, route table, a hub firewall in another subscription with its policy and
rule collection group, the outbound endpoints) against ARM and Kubernetes emulators that answer
each call after the same latency, side by side with the same run without those reads.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from bench.harness import Results, Row, Scale, median

NETPATH = "6. Azure network path"
METHOD = """
In one process: the ARM emulator (tests/emulators/arm.py, TLS) serves the cluster, its user
kubeconfig and a hub-and-spoke network path (tests/test_live_netpath.py: VNet with a peered hub
in another subscription, NSG, route table to an Azure Firewall, its policy and rule collection
group, outbound endpoints); the Kubernetes API emulator serves a small sample cluster. Every
ARM and Kubernetes request is answered after the same injected latency. Each run builds a new
`LiveSource` (no cache) and times `run("node-api", source)`, after one unmeasured run of each
(module imports and SDK client classes): with the default registry (every
network read), and with the network-path sources removed from every check (the baseline).
"""


def _without_network():
    from diagnostics.checks import default_registry
    from diagnostics.checks.base import CheckRegistry
    from diagnostics.resources import EGRESS_ENDPOINTS, NETWORK

    net = {NETWORK, EGRESS_ENDPOINTS}
    registry = CheckRegistry()
    for c in default_registry().all():
        if net & set(c.needs):
            continue
        registry.add(replace(c, uses=tuple(s for s in c.uses if s not in net)))
    return registry


def network_path(scale: Scale, work: Path, results: Results) -> None:
    from emulators import AAD_TOKEN, ArmEmulator, KubeEmulator, make_tls
    from emulators.sample import sample_objects
    from test_live_netpath import cluster, live, network

    from diagnostics.checks import default_registry
    from diagnostics.runner import run

    results.methods[NETPATH] = METHOD
    tls = make_tls(work / "tls")
    latency = scale.netpath_latency_s
    with (
        KubeEmulator(certfile=str(tls.server_pem), tokens=(AAD_TOKEN,), **sample_objects()) as k8s,
        ArmEmulator(k8s=k8s, certfile=str(tls.server_pem)) as arm,
    ):
        arm.ca_data = tls.ca_data
        arm.add_cluster(cluster())
        network(arm, allow_mcr=True)
        arm.fault("/subscriptions*", delay=latency)
        k8s.fault("/api*", delay=latency)
        registries = {"with": default_registry(), "without": _without_network()}
        times: dict[str, list[float]] = {"with": [], "without": []}
        arm_calls: dict[str, int] = {}
        for registry in registries.values():  # warm up: imports and SDK clients, not measured
            run("node-api", live(arm, tls), registry=registry)
        for _ in range(scale.netpath_runs):
            for name, registry in registries.items():
                arm.reset_counts()
                src = live(arm, tls)
                started = time.perf_counter()
                report = run("node-api", src, registry=registry)
                times[name].append(time.perf_counter() - started)
                src.close()
                arm_calls[name] = sum(arm.counts.values())
                if name == "with" and "network" not in report.collected:
                    raise RuntimeError(f"the network path was not read: {report.unavailable}")
    value, base = median(times["with"]), median(times["without"])
    results.rows.append(
        Row(
            NETPATH,
            f"node-api with every network read, {latency * 1000:.0f} ms per ARM and "
            "Kubernetes call",
            value,
            "s",
            base,
            "the same run without them",
            "≤ 1.5× baseline",
            value <= 1.5 * base,
            f"ARM requests per run: {arm_calls.get('with', 0)} with, {arm_calls.get('without', 0)} "
            f"without; runs with: {', '.join(f'{t:.2f}' for t in times['with'])} s; without: "
            f"{', '.join(f'{t:.2f}' for t in times['without'])} s",
            len(times["with"]),
            times["with"],
        )
    )
