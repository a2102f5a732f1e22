"""Control-plane logs over snapshot folders: `nodeapi.rbac-forbidden` from the audit log without
`--as`, `nodeapi.apiserver-throttled`, `cluster.control-plane-logs-off`, in every row shape
(aksdiag's aggregated rows, raw AKSAudit, raw AzureDiagnostics with log_s); quiet cases stay
quiet; with `--as` the audit evidence decides; AKS-managed identities are never widened."""

from __future__ import annotations

import json
import re
import shlex

import kubernetes_validate
import pytest
import yaml
from builders import az_cluster, write_snapshot
from builders_logs import (
    ANONYMOUS,
    CAPTURED,
    CLUSTER_ID,
    HEALTHY_READS,
    KUBE_PROXY,
    MODES,
    PROMETHEUS,
    THROTTLED,
    WORKSPACE,
    rows,
    setting,
    spec,
)

from bot.cli import main
from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.model import Severity
from diagnostics.runner import run
from diagnostics.scenarios import UsageError, parse_args

LOGS_ON = [setting("to-logs", ["kube-audit", "kube-audit-admin", "kube-apiserver"])]


def snap(tmp_path, specs=(), mode="aggregated", settings=LOGS_ON, audit=True, cluster=True):
    folder = write_snapshot(
        tmp_path / "snap", cluster=az_cluster() if cluster else None, captured_at=CAPTURED
    )
    if audit:
        (folder / "logs").mkdir()
        (folder / "logs" / "kube-audit.json").write_text(json.dumps(rows(list(specs), mode)))
    if settings is not None:
        (folder / "arm").mkdir()
        (folder / "arm" / "diagnostic-settings.json").write_text(json.dumps(settings))
    return folder


def report(folder, scenario="node-api", **args):
    return run(scenario, SnapshotSource(folder, "prod"), ScenarioArgs(**args))


def found(rep, code):
    return [f for f in rep.findings if f.code == code]


def by_subject(rep, code):
    return {f.subject: f for f in found(rep, code)}


def heredoc(command):
    body = command.split("<<'EOF'\n", 1)[1].rsplit("EOF", 1)[0]
    return [d for d in yaml.safe_load_all(body) if d]


# ---------------------------------------------------------------- 403s without --as
@pytest.mark.parametrize("mode", MODES)
def test_the_issue_incident_from_the_audit_log_in_every_row_shape(tmp_path, mode):
    rep = report(snap(tmp_path, [PROMETHEUS, ANONYMOUS, KUBE_PROXY, HEALTHY_READS], mode))
    f = by_subject(rep, "nodeapi.rbac-forbidden")
    prom = f["Identity/system:serviceaccount:monitoring:prometheus"]
    assert prom.severity is Severity.CRITICAL
    assert prom.title == (
        "system:serviceaccount:monitoring:prometheus got 412 × 403 (list pods cluster-wide) "
        "in the audit rows read, last at 08:41 UTC"
    )
    assert (
        "412 × 403 on list pods cluster-wide (user agent prometheus/v2.53.0), 08:02–08:41 UTC"
        in prom.evidence
    )
    # The fix grants exactly what was denied: list pods, cluster-wide, to that account.
    docs = heredoc(prom.remediation[0].command)
    for d in docs:
        kubernetes_validate.validate(d, "1.32", strict=True)
    role, binding = docs
    assert role["kind"] == "ClusterRole" and role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"}
    ]
    assert prom.remediation[1].command == (
        "kubectl auth can-i list pods --as=system:serviceaccount:monitoring:prometheus"
    )
    # system:anonymous is RBAC working; an AKS component is never widened.
    assert f["Identity/system:anonymous"].severity is Severity.INFO
    proxy = f["Identity/system:serviceaccount:kube-system:kube-proxy"]
    assert proxy.severity is Severity.WARNING
    assert "(AKS-managed)" in proxy.title
    assert not [s for s in proxy.remediation if s.command and "kubectl apply" in s.command]
    assert "do not grant it more" in proxy.remediation[0].text
    assert not found(rep, "nodeapi.apiserver-throttled")  # 200s are not counted
    assert not found(rep, "cluster.control-plane-logs-off")


