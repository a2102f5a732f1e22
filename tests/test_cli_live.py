"""`aksdiag run ... --kubeconfig`, a configured live cluster, and `aksdiag capture`, as real
processes against the emulators: a report on stdout, progress and errors on stderr, and a
server that is down or forbids a list still gives a report that says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from builders import SUB, az_cluster
from emulators import IDENTITY_HEADER, ArmEmulator, KubeEmulator


def aksdiag(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "AKSDIAG_K8S_TIMEOUT": "5",
        "AKSDIAG_CONNECT_TIMEOUT": "3",
        "AKSDIAG_PROBE_TIMEOUT": "3",
        "AKSDIAG_RETRIES": "1",
        "AKSDIAG_BACKOFF": "0.01",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=full,
    )


def test_run_service_with_a_kubeconfig_diagnoses_the_cluster(k8s, tls, tmp_path):
    kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
    out = aksdiag(
        "run", "service", "shop-cluster", "shop/orphan", "--kubeconfig", str(kc), "--format", "json"
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["cluster"] == "shop-cluster" and doc["source"] == "kubeconfig ctx emulator"
    (f,) = [f for f in doc["findings"] if f["code"] == "service.selector-matches-no-pods"]
    assert f["severity"] == "critical" and "shop/orphan" in f["title"] + f["subject"]
    # Kubernetes access only: the ManagedCluster and the Azure network path are not read
    assert {u["source"] for u in doc["unavailable"]} == {"cluster", "network"}
    assert "Azure Resource Manager is not configured" in doc["unavailable"][0]["reason"]
    assert k8s.count("/api/v1/pods") == 1


def test_a_forbidden_list_is_in_the_report(k8s, tls, tmp_path):
    k8s.fault("/api/v1/pods", 403)
    kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
    out = aksdiag("run", "service", "shop-cluster", "shop/web", "--kubeconfig", str(kc))
    assert out.returncode == 0, out.stderr
    assert "pods" in out.stdout and "forbidden" in out.stdout


def test_a_server_that_is_down_gives_a_report_that_says_so(tls, tmp_path):
    emu = KubeEmulator(certfile=str(tls.server_pem)).start()
    kc = emu.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
    port = emu.port
    emu.stop()
    out = aksdiag(
        "run", "service", "shop-cluster", "shop/web", "--kubeconfig", str(kc), "--format", "json"
    )
    assert out.returncode == 0, out.stderr
    reasons = {u["source"]: u["reason"] for u in json.loads(out.stdout)["unavailable"]}
    assert reasons["services"] == f"API server unreachable: connection refused (127.0.0.1:{port})"


def test_a_bad_kubeconfig_is_a_clear_error(tmp_path, k8s, tls):
    out = aksdiag("run", "service", "x", "a/b", "--kubeconfig", str(tmp_path / "nope"))
    assert out.returncode == 3 and out.stdout == ""
    assert f"kubeconfig {tmp_path / 'nope'}: no such file" in out.stderr
    kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
    out = aksdiag("run", "service", "x", "a/b", "--kubeconfig", str(kc), "--context", "prod")
    assert out.returncode == 3
    assert "no context 'prod' (it has: emulator)" in out.stderr


def test_a_bad_setting_in_the_environment_is_named(k8s, tls, tmp_path):
    kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
    out = aksdiag("run", "service", "x", "a/b", "--kubeconfig", str(kc), AKSDIAG_K8S_TIMEOUT="soon")
    assert out.returncode == 3
    assert "AKSDIAG_K8S_TIMEOUT must be a number, not 'soon'" in out.stderr


def test_capture_with_a_kubeconfig(k8s, tls, tmp_path):
    kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
    out = aksdiag("capture", "shop-cluster", str(tmp_path / "snap"), "--kubeconfig", str(kc))
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert "k8s/pods.json: 10 object(s)" in out.stderr
    assert (tmp_path / "snap" / "snapshot.json").is_file()
    again = aksdiag(
        "run",
        "service",
        "shop-cluster",
        "shop/orphan",
        "--snapshot",
        str(tmp_path / "snap"),
        "--format",
        "json",
    )
    assert "service.selector-matches-no-pods" in {
        f["code"] for f in json.loads(again.stdout)["findings"]
    }


def test_run_reads_a_configured_azure_cluster_live(k8s, tls, tmp_path):
    """The whole chain in a process: config file -> DefaultAzureCredential (managed identity)
    -> ARM -> cluster user kubeconfig -> AAD token -> Kubernetes."""
    with ArmEmulator(k8s=k8s, certfile=str(tls.server_pem)) as arm:
        arm.ca_data = tls.ca_data
        arm.add_cluster(
            az_cluster(
                apiServerAccessProfile={"authorizedIpRanges": ["198.51.100.0/24"]},
                aadProfile={"managed": True},
            )
        )
        k8s.tokens.add("FAKE-aad-token-for-the-aks-server-app")
        config = tmp_path / "aksdiag.yaml"
        config.write_text(
            "clusters:\n  prod:\n"
            f"    subscription: {SUB}\n    resource_group: rg-prod\n    name: prod\n"
            "    kubernetes: {aad: true}\n"
        )
        out = aksdiag(
            "run",
            "health",
            "prod",
            "--config",
            str(config),
            "--format",
            "json",
            AKSDIAG_ARM_ENDPOINT=arm.url,
            IDENTITY_ENDPOINT=f"{arm.url}/msi/token",
            IDENTITY_HEADER=IDENTITY_HEADER,
            REQUESTS_CA_BUNDLE=str(tls.ca_pem),
        )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"] == "aad"
    assert {"cluster", "pods", "nodes"} <= set(doc["collected"])
    assert "podip.allocation-failed" in {f["code"] for f in doc["findings"]}
