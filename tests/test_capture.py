"""`capture` over the wire: an emulated cluster captured to a snapshot folder gives the same
findings offline as live; the folder holds no Secret and no planted FAKE token; what could not
be read is said, not silently missing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import builders as b
import pytest
from azure.core.credentials import AccessToken
from builders_logs import ANONYMOUS, KUBE_PROXY, PROMETHEUS, THROTTLED, rows, setting
from emulators import AAD_TOKEN, ARM_TOKEN, DEFAULT_TOKEN, ArmEmulator, KubeEmulator
from emulators.sample import ALLOWED_SA, FORBIDDEN_SA, NODE1, sample_objects

from diagnostics.checks import default_registry
from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.arm import AzureTarget
from diagnostics.collectors.capture import CaptureError, capture
from diagnostics.collectors.kubeauth import KubeAccess
from diagnostics.collectors.live import LiveSource
from diagnostics.collectors.settings import AKS_AAD_SCOPE, LiveSettings
from diagnostics.collectors.snapshot_dir import SnapshotSource, read_snapshot
from diagnostics.redact import MASK
from diagnostics.runner import run

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MC = f"/subscriptions/{b.SUB}/resourceGroups/MC_rg-prod_prod_westeurope/providers/Microsoft.Network"
LIVE_ONLY = {code for c in default_registry().all() if c.live_only for code in c.codes}


class FakeCredential:
    def get_token(self, *scopes: str, **kw: object) -> AccessToken:
        return AccessToken(
            AAD_TOKEN if scopes[0] == AKS_AAD_SCOPE else ARM_TOKEN, int(time.time()) + 3600
        )


def settings(arm_url: str) -> LiveSettings:
    return LiveSettings(
        arm_endpoint=arm_url,
        logs_endpoint=arm_url,
        retries=0,
        k8s_timeout=5.0,
        connect_timeout=3.0,
        probe_timeout=3.0,
        collect_timeout=30.0,
        run_command_poll=0.01,
    )


def azure_cluster() -> dict:
    return b.az_cluster(
        fqdn="prod-dns-abc123.hcp.westeurope.azmk8s.invalid",
        apiServerAccessProfile={"authorizedIpRanges": ["198.51.100.0/24", "20.61.1.1/32"]},
        aadProfile={"managed": True},
    )


def finding_set(report) -> set[tuple[str, str, str, str]]:
    return {
        (f.code, f.severity.value, f.subject, f.title)
        for f in report.findings
        if f.code not in LIVE_ONLY
    }


SCENARIOS = [
    ("health", ScenarioArgs()),
    ("apiserver", ScenarioArgs(from_ips=("198.51.100.7", "203.0.113.9"))),
    ("pod-ip", ScenarioArgs()),
    ("pod-ip", ScenarioArgs(node=NODE1)),
    ("service", ScenarioArgs(service=("shop", "web"))),
    ("service", ScenarioArgs(service=("shop", "api"))),
    ("service", ScenarioArgs(service=("shop", "orphan"))),
    ("node-api", ScenarioArgs(as_account=ALLOWED_SA)),
    ("node-api", ScenarioArgs(as_account=FORBIDDEN_SA)),
]


OFFERED = [
    {
        "version": "1.33",
        "isPreview": False,
        "capabilities": {"supportPlan": ["KubernetesOfficial"]},
        "patchVersions": {"1.33.2": {"upgrades": ["1.34.1"]}},
    },
    {
        "version": "1.32",
        "isPreview": False,
        "capabilities": {"supportPlan": ["AKSLongTermSupport"]},
        "patchVersions": {"1.32.5": {"upgrades": ["1.33.2"]}},
    },
]


@pytest.mark.parametrize("mode", ["aad", "run-command"])
def test_a_captured_emulated_cluster_gives_the_same_findings_as_live(tls, tmp_path, mode):
    with (
        KubeEmulator(certfile=str(tls.server_pem), tokens=(AAD_TOKEN,), **sample_objects()) as k8s,
        ArmEmulator(k8s=k8s, certfile=str(tls.server_pem)) as arm,
    ):
        arm.ca_data = tls.ca_data
        arm.add_cluster(azure_cluster())
        arm.add_public_ip(f"{MC}/publicIPAddresses/egress-1", "20.61.1.1")
        arm.add_kubernetes_versions(b.SUB, "westeurope", OFFERED)
        cid = arm.add_cluster(azure_cluster()).lower()  # its audit log: 403s and 429s
        arm.add_diagnostic_setting(cid, setting("to-logs", ["kube-audit-admin", "kube-audit"]))
        arm.audit_rows[cid] = rows([PROMETHEUS, ANONYMOUS, KUBE_PROXY, THROTTLED], "aggregated")
        source = LiveSource(
            "prod",
            kube=KubeAccess(mode),
            azure=AzureTarget(b.SUB, "rg-prod", "prod"),
            settings=settings(arm.url),
            credential=FakeCredential(),
            connection_verify=str(tls.ca_pem),
        )
        live = {(s, a): run(s, source, a) for s, a in SCENARIOS}
        result = capture(source, tmp_path / "snap")
    assert not result.missing, result.missing
    # versions.json: what `az aks get-versions` prints, only the fields the check reads
    assert json.loads((tmp_path / "snap" / "versions.json").read_text()) == {
        "values": [{k: v for k, v in o.items() if k != "patchVersions"} for o in OFFERED]
    }
    offline = SnapshotSource(tmp_path / "snap", "prod")
    compared = 0
    for (scenario, args), live_report in live.items():
        snap_report = run(scenario, offline, args)
        assert finding_set(snap_report) == finding_set(live_report), (scenario, args)
        compared += len(live_report.findings)
    assert compared > 20  # the sample cluster has plenty to say
    codes = {f.code for r in live.values() for f in r.findings}
    assert {
        "podip.allocation-failed",
        "service.selector-matches-no-pods",
        "nodeapi.rbac-forbidden",
        "apiserver.authorized-ip.client-excluded",
        "nodeapi.apiserver-throttled",
    } <= codes
    # the audit rows only: aggregated, no request or response bodies
    (row, *_) = json.loads((tmp_path / "snap" / "logs" / "kube-audit.json").read_text())
    assert set(row) == {
        "Identity",
        "Verb",
        "Resource",
        "ApiGroup",
        "Namespace",
        "Code",
        "UserAgent",
        "Requests",
        "FirstSeen",
        "LastSeen",
    }


# ---------------------------------------------------------------- secrets never leave
PLANTED = {
    "API_TOKEN": "FAKE-token-5f2b8c1d9e",
    "SLACK_WEBHOOK": "https://hooks.slack.com/services/T0FAKE000/B0FAKE000/FAKEFAKEFAKEFAKEFAKE",
    "DB_URL": "postgres://app:FAKE-pass-3141@db.shop.svc:5432/shop",
    "SLACK_BOT": "xoxb-FAKE-0000000000-EXAMPLEEXAMPLE",
}


def planted_objects() -> dict:
    objects = sample_objects()
    web = objects["pods"][0]
    container = web["spec"]["containers"][0]
    container["env"] = [{"name": k, "value": v} for k, v in PLANTED.items()] + [
        {"name": "LOG_LEVEL", "value": "info"}
    ]
    container["args"] = ["--token=FAKE-arg-token-9999", "--port=8080"]
    web["metadata"]["annotations"] = {
        "example.com/webhook-token": "FAKE-annotation-token-1234",
        LAST_APPLIED: json.dumps({"kind": "Pod", "env": "FAKE-last-applied-secret"}),
        "example.com/owner": "team-shop",
    }
    objects["configmaps"].append(
        b.configmap(
            "app-settings",
            {
                "client_secret": "FAKE-cm-secret-777",
                "config.yaml": "password: FAKE-cm-pass-888\nlevel: info",
            },
        )
    )
    objects["events"].append(
        b.event(
            "Failed",
            "Failed to pull image: authorization failed: Authorization: "
            "Bearer FAKEtokenABCDEFGHIJ1234567890",
            name="web-0",
            namespace="shop",
        )
    )
    ds = objects["daemonsets"][0]
    ds["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "STORAGE_KEY", "value": "AccountKey=FAKEkeyFAKEkeyFAKEkeyFAKEkey=="}
    ]
    return objects


def every_file_text(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.rglob("*")) if p.is_file())


def test_capture_writes_no_secret_and_redacts_planted_tokens(tls, tmp_path):
    with KubeEmulator(certfile=str(tls.server_pem), **planted_objects()) as k8s:
        kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        source = LiveSource(
            "shop", kube=KubeAccess("kubeconfig", str(kc)), settings=settings("https://x")
        )
        capture(source, tmp_path / "snap")
        assert k8s.count("/api/v1/secrets") == 0 and k8s.count("*/secrets") == 0
    text = every_file_text(tmp_path / "snap")
    for needle in [
        *PLANTED.values(),
        "FAKE-arg-token-9999",
        "FAKE-annotation-token-1234",
        "FAKE-last-applied-secret",
        "FAKE-cm-secret-777",
        "FAKE-cm-pass-888",
        "FAKEtokenABCDEFGHIJ1234567890",
        "FAKEkeyFAKEkeyFAKEkey",
        DEFAULT_TOKEN,
        "RkFLRS1kYi1wYXNzd29yZC1uZXZlci1jYXB0dXJl",
        "db-password",
    ]:
        assert needle not in text, needle
    assert '"kind": "Secret"' not in text and not (tmp_path / "snap/k8s/secrets.json").exists()
    pods = json.loads((tmp_path / "snap/k8s/pods.json").read_text())
    web = next(p for p in pods["items"] if p["metadata"]["name"] == "web-0")
    # by allowlist: what no check reads is not written at all (env, args, annotations)
    assert set(web["spec"]["containers"][0]) <= {"name", "ports"}
    assert "annotations" not in web["metadata"] and web["metadata"]["labels"]
    cms = json.loads((tmp_path / "snap/k8s/configmaps.json").read_text())
    app = next(c for c in cms["items"] if c["metadata"]["name"] == "app-settings")
    assert app["data"]["client_secret"] == MASK and "level: info" in app["data"]["config.yaml"]


def test_the_snapshot_is_kubectl_shaped_and_reads_back(tls, tmp_path):
    with KubeEmulator(certfile=str(tls.server_pem), **sample_objects()) as k8s:
        kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        source = LiveSource(
            "shop", kube=KubeAccess("kubeconfig", str(kc)), settings=settings("https://x")
        )
        result = capture(source, tmp_path / "snap")
    pods = json.loads((tmp_path / "snap/k8s/pods.json").read_text())
    assert pods["kind"] == "List" and {(p["apiVersion"], p["kind"]) for p in pods["items"]} == {
        ("v1", "Pod")
    }
    meta = json.loads((tmp_path / "snap/snapshot.json").read_text())
    assert (
        meta["capturedAt"] == result.captured_at
        and meta["source"]["path"] == "kubeconfig ctx emulator"
    )
    assert meta["fieldSelectors"] == {"events": "type=Warning"}
    # kubeconfig: Kubernetes only, nothing from Azure
    assert set(meta["missing"]) == {
        "cluster",
        "publicips",
        "versions",
        "diagnosticsettings",
        "kube-audit",
    }
    snap = read_snapshot(tmp_path / "snap")
    assert len(snap.pods) == 10 and {e.type for e in snap.events} == {"Warning"}
    assert snap.captured_at is not None


def test_what_could_not_be_read_is_not_written_and_is_said(tls, tmp_path):
    with KubeEmulator(certfile=str(tls.server_pem), nnc_installed=False, **sample_objects()) as k8s:
        k8s.fault("/api/v1/events", 403)
        kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        source = LiveSource(
            "shop", kube=KubeAccess("kubeconfig", str(kc)), settings=settings("https://x")
        )
        result = capture(source, tmp_path / "snap")
    assert result.missing["events"].startswith("forbidden:")
    assert result.missing["nodenetworkconfigs"].startswith("not installed:")
    assert not (tmp_path / "snap/k8s/events.json").exists()
    assert not list((tmp_path / "snap/k8s").glob(".*"))  # no half-written files
    snap = read_snapshot(tmp_path / "snap")
    assert snap.missing["events"].startswith("not collected in this snapshot")


def test_capture_refuses_a_folder_that_is_not_a_snapshot_and_replaces_its_own(tls, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    with KubeEmulator(certfile=str(tls.server_pem), **sample_objects()) as k8s:
        kc = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        source = LiveSource(
            "shop", kube=KubeAccess("kubeconfig", str(kc)), settings=settings("https://x")
        )
        with pytest.raises(CaptureError, match=r"not empty and holds no snapshot\.json"):
            capture(source, tmp_path / "docs")
        capture(source, tmp_path / "snap")
        (tmp_path / "snap/k8s/stale.json").write_text("{}")
        capture(source, tmp_path / "snap")
    assert (tmp_path / "docs" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "snap/k8s/stale.json").exists()


# ---------------------------------------------------------------- capture by allowlist
def _objects_of_every_kind():
    """Every Kubernetes object of the bundled examples and of the sample cluster."""
    from diagnostics.projection import PROJECTORS

    examples = Path(__file__).resolve().parent.parent / "examples"
    for path in sorted(examples.glob("*/k8s/*.json")):
        resource = path.stem
        if resource in PROJECTORS:
            for raw in json.loads(path.read_text()).get("items", ()):
                yield resource, raw
    for resource, items in sample_objects().items():
        for raw in items if resource in PROJECTORS else ():
            yield resource, raw


def test_projection_reads_only_its_field_list():
    """The field list drives capture: projecting an object reduced to `FIELDS` gives the same
    record as projecting the whole object. A projector that starts reading a new field fails
    here until the field is added to `diagnostics/projection.py` `FIELDS`."""
    from diagnostics.allowlist import keep
    from diagnostics.projection import FIELDS, PROJECTORS

    seen: set[str] = set()
    for resource, raw in _objects_of_every_kind():
        project = PROJECTORS[resource]
        assert project(keep(raw, FIELDS[resource])) == project(raw), (resource, raw)
        seen.add(resource)
    assert seen >= {
        "pods",
        "events",
        "services",
        "endpointslices",
        "networkpolicies",
        "nodes",
        "configmaps",
        "nodenetworkconfigs",
        "roles",
        "rolebindings",
    }


def test_cluster_json_keeps_only_the_managed_cluster_fields_parse_cluster_reads():
    from diagnostics.allowlist import keep
    from diagnostics.collectors.armjson import ARM_FIELDS, parse_cluster, to_rest_body

    examples = Path(__file__).resolve().parent.parent / "examples"
    bodies = [json.loads(p.read_text()) for p in sorted(examples.glob("*/cluster.json"))]
    for body in [*bodies, azure_cluster()]:
        kept = keep(to_rest_body(body), ARM_FIELDS)
        assert parse_cluster(kept) == parse_cluster(body)
    planted = azure_cluster()
    planted["tags"] = {"deploy": "ghp_FAKEexample0123456789abcdefghijklmnop"}
    planted["httpProxyConfig"] = {"httpProxy": "http://user:FAKEproxyPASS@proxy:3128"}
    planted["addonProfiles"] = {
        "omsagent": {
            "config": {
                "logAnalyticsWorkspaceResourceID": "/x",
                "workspaceKey": "FAKEworkspaceKEYexample==",
            }
        }
    }
    text = json.dumps(keep(to_rest_body(planted), ARM_FIELDS))
    assert "FAKE" not in text and "httpProxyConfig" not in text and "tags" not in text


def test_versions_that_cannot_be_read_are_said_and_not_written(tls, tmp_path):
    with ArmEmulator(certfile=str(tls.server_pem)) as arm:
        arm.add_cluster(azure_cluster())
        arm.add_public_ip(f"{MC}/publicIPAddresses/egress-1", "20.61.1.1")
        rid = arm.add_kubernetes_versions(b.SUB, "westeurope", [])
        arm.fault(rid, 403)
        source = LiveSource(
            "prod",
            azure=AzureTarget(b.SUB, "rg-prod", "prod"),
            settings=settings(arm.url),
            credential=FakeCredential(),
            connection_verify=str(tls.ca_pem),
        )
        result = capture(source, tmp_path / "snap")
    assert result.missing["versions"].startswith(
        "forbidden: the Kubernetes versions AKS offers in westeurope"
    )
    assert not (tmp_path / "snap" / "versions.json").exists()
    assert (tmp_path / "snap" / "cluster.json").exists()
    assert read_snapshot(tmp_path / "snap").kubernetes_versions is None
