"""service scenario over snapshot folders: each code raised by a fixture, silent when healthy,
and the false-alarm traps (headless, selector-less, ExternalName, publishNotReadyAddresses,
leader-election Endpoints, Cilium without kube-proxy, Windows and virtual nodes)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from builders import (
    az_cluster,
    daemonset,
    endpoints,
    endpointslice,
    event,
    event_v1,
    networkpolicy,
    node,
    pod,
    service,
    write_snapshot,
)

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.model import Finding, Report, Severity
from diagnostics.runner import run

N1, N2, N3 = (f"aks-nodepool1-38214757-vmss00000{i}" for i in range(3))
WEB = {"app": "web", "tier": "frontend"}


def web_pods(
    n: int = 2, ready: bool = True, ports: list[tuple[str, int]] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    return [
        pod(
            f"web-7d4b9c8f6d-{s}",
            "shop",
            (N1, N2)[i % 2],
            f"10.244.{i}.17",
            dict(WEB),
            ready=ready,
            ports=ports if ports is not None else [("http", 8080)],
            owner=("ReplicaSet", "web-7d4b9c8f6d"),
            **kw,
        )
        for i, s in enumerate(["x2x9k", "q8x7z", "m4n5b"][:n])
    ]


def web_svc(**kw: Any) -> dict[str, Any]:
    kw.setdefault("selector", dict(WEB))
    kw.setdefault("ports", [("http", 80, "http")])
    return service("web", "shop", **kw)


def web_slice(ready: bool = True, n: int = 2) -> dict[str, Any]:
    return endpointslice(
        "web",
        "shop",
        [
            (f"10.244.{i}.17", ready, f"web-7d4b9c8f6d-{s}")
            for i, s in enumerate(["x2x9k", "q8x7z"][:n])
        ],
    )


def healthy(**over: Any) -> dict[str, Any]:
    snap: dict[str, Any] = dict(
        cluster=az_cluster(),
        nodes=[node(N1), node(N2)],
        pods=web_pods(),
        services=[web_svc()],
        endpointslices=[web_slice()],
        endpoints=[],
        events=[],
        networkpolicies=[],
        daemonsets=[daemonset("kube-proxy", desired=2, labels={"component": "kube-proxy"})],
    )
    snap.update(over)
    return snap


def diagnose(
    tmp_path, target: str | None = "shop/web", scenario: str = "service", **snapshot: Any
) -> Report:
    folder = write_snapshot(tmp_path / "snap", **snapshot)
    args = ScenarioArgs(service=tuple(target.split("/")) if target else None)  # type: ignore[arg-type]
    return run(scenario, SnapshotSource(folder, "prod"), args)


def codes(report: Report) -> list[str]:
    return sorted(f.code for f in report.findings)


def found(report: Report, code: str) -> list[Finding]:
    return [f for f in report.findings if f.code == code]


def commands(f: Finding) -> list[str]:
    return [s.command for s in f.remediation if s.command]


# ---------------------------------------------------------------- healthy and traps
def test_healthy_service_raises_nothing(tmp_path):
    report = diagnose(tmp_path, **healthy())
    assert report.findings == []
    assert not [u for u in report.unavailable if u.checks]


def test_health_over_every_service_ignores_the_traps(tmp_path):
    """Selector-less with manual endpoints, headless StatefulSet with publishNotReadyAddresses,
    ExternalName, leader-election Endpoints and default/kubernetes raise nothing."""
    db = [
        pod(
            f"db-{i}",
            "shop",
            N1,
            f"10.244.0.{30 + i}",
            {"app": "db"},
            ready=False,
            ports=[("pg", 5432)],
            owner=("StatefulSet", "db"),
        )
        for i in range(2)
    ]
    services = [
        web_svc(),
        service("legacy-db", "shop", None, [("pg", 5432, 5432)]),
        service(
            "db",
            "shop",
            {"app": "db"},
            [("pg", 5432, "pg")],
            cluster_ip="None",
            publish_not_ready=True,
        ),
        service("db-headless", "shop", None, [], cluster_ip="None"),
        service("cloud-db", "shop", None, type="ExternalName", cluster_ip=""),
        service("kubernetes", "default", None, [("https", 443, 443)], cluster_ip="10.0.0.1"),
    ]
    services[4]["spec"]["externalName"] = "prod-db.postgres.database.azure.com"
    snap = healthy(
        pods=web_pods() + db,
        services=services,
        endpoints=[
            endpoints("legacy-db", "shop", ready=["10.30.4.12"], port=5432),
            endpoints(
                "db-headless",
                "shop",
                annotations={
                    "control-plane.alpha.kubernetes.io/leader": '{"holderIdentity":"db-0"}'
                },
            ),
        ],
    )
    report = diagnose(tmp_path, target=None, scenario="health", **snap)
    assert [f.code for f in report.findings if f.scenario == "service"] == []


def test_endpoints_fallback_when_no_endpointslices(tmp_path):
    report = diagnose(
        tmp_path,
        **healthy(
            endpointslices=[],
            endpoints=[
                endpoints("web", "shop", not_ready=["10.244.0.17", "10.244.1.17"], port=8080)
            ],
        ),
    )
    (f,) = found(report, "service.no-ready-endpoints")
    assert "0 ready endpoints in Endpoints (2 not ready)" in f.evidence[0]


def test_publish_not_ready_addresses_is_not_an_outage(tmp_path):
    snap = healthy(
        pods=web_pods(ready=False),
        services=[web_svc(publish_not_ready=True)],
        endpointslices=[web_slice(ready=True)],
    )
    assert diagnose(tmp_path, **snap).findings == []


# ---------------------------------------------------------------- not-found / no-selector
def test_not_found_suggests_close_names_and_other_namespaces(tmp_path):
    snap = healthy(
        services=[
            web_svc(),
            service("web-api", "shop", {"app": "api"}),
            service("webb", "shop-staging", {"app": "web"}),
        ]
    )
    report = diagnose(tmp_path, target="shop/webb", **snap)
    (f,) = found(report, "service.not-found")
    assert f.severity is Severity.WARNING
    assert any(line.startswith("did you mean: shop/web") for line in f.evidence)
    assert "a service named webb exists in: shop-staging" in f.evidence
    assert "kubectl get services -n shop" in commands(f)


def test_no_selector_is_info_with_the_manual_endpoints(tmp_path):
    snap = healthy(
        services=[service("legacy-db", "shop", None, [("pg", 5432, 5432)])],
        endpoints=[endpoints("legacy-db", "shop", ready=["10.30.4.12"], port=5432)],
    )
    report = diagnose(tmp_path, target="shop/legacy-db", **snap)
    assert codes(report) == ["service.no-selector"]
    (f,) = report.findings
    assert f.severity is Severity.INFO
    assert "Endpoints list by hand: 10.30.4.12" in f.evidence
    assert commands(f) == [
        "kubectl get endpointslices -n shop -l kubernetes.io/service-name=legacy-db -o wide"
    ]


def test_external_name_explained_when_asked_for(tmp_path):
    svc = service("cloud-db", "shop", None, type="ExternalName", cluster_ip="")
    svc["spec"]["externalName"] = "prod-db.postgres.database.azure.com"
    report = diagnose(tmp_path, target="shop/cloud-db", **healthy(services=[svc]))
    assert codes(report) == ["service.external-name"]


# ---------------------------------------------------------------- selector-matches-no-pods
def test_selector_matching_nothing_shows_the_closest_pods_and_a_fix(tmp_path):
    pods = [
        pod(
            f"web-5c6b7d8f9-{s}",
            "shop",
            N1,
            f"10.244.0.{i + 40}",
            {"app": "web", "tier": "front-end", "pod-template-hash": "5c6b7d8f9"},
            ports=[("http", 8080)],
            owner=("ReplicaSet", "web-5c6b7d8f9"),
        )
        for i, s in enumerate(["abcde", "fghij"])
    ]
    pods.append(pod("cache-0", "shop", N2, "10.244.1.50", {"app": "cache"}))
    report = diagnose(tmp_path, **healthy(pods=pods, endpointslices=[web_slice(n=0)]))
    (f,) = found(report, "service.selector-matches-no-pods")
    assert f.severity is Severity.CRITICAL
    assert f.evidence[0] == "selector app=web,tier=frontend matches none of the 3 pods in shop"
    assert (
        "web-5c6b7d8f9-abcde (+1 like it): app=web, tier=front-end; matches 1 of 2" in f.evidence[1]
    )
    cmds = commands(f)
    assert "kubectl get pods -n shop -l app=web,tier=frontend" in [c.strip() for c in cmds]
    patch = next(c for c in cmds if c.startswith("kubectl patch service"))
    assert shlex.split(patch)[-1] == '{"spec":{"selector":{"app":"web","tier":"front-end"}}}'
    assert not any(c.startswith("kubectl get endpoints ") for c in cmds)


def test_only_finished_pods_match(tmp_path):
    done = [pod("web-job-1", "shop", N1, "", dict(WEB), phase="Succeeded", ready=False)]
    report = diagnose(tmp_path, **healthy(pods=done, endpointslices=[web_slice(n=0)]))
    (f,) = found(report, "service.selector-matches-no-pods")
    assert "only finished pods match: web-job-1" in f.evidence


# ---------------------------------------------------------------- no-ready-endpoints
@pytest.mark.parametrize("shape", [event, event_v1], ids=["core-v1", "events.k8s.io"])
def test_no_ready_endpoints_says_why_per_pod(tmp_path, shape):
    crashing = web_pods(1, ready=False, waiting="CrashLoopBackOff", restarts=17)
    unready = web_pods(2, ready=False)[1:]
    events = [
        shape(
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            name="web-7d4b9c8f6d-q8x7z",
            namespace="shop",
            count=42,
            host=N2,
        ),
        shape(
            "BackOff",
            "Back-off restarting failed container app in pod web-7d4b9c8f6d-x2x9k",
            name="web-7d4b9c8f6d-x2x9k",
            namespace="shop",
            count=9,
            host=N1,
        ),
    ]
    report = diagnose(
        tmp_path,
        **healthy(pods=crashing + unready, events=events, endpointslices=[web_slice(ready=False)]),
    )
    (f,) = found(report, "service.no-ready-endpoints")
    assert f.severity is Severity.CRITICAL
    text = "\n".join(f.evidence)
    assert "0 ready endpoints in EndpointSlices (2 not ready)" in text
    assert f"web-7d4b9c8f6d-x2x9k on {N1}: CrashLoopBackOff (17 restarts) — BackOff" in text
    assert "Running but not ready — Unhealthy: Readiness probe failed" in text
    cmds = commands(f)
    assert "kubectl get endpointslices -n shop -l kubernetes.io/service-name=web -o wide" in cmds
    assert "kubectl logs -n shop web-7d4b9c8f6d-x2x9k --previous" in cmds
    curl = next(c for c in cmds if "10.244.0.17" in c)
    argv = shlex.split(curl)
    assert argv[:3] == ["kubectl", "run", "aksdiag-curl"] and "curl" in argv
    assert argv[-1] == "http://10.244.0.17:8080/"
    assert not any("telnet" in c for c in cmds)


def test_ready_pods_behind_a_stale_slice_still_show(tmp_path):
    report = diagnose(tmp_path, **healthy(endpointslices=[web_slice(ready=False)]))
    assert codes(report) == ["service.no-ready-endpoints"]


# ---------------------------------------------------------------- target-port-mismatch
def test_named_target_port_that_no_container_declares(tmp_path):
    snap = healthy(services=[web_svc(ports=[("http", 80, "web")])])
    report = diagnose(tmp_path, **snap)
    (f,) = found(report, "service.target-port-mismatch")
    assert f.severity is Severity.WARNING
    assert (
        "port 80 (http) -> targetPort web/TCP: no selected container declares a port by that "
        "name, so the endpoints get no port for it" in f.evidence
    )
    assert "2 pod(s) declare: app:http/8080/TCP" in f.evidence
    # containerPort is informational: no patch of targetPort is suggested
    assert not any(c.startswith("kubectl patch service") for c in commands(f))


def test_numeric_target_port_not_declared_is_a_lead_not_a_warning(tmp_path):
    report = diagnose(tmp_path, **healthy(services=[web_svc(ports=[("http", 80, 80)])]))
    assert codes(report) == ["service.target-port-mismatch"]
    (f,) = report.findings
    assert f.severity is Severity.INFO
    assert "a lead, not proof" in f.title
    assert not any(c.startswith("kubectl patch service") for c in commands(f))


def test_numeric_target_port_on_containers_without_ports_is_not_provable(tmp_path):
    snap = healthy(pods=web_pods(ports=[]), services=[web_svc(ports=[("http", 80, 80)])])
    assert diagnose(tmp_path, **snap).findings == []


# ---------------------------------------------------------------- kube-proxy
def test_kube_proxy_not_ready_names_the_node(tmp_path):
    proxies = [
        pod(
            f"kube-proxy-{s}",
            "kube-system",
            n,
            f"10.224.0.{4 + i}",
            {"component": "kube-proxy"},
            ready=(n != N2),
            host_network=True,
            owner=("DaemonSet", "kube-proxy"),
        )
        for i, (s, n) in enumerate([("7xk2p", N1), ("9mq4d", N2)])
    ]
    snap = healthy(
        pods=web_pods() + proxies,
        daemonsets=[
            daemonset("kube-proxy", desired=2, ready=1, labels={"component": "kube-proxy"})
        ],
    )
    report = diagnose(tmp_path, **snap)
    (f,) = found(report, "service.kube-proxy-unhealthy")
    assert f.severity is Severity.WARNING
    assert f.title == "kube-proxy is not ready on 1 of 2 nodes"
    assert f"nodes without a ready kube-proxy pod: {N2} (kube-proxy-9mq4d: Running)" in f.evidence
    assert "kubectl get pods -n kube-system -o wide -l component=kube-proxy" in commands(f)


def test_windows_and_virtual_nodes_are_not_counted(tmp_path):
    nodes = [
        node(N1),
        node(N2),
        node("akswin000000", pool="win", os="windows"),
        node("virtual-node-aci-linux", pool="", labels={"type": "virtual-kubelet"}),
    ]
    proxies = [
        pod(
            f"kube-proxy-{n[-4:]}",
            "kube-system",
            n,
            "10.224.0.9",
            {"component": "kube-proxy"},
            host_network=True,
            owner=("DaemonSet", "kube-proxy"),
        )
        for n in (N1, N2)
    ]
    snap = healthy(nodes=nodes, pods=web_pods() + proxies)
    assert diagnose(tmp_path, **snap).findings == []


def test_proxy_missing_only_on_a_notready_node_is_the_nodes_problem(tmp_path):
    proxies = [
        pod(
            f"kube-proxy-{n[-4:]}",
            "kube-system",
            n,
            "10.224.0.9",
            {"component": "kube-proxy"},
            ready=(n == N1),
            host_network=True,
            owner=("DaemonSet", "kube-proxy"),
        )
        for n in (N1, N2)
    ]
    ds = daemonset("kube-proxy", desired=2, ready=1, labels={"component": "kube-proxy"})
    snap = healthy(
        nodes=[node(N1), node(N2, ready=False)], pods=web_pods() + proxies, daemonsets=[ds]
    )
    assert found(diagnose(tmp_path, **snap), "service.kube-proxy-unhealthy") == []


def test_cilium_without_kube_proxy_is_not_an_alarm(tmp_path):
    net = {
        "networkPlugin": "azure",
        "networkPluginMode": "overlay",
        "networkDataplane": "cilium",
        "networkPolicy": "cilium",
        "podCidr": "10.244.0.0/16",
    }
    snap = healthy(
        cluster=az_cluster(networkProfile=net),
        daemonsets=[daemonset("cilium", desired=2), daemonset("cilium-operator", desired=0)],
    )
    assert diagnose(tmp_path, **snap).findings == []


def test_cilium_agents_not_ready_are_flagged_as_the_service_proxy(tmp_path):
    snap = healthy(cluster=az_cluster(), daemonsets=[daemonset("cilium", desired=2, ready=0)])
    (f,) = found(diagnose(tmp_path, **snap), "service.kube-proxy-unhealthy")
    assert f.title.startswith("Cilium (which replaces kube-proxy) is not ready on 2 of 2")


def test_no_service_proxy_at_all(tmp_path):
    snap = healthy(daemonsets=[daemonset("azure-cns", desired=2)])
    (f,) = found(diagnose(tmp_path, **snap), "service.kube-proxy-unhealthy")
    assert "none named kube-proxy* or cilium" in f.evidence[0]


# ---------------------------------------------------------------- network-policy
CALICO = {
    "networkPlugin": "azure",
    "networkPluginMode": "overlay",
    "networkPolicy": "calico",
    "podCidr": "10.244.0.0/16",
}


def test_deny_all_ingress_policy(tmp_path):
    pols = [
        networkpolicy("default-deny", "shop", {}, policy_types=["Ingress"]),
        networkpolicy(
            "allow-metrics",
            "shop",
            {"matchLabels": {"app": "web"}},
            ingress=[{"ports": [{"protocol": "TCP", "port": 9090}]}],
        ),
    ]
    report = diagnose(
        tmp_path, **healthy(cluster=az_cluster(networkProfile=CALICO), networkpolicies=pols)
    )
    (f,) = found(report, "service.network-policy")
    assert f.severity is Severity.WARNING
    text = "\n".join(f.evidence)
    assert "default-deny (admits no ingress)" in text and "allow-metrics (admits 9090/TCP)" in text
    assert "no policy admits ingress on port 80 (http) -> targetPort http/TCP" in text
    apply = next(c for c in commands(f) if c.startswith("kubectl apply -f - <<'EOF'"))
    assert 'port: "http"' in apply and '{"app": "web", "tier": "frontend"}' in apply


@pytest.mark.parametrize("port", [8080, "http", None])
def test_policy_admitting_the_target_port_is_context_not_a_problem(tmp_path, port):
    rule: dict[str, Any] = {"from": [{"namespaceSelector": {"matchLabels": {"team": "edge"}}}]}
    if port is not None:
        rule["ports"] = [{"protocol": "TCP", "port": port}]
    pols = [
        networkpolicy("default-deny", "shop", {}, policy_types=["Ingress"]),
        networkpolicy("allow-web", "shop", {"matchLabels": {"app": "web"}}, ingress=[rule]),
    ]
    report = diagnose(
        tmp_path, **healthy(cluster=az_cluster(networkProfile=CALICO), networkpolicies=pols)
    )
    assert report.findings == []


def test_policies_without_a_policy_engine_drop_nothing(tmp_path):
    pols = [networkpolicy("default-deny", "shop", {}, policy_types=["Ingress"])]
    report = diagnose(tmp_path, **healthy(networkpolicies=pols))  # az_cluster(): networkPolicy None
    assert report.findings == []


# ---------------------------------------------------------------- cni-errors
@pytest.mark.parametrize("shape", [event, event_v1], ids=["core-v1", "events.k8s.io"])
def test_cni_errors_on_backing_pods_and_their_nodes(tmp_path, shape):
    events = [
        shape(
            "FailedCreatePodSandBox",
            "Failed to create pod sandbox: rpc error: code = Unknown desc "
            '= failed to setup network for sandbox "3f2a": plugin type="azure-vnet" failed (add): '
            "failed to set up pod network: netlink: route add failed",
            name="web-7d4b9c8f6d-q8x7z",
            namespace="shop",
            count=6,
            host=N2,
        ),
        shape(
            "NetworkNotReady",
            "network is not ready: container runtime network not ready: "
            "NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: "
            "cni plugin not initialized",
            kind="Node",
            name=N1,
            namespace="",
            host=N1,
        ),
        shape(
            "Unhealthy",
            "Readiness probe failed: connection refused",
            name="web-7d4b9c8f6d-x2x9k",
            namespace="shop",
            host=N1,
        ),
    ]
    report = diagnose(tmp_path, **healthy(events=events))
    (f,) = found(report, "service.cni-errors")
    assert f.severity is Severity.WARNING
    text = "\n".join(f.evidence)
    assert f"pod web-7d4b9c8f6d-q8x7z on {N2}: FailedCreatePodSandBox x6" in text
    assert f"node {N1}: NetworkNotReady" in text
    assert "Readiness probe" not in text
    assert (
        f"kubectl get pods -n kube-system -o wide --field-selector spec.nodeName={N2}"
        in commands(f)
    )


# ---------------------------------------------------------------- sources and scope
def test_missing_sources_are_reported(tmp_path):
    report = diagnose(tmp_path, services=[web_svc()])
    missing = {u.source: u for u in report.unavailable}
    assert "service.selector-matches-no-pods" in missing["pods"].checks
    assert "service.kube-proxy-unhealthy" in missing["daemonsets"].checks


def test_health_runs_service_checks_on_every_service(tmp_path):
    snap = healthy(
        services=[
            web_svc(),
            service("api", "shop", {"app": "api"}),
            service("admin", "backoffice", {"app": "admin"}),
        ]
    )
    report = diagnose(tmp_path, target=None, scenario="health", **snap)
    assert sorted(f.subject for f in found(report, "service.selector-matches-no-pods")) == [
        "service/backoffice/admin",
        "service/shop/api",
    ]


# ---------------------------------------------------------------- bundled example
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE = EXAMPLES / "broken-service"


def test_example_raises_every_service_code_in_health():
    report = run("health", SnapshotSource(EXAMPLE, "prod"))
    by_code = {f.code: f.subject for f in report.findings if f.scenario == "service"}
    assert by_code == {
        "service.selector-matches-no-pods": "service/shop/web",
        "service.no-ready-endpoints": "service/shop/cart",
        "service.target-port-mismatch": "service/shop/checkout",
        "service.network-policy": "service/shop/payments",
        "service.cni-errors": "service/shop/catalog",
        "service.kube-proxy-unhealthy": "daemonset/kube-system/kube-proxy",
        "service.no-selector": "service/shop/legacy-erp",
    }
    assert not [u for u in report.unavailable if "internal error" in u.reason]


@pytest.mark.parametrize("target", ["shop/redis-headless", "shop/erp-db", "shop/search"])
def test_example_traps_stay_quiet(target):
    report = run(
        "service", SnapshotSource(EXAMPLE, "prod"), ScenarioArgs(service=tuple(target.split("/")))
    )
    loud = {f.code for f in report.findings if f.severity.at_least(Severity.WARNING)}
    assert loud == {"service.kube-proxy-unhealthy"}  # the cluster-wide one, nothing about it


def test_example_unknown_service_suggests_the_close_name():
    report = run(
        "service", SnapshotSource(EXAMPLE, "prod"), ScenarioArgs(service=("shop", "webshop"))
    )
    (f,) = found(report, "service.not-found")
    assert "did you mean: shop/web" in f.evidence
