"""deploy/ as an operator uses it: every kustomize tree renders offline with the venv's kubectl
and validates against the Kubernetes schemas; the bot's pods are locked down; the target-cluster
RBAC is exactly what diagnostics.resources.K8S_RESOURCES reads; the Slack manifest asks for
what the bot calls; the Dockerfile's final stage is non-root and compiler-free; docs/deploy.md
names the paths, Secret keys and identities the manifests use. (No Docker engine here: the
image itself is not built.)"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from diagnostics.resources import K8S_RESOURCES, ApiResource

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCS = (ROOT / "docs" / "deploy.md").read_text()
KUBECTL = Path(sys.executable).parent / "kubectl"

BOT_OVERLAYS = ("socket-mode", "http-mode", "bundled-redis")
TARGET_TREES = ("target-cluster", "target-cluster/in-cluster")
SECRET_ENV = {
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "REDISCLI_AUTH",
    "VALKEYCLI_AUTH",
}
READ_VERBS = ("get", "list")
SAR = ("authorization.k8s.io", "subjectaccessreviews", "create")


@functools.cache
def render(tree: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize deploy/k8s/<tree>` (offline), as parsed documents."""
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(DEPLOY / "k8s" / tree)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"kubectl kustomize deploy/k8s/{tree} failed:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def bot_pod(tree: str) -> dict[str, Any]:
    return one(render(tree), "Deployment", "aksdiag")["spec"]["template"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


# --- every tree renders and validates ---------------------------------------------------------


@pytest.mark.parametrize("tree", [f"overlays/{m}" for m in BOT_OVERLAYS] + list(TARGET_TREES))
def test_tree_renders_and_every_document_validates_strictly(tree: str) -> None:
    docs = render(tree)
    assert docs
    version = kubernetes_validate.latest_version()
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            pytest.fail(
                f"{tree}: {doc['kind']}/{doc['metadata']['name']} at {where}: {exc.message}"
            )


def test_http_mode_with_the_bundled_redis_component_composes(tmp_path: Path) -> None:
    # docs/deploy.md tells HTTP-mode users to combine these two; prove that it renders.
    # kustomize takes relative paths only, as the guide says.
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY / "k8s/overlays/http-mode", tmp_path)],
                "components": [os.path.relpath(DEPLOY / "k8s/components/bundled-redis", tmp_path)],
            }
        )
    )
    out = subprocess.run([str(KUBECTL), "kustomize", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(out.stdout) if d}
    assert {"Ingress", "StatefulSet", "NetworkPolicy"} <= kinds


# --- the bot's pods ---------------------------------------------------------------------------


def assert_locked_down(pod: dict[str, Any], what: str) -> None:
    spec = pod["spec"]
    sc = spec["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, what
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, what
    for c in spec["containers"]:
        csc = c["securityContext"]
        assert csc["readOnlyRootFilesystem"] is True, what
        assert csc["allowPrivilegeEscalation"] is False, what
        assert csc.get("privileged", False) is False, what
        assert csc["capabilities"] == {"drop": ["ALL"]}, what
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{what}: {kind}"


@pytest.mark.parametrize("mode", BOT_OVERLAYS)
def test_bot_deployment_is_two_locked_down_replicas(mode: str) -> None:
    tree = f"overlays/{mode}"
    deployment = one(render(tree), "Deployment", "aksdiag")
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["replicas"] == 2
    assert_locked_down(pod, mode)
    spread = pod["spec"]["topologySpreadConstraints"]
    assert {t["topologyKey"] for t in spread} >= {"kubernetes.io/hostname"}
    labels = pod["metadata"]["labels"]
    for t in spread:
        assert t["labelSelector"]["matchLabels"].items() <= labels.items()
    pdb = one(render(tree), "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 0 < pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


@pytest.mark.parametrize("mode", BOT_OVERLAYS)
def test_probes_hit_the_paths_and_port_the_bot_serves(mode: str) -> None:
    (c,) = bot_pod(f"overlays/{mode}")["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["args"] == ["serve", "--port", str(port["http"])]  # `aksdiag serve --port`
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("mode", BOT_OVERLAYS)
def test_config_file_tmp_and_workload_identity_are_wired(mode: str) -> None:
    docs = render(f"overlays/{mode}")
    pod = bot_pod(f"overlays/{mode}")
    (c,) = pod["spec"]["containers"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["tmp"]["name"]] and mounts["tmp"]["mountPath"] == "/tmp"
    config_map = one(docs, "ConfigMap", volumes["config"]["configMap"]["name"])
    config_path = env_of(c)["AKSDIAG_CONFIG"]["value"]
    assert config_path == f"{mounts['config']['mountPath']}/config.yaml"
    assert "config.yaml" in config_map["data"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    sa = one(docs, "ServiceAccount", pod["spec"]["serviceAccountName"])
    client_id = sa["metadata"]["annotations"]["azure.workload.identity/client-id"]
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", client_id)


def test_example_config_loads_with_the_bots_own_loader(tmp_path: Path) -> None:
    from bot.config import load_config

    config_map = one(render("overlays/socket-mode"), "ConfigMap")
    (tmp_path / "config.yaml").write_text(config_map["data"]["config.yaml"])
    config = load_config(tmp_path / "config.yaml")
    assert config.clusters and config.digests
    assert all(c.azure for c in config.clusters.values())


def test_each_mode_gets_the_slack_secrets_it_needs_and_no_other() -> None:
    socket_env = env_of(bot_pod("overlays/socket-mode")["spec"]["containers"][0])
    http_env = env_of(bot_pod("overlays/http-mode")["spec"]["containers"][0])
    assert {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "REDIS_URL"} <= set(socket_env)
    # `aksdiag serve` runs Socket Mode whenever SLACK_APP_TOKEN is set.
    assert "SLACK_APP_TOKEN" not in http_env
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REDIS_URL"} <= set(http_env)


def test_http_mode_exposes_only_slack_events_through_the_ingress() -> None:
    docs = render("overlays/http-mode")
    service, ingress = one(docs, "Service", "aksdiag"), one(docs, "Ingress", "aksdiag")
    labels = bot_pod("overlays/http-mode")["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["targetPort"] == "http"
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/slack/events", "Exact")]
    backend = paths[0]["backend"]["service"]
    assert backend["name"] == "aksdiag" and backend["port"]["name"] == svc_port["name"]
    assert ingress["spec"]["tls"], "Slack only calls https Request URLs"


def test_bundled_redis_is_locked_down_and_reached_with_an_interpolated_password() -> None:
    docs = render("overlays/bundled-redis")
    statefulset = one(docs, "StatefulSet", "aksdiag-redis")
    assert_locked_down(statefulset["spec"]["template"], "valkey")
    env = bot_pod("overlays/bundled-redis")["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    url = env[names.index("REDIS_URL")]
    assert "valueFrom" not in url
    # Kubernetes expands $(VAR) only from variables defined earlier in the list.
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")
    assert url["value"] == "redis://:$(REDIS_PASSWORD)@aksdiag-redis:6379/0"
    service = one(docs, "Service", "aksdiag-redis")
    assert [p["port"] for p in service["spec"]["ports"]] == [6379]
    policy = one(docs, "NetworkPolicy", "aksdiag-redis")
    (rule,) = policy["spec"]["ingress"]
    bot_labels = bot_pod("overlays/bundled-redis")["metadata"]["labels"]
    assert rule["from"][0]["podSelector"]["matchLabels"].items() <= bot_labels.items()


_SECRET_VALUE = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]+|xapp-\d-[A-Za-z0-9-]+|rediss?://[^\s$@]*:[^\s$@(]+@"
)


@pytest.mark.parametrize("mode", BOT_OVERLAYS)
def test_no_secret_value_anywhere_only_references(mode: str) -> None:
    docs = render(f"overlays/{mode}")
    assert not [d for d in docs if d["kind"] == "Secret"]
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in d["spec"]["template"]["spec"]["containers"]:
            for name, e in env_of(c).items():
                if name in SECRET_ENV and "value" in e:
                    assert name == "REDIS_URL" and "$(REDIS_PASSWORD)" in e["value"], name
                elif name in SECRET_ENV:
                    assert e["valueFrom"]["secretKeyRef"]["name"] == "aksdiag-secrets", name
    assert not _SECRET_VALUE.search(yaml.safe_dump_all(docs))
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert not _SECRET_VALUE.search(path.read_text()), path


@pytest.mark.parametrize("mode", BOT_OVERLAYS)
def test_the_guide_creates_the_secret_each_mode_references(mode: str) -> None:
    keys = set()
    for d in render(f"overlays/{mode}"):
        for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            keys |= {
                e["valueFrom"]["secretKeyRef"]["key"]
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
    section = DOCS.split(f"(`deploy/k8s/overlays/{mode}`)", 1)[1].split("```", 2)[1]
    assert "kubectl -n aksdiag create secret generic aksdiag-secrets" in section
    assert set(re.findall(r"--from-literal=([A-Z_]+)=", section)) == keys


def test_the_guide_matches_the_service_account_namespace_and_paths() -> None:
    sa = one(render("overlays/socket-mode"), "ServiceAccount")
    subject = f"system:serviceaccount:{sa['metadata']['namespace']}:{sa['metadata']['name']}"
    assert f"--subject {subject}" in DOCS
    for path in set(re.findall(r"apply -k (deploy/\S+)", DOCS)):
        assert (ROOT / path / "kustomization.yaml").exists(), path
    for mode in BOT_OVERLAYS:
        assert f"deploy/k8s/overlays/{mode}" in DOCS, mode
    assert "kubectl apply -k deploy/k8s/overlays/socket-mode" in DOCS
    for path in re.findall(r"`(deploy/[\w./-]+\.(?:yaml|json))`", DOCS):
        assert (ROOT / path).exists(), path


# --- RBAC in the target clusters --------------------------------------------------------------


Rules = dict[tuple[str, str | None], set[tuple[str, str, str]]]  # (kind, namespace) -> rules


def expected_rules(table: tuple[ApiResource, ...]) -> Rules:
    """What the collectors read, as RBAC: get/list per resource by API group; resources read
    in one namespace only get a Role there; plus the SubjectAccessReview create."""
    out: Rules = {("ClusterRole", None): {SAR}}
    for r in table:
        key = ("Role", r.namespace) if r.namespace else ("ClusterRole", None)
        out.setdefault(key, set()).update((r.group, r.resource, v) for v in READ_VERBS)
    return out


def granted_rules(docs: tuple[dict[str, Any], ...]) -> Rules:
    out: Rules = {}
    for d in docs:
        if d["kind"] not in ("ClusterRole", "Role"):
            continue
        key = (d["kind"], d["metadata"].get("namespace"))
        for rule in d.get("rules", []):
            assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
            assert "*" not in str(rule), f"wildcard in {d['metadata']['name']}: {rule}"
            out.setdefault(key, set()).update(
                (g, r, v)
                for g in rule["apiGroups"]
                for r in rule["resources"]
                for v in rule["verbs"]
            )
    return out


@pytest.mark.parametrize("tree", ["target-cluster", "target-cluster/in-cluster"])
def test_reader_rbac_is_exactly_what_the_collectors_read(tree: str) -> None:
    assert granted_rules(render(tree)) == expected_rules(tuple(K8S_RESOURCES.values()))


def test_a_resource_added_to_the_table_alone_is_caught() -> None:
    added = ApiResource("secrets", "", "v1", "Secret", True)
    granted = granted_rules(render("target-cluster"))
    assert granted != expected_rules((*K8S_RESOURCES.values(), added))
    assert ("", "secrets", "get") not in set().union(*granted.values())


@pytest.mark.parametrize("tree", ["target-cluster", "target-cluster/in-cluster"])
def test_reader_bindings_bind_the_reader_roles_to_one_subject(tree: str) -> None:
    docs = render(tree)
    bindings = [d for d in docs if d["kind"].endswith("Binding")]
    roles = {
        (d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))
        for d in docs
        if d["kind"] in ("ClusterRole", "Role")
    }
    bound = {
        (b["roleRef"]["kind"], b["roleRef"]["name"], b["metadata"].get("namespace"))
        for b in bindings
    }
    assert bound == roles
    for b in bindings:
        (subject,) = b["subjects"]
        if tree.endswith("in-cluster"):
            assert subject == {"kind": "ServiceAccount", "name": "aksdiag", "namespace": "aksdiag"}
        else:
            assert subject["kind"] in ("User", "Group")


def test_no_tree_lets_the_bot_create_or_change_anything() -> None:
    """aksdiag only reads: no rule anywhere grants a verb that writes (SubjectAccessReviews,
    which only ask a question, aside)."""
    for tree in [f"overlays/{m}" for m in BOT_OVERLAYS] + list(TARGET_TREES):
        for rules in granted_rules(render(tree)).values():
            writes = {r for r in rules if r[2] not in READ_VERBS and r != SAR}
            assert not writes, f"{tree} grants {sorted(writes)}"


@pytest.mark.parametrize("mode", BOT_OVERLAYS)
def test_the_bot_gets_no_rbac_in_its_own_cluster(mode: str) -> None:
    kinds = {d["kind"] for d in render(f"overlays/{mode}")}
    assert not kinds & {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
