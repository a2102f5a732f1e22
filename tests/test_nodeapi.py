"""node-api scenario over snapshot folders: each code raised by a fixture that shows it, silent
on a healthy one; network-policy and RBAC evaluation cases; commands that work as printed."""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

import kubernetes_validate
import pytest
import yaml
from builders import (
    SUB,
    az_cluster,
    binding,
    configmap,
    event,
    kubernetes_api,
    networkpolicy,
    node,
    pod,
    rbac_rule,
    role,
    write_snapshot,
)

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource, read_snapshot
from diagnostics.model import Severity
from diagnostics.runner import analyse, run
from diagnostics.snapshot import AccessReview

N0, N1 = "aks-nodepool1-12345678-vmss000000", "aks-nodepool1-12345678-vmss000001"
API_IP = "203.0.113.10"
NODE_RG = "MC_rg-prod_prod_westeurope"
CLUSTER_ID = (
    f"/subscriptions/{SUB}/resourcegroups/rg-prod/providers/Microsoft.ContainerService/"
    "managedClusters/prod"
)
PIP = f"/subscriptions/{SUB}/resourceGroups/{NODE_RG}/providers/Microsoft.Network/publicIPAddresses"


def _run(tmp_path, cluster=None, public_ips=None, as_account=None, scenario="node-api", **res):
    folder = write_snapshot(tmp_path / "snap", cluster=cluster, public_ips=public_ips, **res)
    return run(scenario, SnapshotSource(folder, "prod"), ScenarioArgs(as_account=as_account))


def codes(report):
    return sorted(f.code for f in report.findings)