def test_a_handful_of_denials_of_a_workload_is_info(tmp_path):
    few = spec("system:serviceaccount:shop:orders", "get", "secrets", "shop", 403, "orders/1.0", 4)
    (f,) = found(report(snap(tmp_path, [few])), "nodeapi.rbac-forbidden")
    assert f.severity is Severity.INFO
    (role, binding) = heredoc(f.remediation[0].command)
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "shop"
    assert binding["kind"] == "RoleBinding"


def test_since_narrows_the_window_relative_to_the_snapshot(tmp_path):
    old = spec(
        "system:serviceaccount:shop:orders",
        "list",
        "pods",
        "shop",
        403,
        "o/1",
        50,
        first_min=300,
        last_min=200,
    )
    folder = snap(tmp_path, [old, PROMETHEUS])
    assert len(found(report(folder), "nodeapi.rbac-forbidden")) == 2
    rep = report(folder, since=3600)
    (f,) = found(rep, "nodeapi.rbac-forbidden")
    assert "prometheus" in f.subject and "in the last 1h" in f.title
    assert rep.arguments == {"since": "1h"}


def test_only_kube_audit_admin_says_reads_are_not_visible(tmp_path):
    admin = [setting("admin-only", ["kube-audit-admin"])]
    deleter = spec(
        "system:serviceaccount:ci:pruner",
        "delete",
        "jobs",
        "ci",
        403,
        "pruner/2",
        30,
        group="batch",
    )
    folder = snap(tmp_path, [deleter], settings=admin)
    (f,) = found(report(folder), "nodeapi.rbac-forbidden")
    # the capture's notes carry the categories live; from a folder, the settings do
    assert not found(report(folder), "cluster.control-plane-logs-off")
    assert f.severity is Severity.CRITICAL
    role = heredoc(f.remediation[0].command)[0]
    assert role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["delete"]}]
    assert "kubectl auth can-i delete jobs.batch" in f.remediation[1].command


# ---------------------------------------------------------------- 429s
@pytest.mark.parametrize("mode", MODES)
def test_throttled_identity_and_user_agent(tmp_path, mode):
    rep = report(snap(tmp_path, [THROTTLED, PROMETHEUS], mode), "health")
    (f,) = found(rep, "nodeapi.apiserver-throttled")
    assert f.severity is Severity.WARNING
    assert f.subject == "Identity/system:serviceaccount:ci:deployer"
    assert "user agent argocd-application-controller/v2.11" in f.evidence[0]
    cmds = [s.command for s in f.remediation if s.command]
    assert "kubectl get flowschemas,prioritylevelconfigurations" in cmds
    assert any("QPS" in s.text for s in f.remediation)
    # health runs the node-api log checks too
    assert found(rep, "nodeapi.rbac-forbidden")


# ---------------------------------------------------------------- quiet cases
@pytest.mark.parametrize("mode", MODES)
def test_quiet_audit_log_raises_nothing(tmp_path, mode):
    rep = report(snap(tmp_path, [HEALTHY_READS], mode), "health")
    codes = {f.code for f in rep.findings}
    assert not codes & {
        "nodeapi.rbac-forbidden",
        "nodeapi.apiserver-throttled",
        "cluster.control-plane-logs-off",
    }
    assert not [u for u in rep.unavailable if u.source in ("kube-audit", "diagnosticsettings")]


def test_without_log_files_the_sources_are_named_unavailable(tmp_path):
    rep = report(snap(tmp_path, audit=False, settings=None), "health")
    why = {u.source: u.reason for u in rep.unavailable}
    assert why["kube-audit"] == "not collected in this snapshot (no logs/kube-audit.json)"
    assert why["diagnosticsettings"].startswith("not collected in this snapshot")
    assert not {"accessreview", "roles"} & set(why)


