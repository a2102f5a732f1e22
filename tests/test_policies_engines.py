"""Network policies in every kind the data plane enforces: Cilium's CiliumNetworkPolicy and
CiliumClusterwideNetworkPolicy are evaluated for node-api (egress to the API server) and
service (ingress on the target port); Calico policies are read and named as not evaluated;
a cluster without those engines reports nothing about them."""

from __future__ import annotations

import copy

import yaml
from builders import (
    az_cluster,
    calico_policy,
    cilium_policy,
    endpointslice,
    kubernetes_api,
    networkpolicy,
    node,
    pod,
    service,
    write_snapshot,
)

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.model import Severity
from diagnostics.runner import run

API_IP = "20.31.50.4"
N0 = "aks-nodepool1-12345678-vmss000000"
CILIUM = copy.deepcopy(az_cluster())
CILIUM["networkProfile"].update(networkPolicy="cilium", networkDataplane="cilium")
CALICO = copy.deepcopy(az_cluster())
CALICO["networkProfile"].update(networkPolicy="calico")
TO_443 = [{"ports": [{"port": "443", "protocol": "TCP"}]}]


def worker():
    return pod("worker-6b7c9d-abcde", "shop", N0, "10.244.0.21", {"app": "worker"})


def web():
    return pod(
        "web-7d4b9c8f6d-abcde", "shop", N0, "10.244.0.22", {"app": "web"}, ports=[("http", 8080)]
    )


def snapshot(cluster=CILIUM, **res):
    base = {
        **kubernetes_api(API_IP),
        "pods": [worker(), web()],
        "nodes": [node(N0)],
        "networkpolicies": [],
    }
    base.update(res)
    return dict(cluster=cluster, **base)


def diagnose(tmp_path, scenario, args=None, **snap):
    folder = write_snapshot(tmp_path / "snap", **snap)
    return run(scenario, SnapshotSource(folder, "prod"), args or ScenarioArgs())


def found(report, code):
    return [f for f in report.findings if f.code == code]


# ---------------------------------------------------------------- node-api, egress
def test_cilium_egress_to_pods_only_cuts_the_api_server_off(tmp_path):
    cnp = cilium_policy(
        "worker-egress",
        "shop",
        {"matchLabels": {"app": "worker"}},
        egress=[{"toEndpoints": [{"matchLabels": {"app": "db"}}]}],
    )
    report = diagnose(tmp_path, "node-api", **snapshot(ciliumnetworkpolicies=[cnp]))
    (f,) = found(report, "nodeapi.network-policy-egress")
    assert f.severity is Severity.WARNING
    text = "\n".join(f.evidence)
    assert "CiliumNetworkPolicy shop/worker-egress selects worker-6b7c9d-abcde" in text
    assert f"may not reach {API_IP}:443" in text
    cmds = [s.command or "" for s in f.remediation]
    cnp_fix = next(c for c in cmds if "kind: CiliumNetworkPolicy" in c)
    doc = yaml.safe_load(cnp_fix.split("<<'EOF'\n")[1].rsplit("\nEOF", 1)[0])
    assert doc["spec"]["egress"][0]["toEntities"] == ["kube-apiserver"]
    assert "kubectl get ciliumnetworkpolicies --namespace shop -o yaml" in cmds


def test_cilium_kube_apiserver_entity_admits_the_api_server(tmp_path):
    cnp = cilium_policy(
        "worker-egress",
        "shop",
        {"matchLabels": {"app": "worker"}},
        egress=[{"toEntities": ["kube-apiserver"], "toPorts": TO_443}],
    )
    report = diagnose(tmp_path, "node-api", **snapshot(ciliumnetworkpolicies=[cnp]))
    assert found(report, "nodeapi.network-policy-egress") == []