def only(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, f"expected one {code}, got {codes(report)}"
    return found[0]


def commands(finding):
    return [s.command for s in finding.remediation if s.command]


def heredoc(command):
    """The YAML a `kubectl apply -f - <<'EOF' ... EOF` command feeds kubectl."""
    head, _, rest = command.partition("<<'EOF'\n")
    assert head.startswith("kubectl apply -f - ")
    body, _, tail = rest.rpartition("\nEOF")
    assert tail == ""
    return list(yaml.safe_load_all(body))


def kube_system(ready=True, waiting=None, app="konnectivity-agent", labels=None):
    """A small kube-system: coredns, and two tunnel pods on two nodes."""
    lab = labels or {"app": app}
    return [
        pod(
            "coredns-6d4b9c7f8-2kq9x",
            "kube-system",
            N0,
            "10.244.0.5",
            {"k8s-app": "kube-dns"},
            owner=("ReplicaSet", "coredns-6d4b9c7f8"),
        ),
        *(
            pod(
                f"{app}-7c9f8b6d5-{sfx}",
                "kube-system",
                n,
                f"10.244.{i}.9",
                lab,
                ready=ready,
                waiting=waiting,
                restarts=0 if ready else 14,
                owner=("ReplicaSet", f"{app}-7c9f8b6d5"),
            )
            for i, (n, sfx) in enumerate([(N0, "x2x4q"), (N1, "b7mzl")])
        ),
    ]


def healthy(**over):
    """A healthy public cluster's node-api inputs; override any resource list."""
    res = {
        **kubernetes_api(API_IP),
        "pods": kube_system(),
        "nodes": [node(N0), node(N1, ip="10.224.0.5")],
    }
    res.update(over)
    return res


def with_network(cluster, **network):
    c = copy.deepcopy(cluster)
    c["networkProfile"].update(network)
    return c


# ---------------------------------------------------------------- healthy
def test_healthy_cluster_raises_no_node_api_problem(tmp_path):
    report = _run(tmp_path, az_cluster(), **healthy())
    assert codes(report) == ["nodeapi.kubernetes-service.ok"]
    ok = report.findings[0]
    assert ok.severity is Severity.OK
    assert f"endpoints: {API_IP} (port 443, from EndpointSlice default/kubernetes)" in ok.evidence


def test_healthy_ok_finding_points_to_apiserver_logs_not_invisible_pods(tmp_path):
    ok = only(_run(tmp_path, az_cluster(), **healthy()), "nodeapi.kubernetes-service.ok")
    cmds = commands(ok)
    assert f"az monitor diagnostic-settings list --resource {CLUSTER_ID} -o table" in cmds
    assert not any("component=kube-apiserver" in c for c in cmds)
    test = next(s for s in ok.remediation if (s.command or "").startswith("kubectl run"))
    assert "creates a pod" in test.text
    assert "--image=mcr.microsoft.com/azure-cli" in test.command
    argv = shlex.split(test.command)
    script = argv[argv.index("-c") + 1]
    assert "/api/v1/namespaces/default/pods" in script and "$KUBERNETES_SERVICE_HOST" in script


# ---------------------------------------------------------------- kubernetes service
def _svc(**kw):
    return kubernetes_api(**kw)


@pytest.mark.parametrize(
    "resources,severity,needle",
    [
        (
            {"services": [], "endpointslices": [], "endpoints": []},
            Severity.CRITICAL,
            "service default/kubernetes does not exist",
        ),
        (_svc(address=""), Severity.CRITICAL, "no ready endpoint address"),
        (_svc(ready=False), Severity.CRITICAL, f"not ready: {API_IP}"),
        (_svc(port=6443), Severity.CRITICAL, "the endpoints point at port 6443"),
        (
            _svc(cluster_ip="10.96.0.1"),
            Severity.WARNING,
            "clusterIP is 10.96.0.1, but the first address of the service CIDR (10.0.0.0/16) is 10.0.0.1",
        ),
        (
            {"services": _svc()["services"], "endpoints": _svc(address="")["endpoints"]},
            Severity.CRITICAL,
            "(Endpoints default/kubernetes)",
        ),
    ],
    ids=[
        "missing",
        "no-address",
        "not-ready",
        "wrong-port",
        "wrong-cluster-ip",
        "endpoints-fallback",
    ],
)
def test_kubernetes_service_problems(tmp_path, resources, severity, needle):
    report = _run(tmp_path, az_cluster(), pods=kube_system(), **resources)
    f = only(report, "nodeapi.kubernetes-service")
    assert f.severity is severity
    assert any(needle in line for line in f.evidence), f.evidence
    assert f"az monitor diagnostic-settings list --resource {CLUSTER_ID} -o table" in commands(f)
    assert "kubernetes-internal" not in " ".join(commands(f))
    assert not any(re.search(r"get endpoints\b", c) for c in commands(f))  # deprecated in 1.33


def test_endpoints_alone_are_enough_when_no_slices_were_collected(tmp_path):
    res = _svc()
    report = _run(tmp_path, az_cluster(), services=res["services"], endpoints=res["endpoints"])
    ok = only(report, "nodeapi.kubernetes-service.ok")
    assert f"endpoints: {API_IP} (port 443, from Endpoints default/kubernetes)" in ok.evidence


def test_cluster_ip_follows_a_custom_service_cidr(tmp_path):
    cluster = with_network(
        az_cluster(), serviceCidr="10.100.0.0/16", serviceCidrs=["10.100.0.0/16"]
    )
    report = _run(tmp_path, cluster, **healthy(**_svc(address=API_IP, cluster_ip="10.100.0.1")))
    assert "nodeapi.kubernetes-service" not in codes(report)


def test_without_services_the_check_is_reported_unavailable(tmp_path):
    report = _run(tmp_path, az_cluster(), pods=kube_system())
    (u,) = [u for u in report.unavailable if u.source == "services"]
    assert "nodeapi.kubernetes-service" in u.checks


# ---------------------------------------------------------------- tunnel
def test_tunnel_down_names_pods_nodes_and_reasons(tmp_path):
    ev = event(
        "BackOff",
        "Back-off restarting failed container konnectivity-agent",
        name="konnectivity-agent-7c9f8b6d5-b7mzl",
        namespace="kube-system",
        count=31,
    )
    report = _run(
        tmp_path,
        az_cluster(),
        events=[ev],
        **healthy(pods=kube_system(ready=False, waiting="CrashLoopBackOff")),
    )
    f = only(report, "nodeapi.tunnel-unhealthy")
    assert f.severity is Severity.CRITICAL
    assert f.title == "2 of 2 konnectivity-agent pods (the API server tunnel) are not ready"
    assert (
        f"konnectivity-agent-7c9f8b6d5-b7mzl on {N1}: Running, not ready, waiting: "
        "CrashLoopBackOff, 14 restarts; last warning: BackOff (31x): Back-off restarting "
        "failed container konnectivity-agent"
    ) in f.evidence
    cmds = commands(f)
    assert any(
        c.startswith(
            f"az vmss run-command invoke --resource-group {NODE_RG} "
            "--name aks-nodepool1-12345678-vmss --instance-id 0 "
        )
        for c in cmds
    )
    assert any("nc -vz -w 5 prod-dns-abc123.hcp.westeurope.azmk8s.io 443" in c for c in cmds)
    assert not any(c.startswith("kubectl logs") for c in cmds)  # logs need the tunnel itself


def test_one_failing_tunnel_pod_of_two_is_a_warning(tmp_path):
    pods = kube_system()
    pods[2] = pod(
        "konnectivity-agent-7c9f8b6d5-b7mzl",
        "kube-system",
        N1,
        "10.244.1.9",
        {"app": "konnectivity-agent"},
        ready=False,
        waiting="CrashLoopBackOff",
    )
    f = only(_run(tmp_path, az_cluster(), **healthy(pods=pods)), "nodeapi.tunnel-unhealthy")
    assert f.severity is Severity.WARNING
    assert "1 of 2 konnectivity-agent pods are ready" in f.evidence


def test_legacy_tunnelfront_is_recognised(tmp_path):
    pods = kube_system(ready=False, app="tunnelfront", labels={"component": "tunnel"})
    f = only(_run(tmp_path, az_cluster(), **healthy(pods=pods)), "nodeapi.tunnel-unhealthy")
    assert "tunnelfront" in f.title


def test_vnet_integration_has_no_tunnel_to_alarm_about(tmp_path):
    cluster = az_cluster(apiServerAccessProfile={"enableVnetIntegration": True})
    down = _run(tmp_path / "a", cluster, **healthy(pods=kube_system(ready=False)))
    absent = _run(tmp_path / "b", cluster, **healthy(pods=kube_system()[:1]))
    assert "nodeapi.tunnel-unhealthy" not in codes(down) + codes(absent)


def test_missing_tunnel_pods_are_a_warning(tmp_path):
    f = only(
        _run(tmp_path, az_cluster(), **healthy(pods=kube_system()[:1])), "nodeapi.tunnel-unhealthy"
    )
    assert f.severity is Severity.WARNING


def test_tunnel_autoscaler_is_not_a_tunnel_pod(tmp_path):
    pods = [
        *kube_system(),
        pod(
            "konnectivity-agent-autoscaler-5b7d8f9c6-qq2lw",
            "kube-system",
            N0,
            labels={"app": "konnectivity-agent-autoscaler"},
            ready=False,
            waiting="CrashLoopBackOff",
        ),
    ]
    assert "nodeapi.tunnel-unhealthy" not in codes(
        _run(tmp_path, az_cluster(), **healthy(pods=pods))
    )


# ---------------------------------------------------------------- network policies
APP = {"app": "orders-worker"}
ALLOW_DNS = {
    "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def _rule(to=None, ports=None):
    r = {}
    if to is not None:
        r["to"] = to
    if ports is not None:
        r["ports"] = ports
    return r


def _block(cidr, *exc):
    return {"ipBlock": {"cidr": cidr, **({"except": list(exc)} if exc else {})}}


TCP443 = [{"protocol": "TCP", "port": 443}]


@pytest.mark.parametrize(
    "egress,blocked",
    [
        ([], True),
        ([ALLOW_DNS], True),
        ([_rule([{"namespaceSelector": {}}], TCP443)], True),
        ([_rule([{"podSelector": {}}])], True),
        ([_rule(None, TCP443)], False),
        ([_rule()], False),
        ([_rule([_block("203.0.113.0/24")], TCP443)], False),
        ([_rule([_block("203.0.113.10/32")])], False),
        ([_rule([_block("0.0.0.0/0")], TCP443)], False),
        ([_rule([_block("203.0.113.0/24", "203.0.113.0/28")], TCP443)], True),
        ([_rule([_block("0.0.0.0/0", "10.0.0.0/8")], TCP443)], False),
        ([_rule([_block("10.0.0.0/8")], TCP443)], True),
        ([_rule([_block("2001:db8::/32")], TCP443)], True),
        ([_rule([_block("203.0.113.0/24")], [{"protocol": "TCP", "port": 8443}])], True),
        (
            [_rule([_block("203.0.113.0/24")], [{"protocol": "TCP", "port": 400, "endPort": 500}])],
            False,
        ),
        (
            [_rule([_block("203.0.113.0/24")], [{"protocol": "TCP", "port": 444, "endPort": 500}])],
            True,
        ),
        ([_rule([_block("203.0.113.0/24")], [{"protocol": "TCP", "port": "https"}])], True),
        ([_rule([_block("203.0.113.0/24")], [{"protocol": "UDP", "port": 443}])], True),
        ([_rule([_block("203.0.113.0/24")], [{"protocol": "TCP"}])], False),
        ([ALLOW_DNS, _rule([_block(f"{API_IP}/32")], TCP443)], False),
    ],
    ids=[
        "deny-all",
        "dns-only",
        "namespace-selector",
        "pod-selector",
        "no-to-443",
        "no-to-any-port",
        "ipblock-24",
        "ipblock-32-all-ports",
        "ipblock-any",
        "except-covers",
        "except-elsewhere",
        "ipblock-elsewhere",
        "ipv6-block",
        "other-port",
        "endport-covers",
        "endport-misses",
        "named-port",
        "udp-443",
        "protocol-only",
        "dns-and-api",
    ],
)
def test_egress_rules_against_the_api_server(tmp_path, egress, blocked):
    pol = networkpolicy(
        "orders-egress", "shop", {"matchLabels": APP}, egress, policy_types=["Egress"]
    )
    pods = [pod("orders-worker-5f7c9d8b6-4xk2p", "shop", N0, "10.244.0.21", APP)]
    report = _run(tmp_path, az_cluster(), **healthy(pods=pods, networkpolicies=[pol]))
    assert ("nodeapi.network-policy-egress" in codes(report)) is blocked


def test_policy_finding_names_policies_pods_and_gives_a_valid_policy(tmp_path):
    deny = networkpolicy("default-deny-egress", "shop", {}, [ALLOW_DNS], policy_types=["Egress"])
    ingress_only = networkpolicy(
        "web-ingress",
        "shop",
        {"matchLabels": {"app": "web"}},
        ingress=[{"ports": [{"port": 8080}]}],
    )
    pods = [
        pod("orders-worker-5f7c9d8b6-4xk2p", "shop", N0, "10.244.0.21", APP),
        pod("orders-worker-5f7c9d8b6-9wz7m", "shop", N1, "10.244.1.22", APP),
        pod("web-7d9f6c5b8-2lq8d", "shop", N0, "10.244.0.23", {"app": "web"}),
        pod(
            "node-exporter-x7k2p", "shop", N0, "10.224.0.4", {"app": "exporter"}, host_network=True
        ),
    ]
    report = _run(
        tmp_path, az_cluster(), **healthy(pods=pods, networkpolicies=[deny, ingress_only])
    )
    f = only(report, "nodeapi.network-policy-egress")
    assert f.severity is Severity.WARNING
    assert f.subject == "Namespace/shop"
    assert f.evidence[0].startswith(f"3 of 3 running pods in shop may not reach {API_IP}:443")
    assert (
        "default-deny-egress selects orders-worker-5f7c9d8b6-4xk2p, orders-worker-5f7c9d8b6-9wz7m, "
        "web-7d9f6c5b8-2lq8d"
    ) in f.evidence
    assert any(
        "namespaceSelector {} + podSelector {k8s-app=kube-dns} on UDP/53, TCP/53" in e
        for e in f.evidence
    )
    docs = heredoc(f.remediation[0].command)
    assert len(docs) == 1
    kubernetes_validate.validate(docs[0], "1.32", strict=True)
    assert docs[0]["metadata"]["namespace"] == "shop"
    assert docs[0]["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": f"{API_IP}/32"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]
    debug = f.remediation[1].command
    assert "ephemeral debug container" in f.remediation[1].text
    assert shlex.split(debug)[:5] == [
        "kubectl",
        "debug",
        "--namespace",
        "shop",
        "orders-worker-5f7c9d8b6-4xk2p",
    ]
    assert f"https://{API_IP}:443/version" in debug


def test_policies_are_additive(tmp_path):
    deny = networkpolicy("default-deny-egress", "shop", {}, [], policy_types=["Egress"])
    allow = networkpolicy(
        "allow-apiserver",
        "shop",
        {"matchLabels": APP},
        [_rule([_block(f"{API_IP}/32")], TCP443)],
        policy_types=["Egress"],
    )
    pods = [
        pod("orders-worker-5f7c9d8b6-4xk2p", "shop", N0, "10.244.0.21", APP),
        pod("web-7d9f6c5b8-2lq8d", "shop", N0, "10.244.0.23", {"app": "web"}),
    ]
    f = only(
        _run(tmp_path, az_cluster(), **healthy(pods=pods, networkpolicies=[deny, allow])),
        "nodeapi.network-policy-egress",
    )
    assert f.title == "Network policies in shop block egress to the API server for 1 pods"
    assert "default-deny-egress selects web-7d9f6c5b8-2lq8d" in f.evidence


def test_policy_selecting_no_running_pod_raises_nothing(tmp_path):
    pol = networkpolicy("orders-egress", "shop", {"matchLabels": APP}, [], policy_types=["Egress"])
    pods = [
        pod("web-7d9f6c5b8-2lq8d", "shop", N0, "10.244.0.23", {"app": "web"}),
        pod("orders-job-29xk1", "shop", N0, "", APP, phase="Succeeded"),
    ]
    assert "nodeapi.network-policy-egress" not in codes(
        _run(tmp_path, az_cluster(), **healthy(pods=pods, networkpolicies=[pol]))
    )


@pytest.mark.parametrize(
    "egress,raised", [([ALLOW_DNS], True), ([_rule([_block("10.0.0.0/8")], TCP443)], False)]
)
def test_unknown_api_address_raises_only_what_is_certain(tmp_path, egress, raised):
    pol = networkpolicy("orders-egress", "shop", {}, egress, policy_types=["Egress"])
    pods = [pod("orders-worker-5f7c9d8b6-4xk2p", "shop", N0, "10.244.0.21", APP)]
    report = _run(tmp_path, az_cluster(), pods=pods, networkpolicies=[pol])
    assert ("nodeapi.network-policy-egress" in codes(report)) is raised
    if raised:
        f = only(report, "nodeapi.network-policy-egress")
        assert "kubernetes.io/service-name=kubernetes" in f.remediation[0].command


# ---------------------------------------------------------------- egress IPs vs authorized ranges
def nat_cluster(ranges, ids=("natip-1",), outbound="managedNATGateway"):
    c = with_network(
        az_cluster(apiServerAccessProfile={"authorizedIpRanges": list(ranges)}),
        outboundType=outbound,
        natGatewayProfile={
            "managedOutboundIpProfile": {"count": len(ids)},
            "effectiveOutboundIPs": [{"id": f"{PIP}/{i}"} for i in ids],
        },
    )
    c["networkProfile"].pop("loadBalancerProfile")
    return c


def test_nat_gateway_ip_outside_ranges_is_critical(tmp_path):
    cluster = nat_cluster(["198.51.100.0/24"])
    report = _run(
        tmp_path,
        cluster,
        {f"{PIP}/natip-1".lower(): "203.0.113.77"},
        **healthy(pods=kube_system(ready=False, waiting="CrashLoopBackOff")),
    )
    f = only(report, "nodeapi.authorized-ip.egress-excluded")
    assert f.severity is Severity.CRITICAL
    assert "NAT gateway IP 203.0.113.77 (natip-1) is in none of them" in f.evidence
    assert any("konnectivity-agent-7c9f8b6d5-x2x4q" in e for e in f.evidence)
    assert (
        "az aks update --resource-group rg-prod --name prod --api-server-authorized-ip-ranges "
        "198.51.100.0/24,203.0.113.77/32" in commands(f)
    )


@pytest.mark.parametrize(
    "cluster,public_ips,expected",
    [
        (nat_cluster(["203.0.113.0/24"]), {f"{PIP}/natip-1": "203.0.113.77"}, []),
        (
            az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["198.51.100.0/24"]}),
            {f"{PIP}/egress-1": "203.0.113.25"},
            [],
        ),
        (nat_cluster(["198.51.100.0/24"]), {}, ["nodeapi.authorized-ip.egress-unverified"]),
        (nat_cluster(["198.51.100.0/24"], ids=()), {}, ["nodeapi.authorized-ip.egress-unverified"]),
        (
            with_network(
                az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["198.51.100.0/24"]}),
                outboundType="userDefinedRouting",
            ),
            {},
            ["nodeapi.authorized-ip.egress-unverified"],
        ),
        (nat_cluster([]), {f"{PIP}/natip-1": "203.0.113.77"}, []),
    ],
    ids=[
        "nat-covered",
        "load-balancer-added-by-aks",
        "nat-unresolved",
        "nat-ips-unknown",
        "firewall",
        "no-ranges",
    ],
)
def test_egress_ip_cases(tmp_path, cluster, public_ips, expected):
    ips = {k.lower(): v for k, v in public_ips.items()}
    report = _run(tmp_path, cluster, ips, **healthy())
    found = [c for c in codes(report) if c.startswith("nodeapi.authorized-ip")]
    assert found == expected
    for f in report.findings:
        if f.code == "nodeapi.authorized-ip.egress-unverified":
            assert f.severity is Severity.INFO


