"""The `aksdiag` command line as a user runs it: a real process, stdout and stderr apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from builders import az_cluster, write_snapshot


def aksdiag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.fixture
def snap(tmp_path):
    cluster = az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["203.0.113.0/24"]})
    return write_snapshot(tmp_path / "prod-snap", cluster=cluster, pods=[], nodes=[])


def test_json_report_is_one_document_on_stdout_with_the_contract_keys(snap):
    out = aksdiag(
        "run",
        "apiserver",
        "prod",
        "--snapshot",
        str(snap),
        "--from",
        "198.51.100.7",
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema_version"] == 2
    assert doc["headline"].startswith("Client 198.51.100.7") or "198.51.100.7" in doc["headline"]
    # every problem is in exactly one place of the diagnosis: a cause or a symptom
    placed = [fp for c in doc["causes"] for fp in (*c["fingerprints"], *c["symptoms"])]
    problems = [
        f["fingerprint"] for f in doc["findings"] if f["severity"] in ("critical", "warning")
    ]
    assert set(problems) <= set(placed)
    assert doc["cluster"] == "prod" and doc["scenario"] == "apiserver"
    assert isinstance(doc["unavailable"], list) and doc["unavailable"]
    (f,) = [f for f in doc["findings"] if f["code"] == "apiserver.authorized-ip.client-excluded"]
    assert f["severity"] == "critical"
    assert set(f) >= {"code", "severity", "title", "evidence", "remediation", "docs"}
    assert all(set(step) == {"text", "command"} for step in f["remediation"])
    assert f["docs"].startswith("https://learn.microsoft.com/en-us/")


def test_options_in_any_order(snap):
    a = aksdiag(
        "run",
        "--format",
        "json",
        "apiserver",
        "--from",
        "198.51.100.7",
        "prod",
        "--snapshot",
        str(snap),
    )
    b = aksdiag(
        "--snapshot", str(snap), "run", "apiserver", "prod", "--from=198.51.100.7", "--format=json"
    )
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    codes = lambda o: sorted(f["code"] for f in json.loads(o.stdout)["findings"])  # noqa: E731
    assert codes(a) == codes(b) == ["apiserver.authorized-ip.client-excluded"]


def test_text_format_reads_as_a_report(snap):
    out = aksdiag("run", "apiserver", "prod", "--snapshot", str(snap), "--from", "198.51.100.7")
    assert out.returncode == 0
    assert "CRITICAL" in out.stdout
    assert "apiserver.authorized-ip.client-excluded" in out.stdout
    # Commands are printed whole on one line, ready to copy.
    assert (
        "az aks update --resource-group rg-prod --name prod --api-server-authorized-ip-ranges "
        "203.0.113.0/24,198.51.100.7/32" in out.stdout
    )
    assert "not checked: the live API server probe" in out.stdout


def test_blocks_format_is_slack_payloads_within_limits(snap):
    out = aksdiag(
        "run",
        "apiserver",
        "prod",
        "--snapshot",
        str(snap),
        "--format",
        "blocks",
        "--from",
        "198.51.100.7",
    )
    doc = json.loads(out.stdout)
    assert doc["parent"]["blocks"] and doc["thread"]
    for message in [doc["parent"], *doc["thread"]]:
        assert len(message["blocks"]) <= 50
        for block in message["blocks"]:
            text = (block.get("text") or {}).get("text", "")
            assert len(text) <= 3000


@pytest.mark.parametrize("severity,code", [("critical", 1), ("warning", 1), ("info", 1)])
def test_fail_on_sets_exit_status(snap, severity, code):
    out = aksdiag(
        "run",
        "apiserver",
        "prod",
        "--snapshot",
        str(snap),
        "--from",
        "198.51.100.7",
        "--fail-on",
        severity,
    )
    assert out.returncode == code


def test_fail_on_not_reached_exits_zero(tmp_path):
    cluster = az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["198.51.100.0/24"]})
    snap = write_snapshot(tmp_path / "s", cluster=cluster)
    out = aksdiag(
        "run",
        "apiserver",
        "prod",
        "--snapshot",
        str(snap),
        "--from",
        "198.51.100.7",
        "--fail-on",
        "warning",
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "apisrv", "prod"], "Did you mean"),
        (["run", "service", "prod"], "which service?"),
        (["run", "service", "prod", "Default/Web"], "not a valid namespace"),
        (["run", "apiserver", "prod", "--from", "999.1.1.1"], "not an IP address"),
        (
            ["run", "apiserver", "prod", "--node", "n1"],
            "belongs to the `pod-ip` scenario".replace("`", ""),
        ),
        (["run", "pod-ip", "prod", "--node", "bad_node;rm -rf /"], "not a valid node name"),
        (["run", "apiserver", "prod", "--format", "yaml"], "invalid choice"),
        (["frobnicate"], "unknown command"),
    ],
)
def test_bad_usage_is_a_clear_message_and_status_2(snap, args, message):
    out = aksdiag(*args, "--snapshot", str(snap)) if args[0] == "run" else aksdiag(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""


def test_an_as_account_that_cannot_exist_is_a_usage_error_on_stderr():
    example = str(Path(__file__).resolve().parent.parent / "examples" / "broken-nodeapi")
    out = aksdiag("run", "node-api", "x", "--snapshot", example, "--as", "shopp/orders-worker")
    assert out.returncode == 2 and out.stdout == ""
    assert "Service account shopp/orders-worker does not exist" in out.stderr
    assert "did you mean: shop/orders-worker" in out.stderr


def test_unreadable_snapshot_is_status_3(tmp_path):
    out = aksdiag("run", "health", "prod", "--snapshot", str(tmp_path / "nope"))
    assert out.returncode == 3
    assert "does not exist" in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out = aksdiag("run", "health", "prod", "--snapshot", str(empty))
    assert out.returncode == 3 and "is it a snapshot folder" in out.stderr


def test_broken_files_are_reported_not_crashed(tmp_path):
    snap = write_snapshot(tmp_path / "s", cluster=az_cluster(), pods=[])
    (snap / "k8s" / "pods.json").write_text("{not json")
    (snap / "cluster.json").write_text("[1, 2]")
    out = aksdiag("run", "health", "prod", "--snapshot", str(snap), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    reasons = {u["source"]: u["reason"] for u in doc["unavailable"]}
    assert "not valid kubectl JSON" in reasons["pods"]
    assert "cluster.json" in reasons["cluster"] and "az aks show" in reasons["cluster"]


def test_az_aks_list_output_with_one_cluster_is_accepted(tmp_path):
    cluster = az_cluster(powerState={"code": "Stopped"})
    snap = write_snapshot(tmp_path / "s", cluster=cluster)
    (snap / "cluster.json").write_text(json.dumps([cluster]))
    out = aksdiag("run", "apiserver", "prod", "--snapshot", str(snap), "--format", "json")
    assert "cluster.stopped" in [f["code"] for f in json.loads(out.stdout)["findings"]]


def test_no_config_needed_with_snapshot_and_a_clear_error_without_one(snap):
    out = aksdiag("run", "apiserver", "prod")
    assert out.returncode == 3
    assert "--config" in out.stderr and "AKSDIAG_CONFIG" in out.stderr


def test_config_cluster_backed_by_a_snapshot(tmp_path, snap):
    cfg = tmp_path / "aksdiag.yaml"
    cfg.write_text(
        f"clusters:\n  prod:\n    snapshot: {snap}\n    operator_networks: [198.51.100.0/28]\n"
    )
    out = aksdiag("run", "apiserver", "prod", "--config", str(cfg), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    (f,) = [f for f in doc["findings"] if f["code"] == "apiserver.authorized-ip.client-excluded"]
    assert "198.51.100.0/28" in f["title"]
    out = aksdiag("run", "apiserver", "prdo", "--config", str(cfg))
    assert out.returncode == 2 and "Did you mean prod?" in out.stderr


def test_scenarios_lists_every_scenario():
    out = aksdiag("scenarios")
    assert out.returncode == 0
    for name in ("apiserver", "pod-ip", "service", "node-api", "health"):
        assert name in out.stdout


def test_files_saved_by_windows_powershell_are_read(tmp_path):
    """`az aks show > cluster.json` in Windows PowerShell writes UTF-16 with a BOM; editors add
    UTF-8 BOMs. Both must read as the same cluster."""
    cluster = az_cluster(apiServerAccessProfile={"authorizedIpRanges": ["203.0.113.0/24"]})
    snap = write_snapshot(tmp_path / "s", cluster=cluster, pods=[])
    text = (snap / "cluster.json").read_text()
    (snap / "cluster.json").write_bytes(text.encode("utf-16"))  # BOM + UTF-16LE
    pods = (snap / "k8s" / "pods.json").read_text()
    (snap / "k8s" / "pods.json").write_bytes(b"\xef\xbb\xbf" + pods.encode())
    out = aksdiag(
        "run",
        "apiserver",
        "prod",
        "--snapshot",
        str(snap),
        "--from",
        "198.51.100.7",
        "--format",
        "json",
    )
    doc = json.loads(out.stdout)
    assert [f["code"] for f in doc["findings"]] == ["apiserver.authorized-ip.client-excluded"]
    out = aksdiag("run", "pod-ip", "prod", "--snapshot", str(snap), "--format", "json")
    assert "pods" in json.loads(out.stdout)["collected"]