# ---------------------------------------------------------------- where the logs go
@pytest.mark.parametrize(
    "settings,workspace",
    [
        ([], "WORKSPACE_RESOURCE_ID"),
        (
            [setting("to-storage", ["kube-audit"], workspace=None, storage="/subscriptions/x/st")],
            "WORKSPACE_RESOURCE_ID",
        ),
        ([setting("apiserver-only", ["kube-apiserver"], dedicated=False)], WORKSPACE),
    ],
)
def test_control_plane_logs_off(tmp_path, settings, workspace):
    rep = report(snap(tmp_path, settings=settings, audit=False))
    (f,) = found(rep, "cluster.control-plane-logs-off")
    assert f.severity is Severity.INFO
    create = f.remediation[0].command
    assert create == (
        f"az monitor diagnostic-settings create --name aksdiag-control-plane --resource {CLUSTER_ID} "
        f"--workspace {workspace} --logs "
        """'[{"category":"kube-audit-admin","enabled":true},{"category":"kube-apiserver","enabled":true}]' """
        "--export-to-resource-specific true"
    )
    words = shlex.split(create)
    assert json.loads(words[words.index("--logs") + 1])[0]["category"] == "kube-audit-admin"
    assert "kube-audit" in f.remediation[1].command and "costliest" in f.remediation[1].text
    assert f.remediation[2].command.startswith("az monitor diagnostic-settings delete ")
    for s in f.remediation:
        shlex.split(s.command or "")
        assert "<" not in (s.command or "")


def test_logs_off_without_cluster_json_asks_az_for_the_id(tmp_path):
    rep = report(snap(tmp_path, settings=[], audit=False, cluster=False))
    (f,) = found(rep, "cluster.control-plane-logs-off")
    assert (
        '--resource "$(az aks show --resource-group RESOURCE_GROUP --name prod --query id -o tsv)"'
        in f.remediation[0].command
    )
    shlex.split(f.remediation[0].command)


@pytest.mark.parametrize("cats", [["kube-audit"], ["kube-audit-admin"]])
def test_audit_to_a_workspace_is_logs_on(tmp_path, cats):
    rep = report(snap(tmp_path, settings=[setting("x", cats, dedicated=False)], audit=False))
    assert not found(rep, "cluster.control-plane-logs-off")


def test_category_group_all_logs_counts_and_other_arm_files_are_left_alone(tmp_path):
    folder = snap(tmp_path, settings=None, audit=False)
    (folder / "arm").mkdir()
    group = setting("all", [])
    group["logs"] = [{"categoryGroup": "allLogs", "enabled": True}]
    # the REST shape, in a file with another name, next to a network resource file
    rest = {
        "id": group["id"],
        "name": "all",
        "type": group["type"],
        "properties": {"workspaceId": WORKSPACE, "logs": group["logs"]},
    }
    (folder / "arm" / "everything.json").write_text(json.dumps({"value": [rest]}))
    (folder / "arm" / "vnet.json").write_text(
        json.dumps({"id": "/x/virtualNetworks/v", "type": "Microsoft.Network/virtualNetworks"})
    )
    (folder / "arm" / "broken.json").write_text("{not json")
    rep = report(folder)
    assert "diagnosticsettings" in rep.collected
    assert not found(rep, "cluster.control-plane-logs-off")


# ---------------------------------------------------------------- --as joins the audit log
def test_as_with_repeated_denials_in_the_audit_log_is_critical_with_the_exact_grant(tmp_path):
    rep = report(snap(tmp_path, [PROMETHEUS]), as_account=("monitoring", "prometheus"))
    (f,) = found(rep, "nodeapi.rbac-forbidden")
    assert f.severity is Severity.CRITICAL
    assert f.subject == "ServiceAccount/monitoring/prometheus"
    assert f.evidence[0] == "audit log: 412 × 403 for this account in the audit rows read"
    role = heredoc(f.remediation[0].command)[0]
    assert role["kind"] == "ClusterRole"
    assert "pod-reader" not in f.remediation[0].command


@pytest.mark.parametrize(
    "account",
    [
        ("kube-system", "kube-proxy"),
        ("kube-system", "azure-cns"),
        ("kube-system", "cilium-operator"),
    ],
)
def test_as_an_aks_managed_account_is_never_widened(tmp_path, account):
    folder = snap(tmp_path, [])
    (folder / "k8s").mkdir(exist_ok=True)
    for r in ("roles", "rolebindings", "clusterroles", "clusterrolebindings"):
        (folder / "k8s" / f"{r}.json").write_text(json.dumps({"kind": "List", "items": []}))
    rep = report(folder, as_account=account)
    assert not found(rep, "nodeapi.rbac-forbidden")
    (f,) = found(rep, "nodeapi.rbac-managed")
    assert f.severity is Severity.INFO
    assert not any(
        "kubectl apply" in (s.command or "") or "create clusterrolebinding" in (s.command or "")
        for s in f.remediation
    )
    assert "audit log: no 403 for this account in the audit rows read" in f.evidence