def test_unresolved_nat_ip_gives_the_lookup_command(tmp_path):
    f = only(
        _run(tmp_path, nat_cluster(["198.51.100.0/24"]), {}, **healthy()),
        "nodeapi.authorized-ip.egress-unverified",
    )
    assert f"az network public-ip show --ids {PIP}/natip-1 --query ipAddress -o tsv" in commands(f)


def test_missing_publicips_file_is_reported_unavailable(tmp_path):
    report = _run(tmp_path, nat_cluster(["198.51.100.0/24"]), None, **healthy())
    assert "publicips" in {u.source for u in report.unavailable}
    assert "nodeapi.authorized-ip.egress-excluded" not in codes(report)


# ---------------------------------------------------------------- firewall
UDR = with_network(az_cluster(), outboundType="userDefinedRouting")


def test_firewall_is_context_when_nothing_fails(tmp_path):
    f = only(_run(tmp_path, UDR, **healthy()), "nodeapi.firewall-egress")
    assert f.severity is Severity.INFO
    rules = f.remediation[0].text
    for needed in (
        "prod-dns-abc123.hcp.westeurope.azmk8s.io",
        "*.hcp.westeurope.azmk8s.io",
        "mcr.microsoft.com",
        "*.data.mcr.microsoft.com",
        "management.azure.com",
        "login.microsoftonline.com",
        "packages.microsoft.com",
        "acs-mirror.azureedge.net",
        "packages.aks.azure.com",
    ):
        assert needed in rules
    assert "9000" not in rules  # konnectivity runs here: the old tunnel ports are not needed
    assert "UDP 123" not in rules  # NTP: not needed by nodes provisioned after March 2021
    assert "\nmcr.microsoft.com TCP 443" in rules  # one destination per line
    (test,) = [c for c in commands(f) if "run-command" in c]
    assert test.startswith(
        f"az vmss run-command invoke --resource-group {NODE_RG} "
        "--name aks-nodepool1-12345678-vmss --instance-id 0 --command-id RunShellScript"
    )
    argv = shlex.split(test)
    script = argv[argv.index("--scripts") + 1]
    assert argv[-4:] == ["--query", "value[0].message", "-o", "tsv"]  # the output, not JSON
    assert script.startswith("for h in prod-dns-abc123.hcp.westeurope.azmk8s.io mcr.microsoft.com")
    # curl, not nc: an appliance that strips TLS ALPN passes a TCP test but breaks konnectivity
    assert "curl -sS -o /dev/null --max-time 10" in script and "nc -vz" not in script
    assert "grep -Ei 'ALPN|HTTP/'" in script


