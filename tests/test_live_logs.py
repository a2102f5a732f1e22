"""Control-plane logs read live over the wire: the real azure-mgmt-monitor pipeline reads the
cluster's diagnostic settings and the real azure-monitor-query LogsQueryClient queries the audit
log through the cluster's resource id, both against the ARM emulator (TLS, test CA). Slow,
partial, 403 and 429 answers end in `unavailable`, never in a crash."""

from __future__ import annotations

import pytest
from builders_logs import ANONYMOUS, KUBE_PROXY, PROMETHEUS, THROTTLED, rows, setting
from emulators import ArmEmulator
from test_live_arm import FakeCredential, cluster

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.arm import AzureTarget
from diagnostics.collectors.kubeauth import KubeAccess
from diagnostics.collectors.live import LiveSource
from diagnostics.collectors.settings import LiveSettings
from diagnostics.model import Severity
from diagnostics.runner import run
from diagnostics.scenarios import parse_args

TARGET = AzureTarget(cluster()["id"].split("/")[2], "rg-prod", "prod")
INCIDENT = rows([PROMETHEUS, ANONYMOUS, KUBE_PROXY, THROTTLED], "aggregated")


@pytest.fixture
def arm(tls):
    with ArmEmulator(certfile=str(tls.server_pem)) as emu:
        emu.add_cluster(cluster())
        yield emu


def live(arm, tls, **kw) -> LiveSource:
    base = dict(
        arm_endpoint=arm.url,
        logs_endpoint=arm.url,
        retries=0,
        collect_timeout=20.0,
        logs_timeout=5.0,
        backoff=0.01,
    )
    return LiveSource(
        "prod",
        kube=KubeAccess("none"),
        azure=TARGET,
        settings=LiveSettings(**{**base, **kw}),
        credential=FakeCredential(),
        connection_verify=str(tls.ca_pem),
    )


def logs_on(arm, dedicated=True, rows=INCIDENT):
    cid = TARGET.id.lower()
    arm.add_diagnostic_setting(
        cid, setting("to-logs", ["kube-audit", "kube-apiserver"], dedicated=dedicated)
    )
    arm.audit_rows[cid] = rows


def codes(report, code):
    return [f for f in report.findings if f.code == code]


def reasons(report):
    return {u.source: u.reason for u in report.unavailable}


@pytest.mark.parametrize("dedicated", [True, False], ids=["resource-specific", "AzureDiagnostics"])
def test_the_audit_log_is_queried_through_the_cluster_and_raises_both_codes(arm, tls, dedicated):
    logs_on(arm, dedicated)
    report = run("node-api", live(arm, tls))
    forbidden = {f.subject: f for f in codes(report, "nodeapi.rbac-forbidden")}
    prom = forbidden["Identity/system:serviceaccount:monitoring:prometheus"]
    assert prom.severity is Severity.CRITICAL
    assert prom.title.endswith("in the last 1h, last at 08:41 UTC")
    assert forbidden["Identity/system:anonymous"].severity is Severity.INFO
    (throttled,) = codes(report, "nodeapi.apiserver-throttled")
    assert throttled.subject == "Identity/system:serviceaccount:ci:deployer"
    assert not codes(report, "cluster.control-plane-logs-off")
    assert "kube-audit" in report.collected and "diagnosticsettings" in report.collected
    # One bounded query, on the cluster's resource id: the window, the cap, both table modes.
    (q,) = arm.log_queries
    assert q["resource"] == TARGET.id.lower()
    assert q["body"]["timespan"] == "PT3600.0S" and "wait=5" in q["prefer"]
    text = q["body"]["query"]
    for table in ("AKSAudit", "AKSAuditAdmin", "AzureDiagnostics", "log_s", "union isfuzzy=true"):
        assert table in text
    assert text.rstrip().endswith("| top 500 by Requests desc")
    assert "RequestObject" not in text and "ResponseObject" not in text  # never the bodies


def test_since_sets_the_query_window_and_health_runs_the_log_checks(arm, tls):
    logs_on(arm)
    report = run("health", live(arm, tls), parse_args("health", ["--since", "6h"]))
    assert arm.log_queries[-1]["body"]["timespan"] == "PT21600.0S"
    assert codes(report, "nodeapi.rbac-forbidden") and codes(report, "nodeapi.apiserver-throttled")
    assert report.arguments == {"since": "6h"}


def test_no_diagnostic_setting_no_query_and_the_fix_names_the_cluster(arm, tls):
    report = run("node-api", live(arm, tls))
    (f,) = codes(report, "cluster.control-plane-logs-off")
    assert f"--resource {cluster()['id']}" in f.remediation[0].command
    assert reasons(report)["kube-audit"].startswith(
        "not read: no diagnostic setting sends kube-audit"
    )
    assert not arm.log_queries  # an empty answer would have read as "no 403s"
    assert not codes(report, "nodeapi.rbac-forbidden")


@pytest.mark.parametrize(
    "fault,reason",
    [
        (dict(status=403), "forbidden: the audit log (Log Analytics, 403)"),
        (dict(status=429, retry_after=0), "Log Analytics throttled the audit query (429)"),
        (dict(delay=3.0), "Log Analytics did not answer the audit query within 1 s"),
    ],
    ids=["403", "429", "slow"],
)
def test_query_failures_are_reasons_never_crashes(arm, tls, fault, reason):
    logs_on(arm)
    arm.fault("/v1/*", **fault)
    report = run("node-api", live(arm, tls, logs_timeout=1.0))
    assert reasons(report)["kube-audit"].startswith(reason), reasons(report)
    assert not codes(report, "nodeapi.rbac-forbidden")
    assert not codes(report, "cluster.control-plane-logs-off")  # the settings were read


def test_a_partial_answer_keeps_its_rows_and_says_so(arm, tls):
    logs_on(arm)
    arm.logs_partial = True
    report = run("node-api", live(arm, tls))
    assert codes(report, "nodeapi.rbac-forbidden")
    why = reasons(report)["kube-audit"]
    assert why.startswith("Log Analytics answered partially (PartialError")
    assert "lower bound" in why


def test_the_row_cap_is_sent_and_reported(arm, tls):
    logs_on(arm)
    report = run("node-api", live(arm, tls, logs_max_rows=2))
    assert arm.log_queries[-1]["body"]["query"].rstrip().endswith("| top 2 by Requests desc")
    f = codes(report, "nodeapi.rbac-forbidden")[0]
    assert any("row cap" in e for e in f.evidence)


def test_unreadable_diagnostic_settings_leave_the_audit_log_unread_and_say_why(arm, tls):
    logs_on(arm)
    arm.fault(f"{TARGET.id}/providers/Microsoft.Insights/diagnosticSettings", 403)
    report = run("node-api", live(arm, tls))
    why = reasons(report)
    assert why["diagnosticsettings"].startswith("forbidden: the cluster's diagnostic settings")
    assert why["kube-audit"].startswith(
        "not read: where the audit log goes is unknown, because the diagnostic settings could "
        "not be read (forbidden"
    )
    assert not arm.log_queries and not codes(report, "cluster.control-plane-logs-off")


def test_with_as_the_live_audit_evidence_joins(arm, tls):
    logs_on(arm)
    report = run("node-api", live(arm, tls), ScenarioArgs(as_account=("monitoring", "prometheus")))
    (f,) = codes(report, "nodeapi.rbac-forbidden")
    assert f.subject == "ServiceAccount/monitoring/prometheus"
    assert f.severity is Severity.CRITICAL
    assert f.evidence[0] == "audit log: 412 × 403 for this account in the last 1h"