def test_identities_and_user_agents_are_redacted(tmp_path):
    leaky = spec(
        "system:serviceaccount:shop:orders",
        "get",
        "pods",
        "shop",
        403,
        "curl/8.5 token=FAKEsecretEXAMPLE123456",
        12,
    )
    rep = report(snap(tmp_path, [leaky], "AKSAudit"))
    (f,) = found(rep, "nodeapi.rbac-forbidden")
    assert "FAKEsecretEXAMPLE123456" not in json.dumps(
        f.to_dict() if hasattr(f, "to_dict") else str(f)
    )
    assert re.search(r"\[REDACTED\]", " ".join(f.evidence))


# ---------------------------------------------------------------- --since, as people type it
@pytest.mark.parametrize("scenario", ["node-api", "health"])
def test_since_is_taken_by_node_api_and_health(scenario):
    assert parse_args(scenario, ["--since", "2h"]).since == 7200
    assert parse_args(scenario, ["—since=30m"]).since == 1800  # Slack's em dash, inline value


@pytest.mark.parametrize("bad", ["0m", "8d", "1w", "soon", "-1h"])
def test_since_out_of_bounds_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="--since"):
        parse_args("node-api", ["--since", bad])


def test_since_belongs_to_node_api_and_health_only():
    with pytest.raises(UsageError, match="belongs to the `node-api` scenario"):
        parse_args("pod-ip", ["--since", "1h"])


def test_cli_since_on_the_example(capsys):
    code = main(
        [
            "run",
            "node-api",
            "aks-shop-neu",
            "--snapshot",
            "examples/broken-nodeapi",
            "--since",
            "30m",
            "--format",
            "json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["arguments"] == {"since": "30m"}
    forbidden = [f for f in doc["findings"] if f["code"] == "nodeapi.rbac-forbidden"]
    # 16:12-16:42 UTC before the capture: the orders worker's denials go on; the anonymous
    # requests (last at 16:31) too; all in the last 30 minutes
    assert forbidden[0]["severity"] == "critical"
    assert "in the last 30m" in forbidden[0]["title"]
    assert (
        main(["run", "node-api", "x", "--snapshot", "examples/broken-nodeapi", "--since", "9d"])
        == 2
    )


def test_a_report_with_since_round_trips_through_a_button():
    from handlers.parse import request_tokens

    args = parse_args("health", ["--since", "90m"])
    assert parse_args("health", request_tokens(args.to_dict())) == args


def test_capture_refuses_a_bad_since_before_reading_anything(tmp_path, capsys):
    args = ["capture", "prod", str(tmp_path / "snap"), "--kubeconfig", "none", "--since", "9d"]
    assert main(args) == 2
    assert "--since takes a duration" in capsys.readouterr().err
    assert not (tmp_path / "snap").exists()


@pytest.mark.parametrize(
    "doc",
    [
        '{"not": "rows"}',
        "[1, 2, null]",
        '[{"Identity": 5, "Requests": "x", "Code": "403"}]',
        '[{"User": "{broken", "ResponseStatus": "{\\"code\\": 403}"}]',
        '[{"log_s": "[]"}]',
        '[{"log_s": "{\\"responseStatus\\": {\\"code\\": \\"forbidden\\"}}"}]',
        "{not json",
        '{"tables": [{"columns": [{"name": "Identity"}], "rows": [["x"]]}]}',
    ],
)
def test_odd_audit_files_never_crash(tmp_path, doc):
    folder = snap(tmp_path, [])
    (folder / "logs" / "kube-audit.json").write_text(doc)
    rep = report(folder, "health")
    assert not [u for u in rep.unavailable if u.source.startswith("check ")]  # no check crashed
    why = {u.source: u.reason for u in rep.unavailable}
    assert "kube-audit" not in why or why["kube-audit"].startswith(
        "logs/kube-audit.json could not be parsed"
    )