def test_firewall_with_failing_tunnel_and_notready_node_is_a_warning(tmp_path):
    res = healthy(
        pods=kube_system(ready=False, waiting="CrashLoopBackOff"),
        nodes=[node(N0), node(N1, ip="10.224.0.5", ready=False)],
    )
    f = only(_run(tmp_path, UDR, **res), "nodeapi.firewall-egress")
    assert f.severity is Severity.WARNING
    assert f"node {N1} is NotReady" in f.evidence
    (test,) = [c for c in commands(f) if "run-command" in c]
    assert "--instance-id 1 " in test  # tested from the node that is NotReady


def test_old_tunnel_needs_its_ports(tmp_path):
    pods = kube_system(ready=False, app="tunnelfront", labels={"component": "tunnel"})
    f = only(_run(tmp_path, UDR, **healthy(pods=pods)), "nodeapi.firewall-egress")
    assert "TCP 9000 and UDP 1194" in f.remediation[0].text


def test_load_balancer_outbound_has_no_firewall_finding(tmp_path):
    assert "nodeapi.firewall-egress" not in codes(_run(tmp_path, az_cluster(), **healthy()))


# ---------------------------------------------------------------- private DNS
ZONE = (
    f"/subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/"
    "privateDnsZones/privatelink.westeurope.azmk8s.io"
)
FQDN = "prod-dns-abc123.privatelink.westeurope.azmk8s.io"
FORWARD = configmap(
    "coredns-custom",
    {
        "azmk8s.server": (
            "privatelink.westeurope.azmk8s.io:53 {\n    errors\n    cache 30\n    forward . 10.50.0.4 10.50.0.5\n}\n"
        )
    },
)