def test_clusterwide_default_deny_and_an_egress_deny_win(tmp_path):
    ccnp = cilium_policy(
        "default-deny",
        None,
        {},
        egress=[
            {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system"}}]}
        ],
    )
    report = diagnose(tmp_path, "node-api", **snapshot(ciliumclusterwidenetworkpolicies=[ccnp]))
    (f,) = found(report, "nodeapi.network-policy-egress")
    assert "CiliumClusterwideNetworkPolicy default-deny" in "\n".join(f.evidence)
    assert "kubectl get ciliumclusterwidenetworkpolicies -o yaml" in [
        s.command for s in f.remediation
    ]
    # an allow by NetworkPolicy does not beat a Cilium egressDeny that covers the address
    allow = networkpolicy(
        "allow-api",
        "shop",
        {},
        policy_types=["Egress"],
        egress=[{"to": [{"ipBlock": {"cidr": f"{API_IP}/32"}}]}],
    )
    deny = cilium_policy("no-world", "shop", {}, egressDeny=[{"toCIDR": ["0.0.0.0/0"]}])
    report = diagnose(
        tmp_path / "deny",
        "node-api",
        **snapshot(networkpolicies=[allow], ciliumnetworkpolicies=[deny]),
    )
    (f,) = found(report, "nodeapi.network-policy-egress")
    assert any("denies to ipBlock 0.0.0.0/0" in e for e in f.evidence)


def test_cilium_world_entity_is_not_concluded_either_way(tmp_path):
    cnp = cilium_policy("worker-egress", "shop", {}, egress=[{"toEntities": ["world"]}])
    report = diagnose(tmp_path, "node-api", **snapshot(ciliumnetworkpolicies=[cnp]))
    assert found(report, "nodeapi.network-policy-egress") == []


def test_empty_cilium_rule_admits_nothing_unlike_networkpolicy(tmp_path):
    cnp = cilium_policy("lockdown", "shop", {"matchLabels": {"app": "worker"}}, egress=[{}])
    report = diagnose(tmp_path, "node-api", **snapshot(ciliumnetworkpolicies=[cnp]))
    assert len(found(report, "nodeapi.network-policy-egress")) == 1
    np_ = networkpolicy(
        "open", "shop", {"matchLabels": {"app": "worker"}}, egress=[{}], policy_types=["Egress"]
    )
    report = diagnose(tmp_path / "np", "node-api", **snapshot(networkpolicies=[np_]))
    assert found(report, "nodeapi.network-policy-egress") == []


# ---------------------------------------------------------------- service, ingress
def _web_service():
    svc = service("web", "shop", {"app": "web"}, [("http", 80, 8080)])
    sl = endpointslice("web", "shop", [("10.244.0.22", True, "web-7d4b9c8f6d-abcde")])
    return {"services": [svc], "endpointslices": [sl]}


def test_cilium_ingress_on_another_port_shuts_the_service(tmp_path):
    cnp = cilium_policy(
        "web-ingress",
        "shop",
        {"matchLabels": {"app": "web"}},
        ingress=[
            {"fromEndpoints": [{}], "toPorts": [{"ports": [{"port": "9090", "protocol": "TCP"}]}]}
        ],
    )
    snap = snapshot(ciliumnetworkpolicies=[cnp], **_web_service())
    report = diagnose(tmp_path, "service", ScenarioArgs(service=("shop", "web")), **snap)
    (f,) = found(report, "service.network-policy")
    assert "CiliumNetworkPolicy shop/web-ingress (admits 9090/TCP)" in "\n".join(f.evidence)
    assert "kubectl describe ciliumnetworkpolicies -n shop web-ingress" in [
        s.command for s in f.remediation
    ]
    ok = cilium_policy(
        "web-ingress",
        "shop",
        {"matchLabels": {"app": "web"}},
        ingress=[
            {
                "fromEntities": ["cluster"],
                "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}],
            }
        ],
    )
    snap = snapshot(ciliumnetworkpolicies=[ok], **_web_service())
    report = diagnose(tmp_path / "ok", "service", ScenarioArgs(service=("shop", "web")), **snap)
    assert found(report, "service.network-policy") == []


# ---------------------------------------------------------------- Calico and absent kinds
def test_calico_policies_are_named_as_not_evaluated(tmp_path):
    snap = snapshot(
        cluster=CALICO,
        globalnetworkpolicies=[calico_policy("deny-egress", None)],
        **{"networkpolicies.crd.projectcalico.org": [calico_policy("web", "shop")]},
    )
    report = diagnose(tmp_path, "node-api", **snap)
    reasons = {u.source: u.reason for u in report.unavailable}
    assert "does not evaluate Calico" in reasons["globalnetworkpolicies"]
    assert "shop/web" in reasons["networkpolicies.crd.projectcalico.org"]


def test_a_cluster_without_cilium_or_calico_reports_nothing_about_them(tmp_path):
    report = diagnose(tmp_path, "node-api", **snapshot(cluster=az_cluster()))
    sources = {u.source for u in report.unavailable}
    assert not sources & {"ciliumnetworkpolicies", "globalnetworkpolicies"}
    missing = diagnose(tmp_path / "c", "node-api", **snapshot())  # Cilium, files not captured
    assert "ciliumnetworkpolicies" in {u.source for u in missing.unavailable}