def private(zone):
    access = {"enablePrivateCluster": True, "privateDnsZone": zone}
    c = az_cluster(apiServerAccessProfile=access, privateFqdn=FQDN)
    c["agentPoolProfiles"][0]["vnetSubnetId"] = (
        f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/"
        "vnet-spoke/subnets/snet-aks"
    )
    return c


def test_private_cluster_with_custom_zone(tmp_path):
    f = only(
        _run(tmp_path, private(ZONE), configmaps=[FORWARD], **healthy()), "nodeapi.private-dns"
    )
    assert f.severity is Severity.INFO
    assert (
        "kube-system/coredns-custom forwards privatelink.westeurope.azmk8s.io to 10.50.0.4 10.50.0.5"
        in f.evidence
    )
    cmds = commands(f)
    assert (
        f"az network vnet show --ids /subscriptions/{SUB}/resourceGroups/rg-net/providers/"
        "Microsoft.Network/virtualNetworks/vnet-spoke --query dhcpOptions.dnsServers"
    ) in cmds
    assert (
        "az network private-dns link vnet list --resource-group rg-dns "
        "--zone-name privatelink.westeurope.azmk8s.io -o table"
    ) in cmds
    assert any(f"'getent hosts {FQDN}'" in c for c in cmds)


def test_system_zone_with_forwarding_coredns_is_custom_dns_too(tmp_path):
    report = _run(tmp_path, private("system"), configmaps=[FORWARD], **healthy())
    assert only(report, "nodeapi.private-dns").severity is Severity.INFO


def test_system_zone_without_custom_dns_raises_nothing(tmp_path):
    empty = configmap("coredns-custom", {})
    assert "nodeapi.private-dns" not in codes(
        _run(tmp_path, private("system"), configmaps=[empty], **healthy())
    )


def test_private_dns_with_failing_tunnel_is_a_warning(tmp_path):
    report = _run(tmp_path, private("none"), **healthy(pods=kube_system(ready=False)))
    assert only(report, "nodeapi.private-dns").severity is Severity.WARNING


# ---------------------------------------------------------------- RBAC for --as
SA = ("shop", "orders-worker")
ME = {"kind": "ServiceAccount", "name": "orders-worker", "namespace": "shop"}
DISCOVERY = [
    role(
        "system:discovery",
        [
            rbac_rule(
                ["get"],
                urls=["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/version", "/version/"],
            )
        ],
    ),
    binding(
        "system:discovery", "system:discovery", [{"kind": "Group", "name": "system:authenticated"}]
    ),
]
VIEW_RULES = [rbac_rule(["get", "list", "watch"], ["pods", "pods/log", "services"])]
EMPTY: dict[str, list[dict[str, Any]]] = {
    "roles": [],
    "rolebindings": [],
    "clusterroles": [],
    "clusterrolebindings": [],
}


def rbac(*objs):
    out = {k: list(v) for k, v in EMPTY.items()}
    for o in objs:
        key = {
            "Role": "roles",
            "RoleBinding": "rolebindings",
            "ClusterRole": "clusterroles",
            "ClusterRoleBinding": "clusterrolebindings",
        }[o["kind"]]
        out[key].append(o)
    return out


CASES = {
    "nothing": (rbac(*DISCOVERY), False),
    "rolebinding-to-clusterrole": (
        rbac(*DISCOVERY, role("view", VIEW_RULES), binding("orders-view", "view", [ME], "shop")),
        True,
    ),
    "rolebinding-in-other-namespace": (
        rbac(*DISCOVERY, role("view", VIEW_RULES), binding("orders-view", "view", [ME], "web")),
        False,
    ),
    "clusterrolebinding-wildcards": (
        rbac(
            *DISCOVERY,
            role("everything", [rbac_rule(["*"], ["*"], ["*"])]),
            binding("orders-all", "everything", [ME]),
        ),
        True,
    ),
    "group-of-namespace": (
        rbac(
            *DISCOVERY,
            role("view", VIEW_RULES),
            binding(
                "sa-view",
                "view",
                [{"kind": "Group", "name": "system:serviceaccounts:shop"}],
                "shop",
            ),
        ),
        True,
    ),
    "group-of-other-namespace": (
        rbac(
            *DISCOVERY,
            role("view", VIEW_RULES),
            binding("sa-view", "view", [{"kind": "Group", "name": "system:serviceaccounts:web"}]),
        ),
        False,
    ),
    "group-all-service-accounts": (
        rbac(
            *DISCOVERY,
            role("view", VIEW_RULES),
            binding("sa-view", "view", [{"kind": "Group", "name": "system:serviceaccounts"}]),
        ),
        True,
    ),
    "aggregated-clusterrole": (
        rbac(
            *DISCOVERY,
            role("view", [], aggregate=[{"rbac.authorization.k8s.io/aggregate-to-view": "true"}]),
            role(
                "pods-view",
                VIEW_RULES,
                labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"},
            ),
            binding("orders-view", "view", [ME], "shop"),
        ),
        True,
    ),
    "aggregation-selects-nothing": (
        rbac(
            *DISCOVERY,
            role("view", [], aggregate=[{"rbac.authorization.k8s.io/aggregate-to-view": "true"}]),
            role("pods-view", VIEW_RULES, labels={"team": "shop"}),
            binding("orders-view", "view", [ME], "shop"),
        ),
        False,
    ),
    "role-with-resource-names": (
        rbac(
            *DISCOVERY,
            role("one-pod", [rbac_rule(["get", "list"], ["pods"], names=["web-0"])], "shop"),
            binding("orders-one", "one-pod", [ME], "shop", "Role"),
        ),
        False,
    ),
    "sa-subject-namespace-defaults-to-binding": (
        rbac(
            *DISCOVERY,
            role("reader", [rbac_rule(["list"], ["pods"])], "shop"),
            binding(
                "orders-reader",
                "reader",
                [{"kind": "ServiceAccount", "name": "orders-worker"}],
                "shop",
                "Role",
            ),
        ),
        True,
    ),
    "user-subject": (
        rbac(
            *DISCOVERY,
            role("view", VIEW_RULES),
            binding(
                "orders-view",
                "view",
                [{"kind": "User", "name": "system:serviceaccount:shop:orders-worker"}],
                "shop",
            ),
        ),
        True,
    ),
    "missing-role": (rbac(*DISCOVERY, binding("orders-view", "view", [ME], "shop")), False),
    "wrong-api-group": (
        rbac(
            *DISCOVERY,
            role("apps", [rbac_rule(["list"], ["pods"], ["apps"])]),
            binding("orders-apps", "apps", [ME], "shop"),
        ),
        False,
    ),
    "any-group-star": (
        rbac(
            *DISCOVERY,
            role("lister", [rbac_rule(["list"], ["*"], ["*"])]),
            binding("orders-list", "lister", [ME], "shop"),
        ),
        True,
    ),
    "no-discovery": (
        rbac(role("view", VIEW_RULES), binding("orders-view", "view", [ME], "shop")),
        False,
    ),
    "discovery-via-rolebinding-does-not-count": (
        rbac(
            DISCOVERY[0],
            role("view", VIEW_RULES),
            binding("orders-view", "view", [ME], "shop"),
            binding("orders-disc", "system:discovery", [ME], "shop"),
        ),
        False,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rbac_evaluation(tmp_path, name):
    objects, allowed = CASES[name]
    report = _run(tmp_path, az_cluster(), as_account=SA, **healthy(**objects))
    assert ("nodeapi.rbac-allowed" if allowed else "nodeapi.rbac-forbidden") in codes(report)
    assert ("nodeapi.rbac-forbidden" if allowed else "nodeapi.rbac-allowed") not in codes(report)


def test_forbidden_account_gets_a_role_binding_that_applies(tmp_path):
    pods = [
        *kube_system(),
        pod(
            "orders-worker-5f7c9d8b6-4xk2p",
            "shop",
            N0,
            "10.244.0.21",
            APP,
            service_account="orders-worker",
        ),
    ]
    objs = rbac(
        *DISCOVERY,
        role("reader", [rbac_rule(["get"], ["configmaps"])], "shop"),
        binding("orders-config", "reader", [ME], "shop", "Role"),
    )
    f = only(
        _run(tmp_path, az_cluster(), as_account=SA, **healthy(pods=pods, **objs)),
        "nodeapi.rbac-forbidden",
    )
    # No audit log says the app lists pods: a lead, not an outage (least-privilege apps never do).
    assert f.severity is Severity.INFO
    assert "the audit log, which was not read" in f.evidence[-1]
    assert f.title == "Service account shop/orders-worker is forbidden: list pods in shop"
    assert (
        "no binding grants system:serviceaccount:shop:orders-worker `list pods in shop`"
        in f.evidence
    )
    assert (
        "RoleBinding shop/orders-config -> Role reader (as ServiceAccount shop/orders-worker): get configmaps"
        in f.evidence
    )
    assert "pods running as this account: orders-worker-5f7c9d8b6-4xk2p" in f.evidence
    role_doc, binding_doc = heredoc(f.remediation[0].command)
    for doc in (role_doc, binding_doc):
        kubernetes_validate.validate(doc, "1.32", strict=True)
        assert doc["metadata"]["namespace"] == "shop"
    assert binding_doc["subjects"] == [
        {"kind": "ServiceAccount", "name": "orders-worker", "namespace": "shop"}
    ]
    assert binding_doc["roleRef"]["name"] == role_doc["metadata"]["name"]
    assert (
        "kubectl auth can-i list pods --as=system:serviceaccount:shop:orders-worker "
        "--namespace shop"
    ) in f.remediation[1].command
    run_step = f.remediation[2]
    assert (
        '--overrides=\'{"apiVersion":"v1","spec":{"serviceAccountName":"orders-worker"}}\''
        in run_step.command
    )
    assert "/api/v1/namespaces/shop/pods" in run_step.command


def test_without_discovery_the_fix_binds_system_discovery(tmp_path):
    objs = rbac(role("view", VIEW_RULES), binding("orders-view", "view", [ME], "shop"))
    f = only(
        _run(tmp_path, az_cluster(), as_account=SA, **healthy(**objs)), "nodeapi.rbac-forbidden"
    )
    assert f.title.endswith("is forbidden: get /api")
    assert (
        "kubectl create clusterrolebinding orders-worker-discovery --clusterrole=system:discovery "
        "--serviceaccount=shop:orders-worker"
    ) in commands(f)


def test_without_as_rbac_is_not_evaluated(tmp_path):
    report = _run(tmp_path, az_cluster(), **healthy(**rbac()))
    assert not [c for c in codes(report) if c.startswith("nodeapi.rbac")]


def test_without_rbac_objects_the_check_is_unavailable(tmp_path):
    report = _run(tmp_path, az_cluster(), as_account=SA, **healthy())
    assert not [c for c in codes(report) if c.startswith("nodeapi.rbac")]
    blocked = {u.source for u in report.unavailable if "nodeapi.rbac-forbidden" in u.checks}
    # Live access reviews, the RBAC objects or the audit log would do; none was there.
    assert blocked == {
        "kube-audit",
        "accessreview",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    }


def test_without_as_nothing_about_rbac_is_reported_unavailable(tmp_path):
    report = _run(tmp_path, az_cluster(), **healthy())
    assert not [u for u in report.unavailable if u.source in ("accessreview", "roles")]


def test_access_reviews_win_over_rbac_objects(tmp_path):
    objects, _ = CASES["rolebinding-to-clusterrole"]
    folder = write_snapshot(tmp_path / "snap", cluster=az_cluster(), **healthy(**objects))
    snapshot = read_snapshot(folder, "prod")
    snapshot.access_reviews = [
        AccessReview(
            "shop", "orders-worker", "list", "pods", "shop", False, "no RBAC policy matched"
        ),
        AccessReview("shop", "orders-worker", "get", "/api", "", True),
    ]
    f = only(analyse("node-api", snapshot, ScenarioArgs(as_account=SA)), "nodeapi.rbac-forbidden")
    assert "SubjectAccessReview: list pods in shop -> denied (no RBAC policy matched)" in f.evidence
    assert f.title.endswith("is forbidden: list pods in shop")


# ---------------------------------------------------------------- every command, everywhere
def test_every_command_parses_and_names_the_cluster(tmp_path):
    """A broken cluster raising most codes: no placeholder where the value is known, and every
    command (outside heredocs) is valid shell."""
    cluster = nat_cluster(["198.51.100.0/24"])
    cluster["networkProfile"]["outboundType"] = "userDefinedRouting"
    deny = networkpolicy("default-deny-egress", "shop", {}, [], policy_types=["Egress"])
    pods = [
        *kube_system(ready=False, waiting="CrashLoopBackOff"),
        pod("orders-worker-5f7c9d8b6-4xk2p", "shop", N0, "10.244.0.21", APP),
    ]
    report = _run(
        tmp_path, cluster, {}, as_account=SA, **healthy(pods=pods, networkpolicies=[deny], **rbac())
    )
    assert {
        "nodeapi.tunnel-unhealthy",
        "nodeapi.firewall-egress",
        "nodeapi.network-policy-egress",
        "nodeapi.rbac-forbidden",
        "nodeapi.authorized-ip.egress-unverified",
    } <= set(codes(report))
    for f in report.findings:
        assert f.docs.startswith("https://learn.microsoft.com/en-us/")
        for cmd in commands(f):
            assert "RESOURCE_GROUP" not in cmd  # the real names are known here
            assert "component=kube-apiserver" not in cmd and "kubernetes-internal" not in cmd
            if "<<'EOF'" not in cmd:
                shlex.split(cmd)
