"""deploy/ beyond Kubernetes: the Dockerfile (parsed: no Docker engine here to build it) and its
build context, the Slack app manifests against what the bot's code calls, the Azure roles."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk import WebClient

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCS = (ROOT / "docs" / "deploy.md").read_text()
BOT_CONTAINER = yaml.safe_load((DEPLOY / "k8s/base/deployment.yaml").read_text())["spec"][
    "template"
]
COMPILERS = ("gcc", "g++", "clang", "build-essential", "cc", "make", "musl-dev", "libc6-dev")


# --- the Dockerfile ---------------------------------------------------------------------------


def dockerfile_stages() -> list[dict[str, Any]]:
    """[{"base", "name", "steps": [(INSTRUCTION, arguments)]}]; global ARG defaults resolved."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "ARG" and not stages and "=" in rest:
            key, _, default = rest.partition("=")
            args[key] = default
        elif word == "FROM":
            base, _, name = rest.partition(" AS ")
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base.strip())
            stages.append({"base": base, "name": name.strip(), "steps": []})
        else:
            stages[-1]["steps"].append((word, rest))
    return stages


def steps(stage: dict[str, Any], word: str) -> list[str]:
    return [rest for w, rest in stage["steps"] if w == word]


def test_wheels_are_built_in_a_first_stage_and_the_final_stage_is_slim_python_311() -> None:
    build, *_, final = dockerfile_stages()
    assert any("pip wheel" in run for run in steps(build, "RUN"))
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?(@sha256:[0-9a-f]{64})?", final["base"])
    assert build["base"] == final["base"]  # the venv's interpreter path exists in both
    for copy in steps(final, "COPY"):
        assert copy.startswith(f"--from={build['name']} "), f"final stage copies {copy!r}"


def test_final_stage_has_no_compiler_and_installs_nothing() -> None:
    final = dockerfile_stages()[-1]
    for run in steps(final, "RUN"):
        words = set(re.split(r"[\s;&|]+", run))
        assert not words & set(COMPILERS), run
        assert not re.search(r"apt-get install|apk add|pip install|yum install", run), run


def test_final_stage_runs_as_the_fixed_non_root_uid_the_pods_require() -> None:
    (user,) = steps(dockerfile_stages()[-1], "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit()), user
    pod_sc = BOT_CONTAINER["spec"]["securityContext"]
    assert int(uid) == pod_sc["runAsUser"] and (not gid or int(gid) == pod_sc["runAsGroup"])


def test_entrypoint_is_the_cli_serving_on_the_port_and_config_the_pods_use() -> None:
    final = dockerfile_stages()[-1]
    assert json.loads(steps(final, "ENTRYPOINT")[-1]) == ["aksdiag"]
    assert json.loads(steps(final, "CMD")[-1]) == ["serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "aksdiag" in scripts
    (container,) = BOT_CONTAINER["spec"]["containers"]
    assert steps(final, "EXPOSE") == [str(container["ports"][0]["containerPort"])]
    env = " ".join(steps(final, "ENV"))
    config = next(e["value"] for e in container["env"] if e["name"] == "AKSDIAG_CONFIG")
    assert f"AKSDIAG_CONFIG={config}" in env
    assert "HOME=/tmp" in env  # the only writable place under readOnlyRootFilesystem


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            ch = pattern[i]
            out += {"*": "[^/]*", "?": "[^/]"}.get(ch, re.escape(ch))
            i += 1
    return re.compile(out)


def dockerignored(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()]
    parts, ignored = path.split("/"), False
    for raw in (p for p in patterns if p and not p.startswith("#")):
        negate = raw.startswith("!")
        regex = _glob_regex(raw.lstrip("!").strip("/"))
        if any(regex.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def test_build_context_holds_what_the_build_copies_and_nothing_else() -> None:
    build = dockerfile_stages()[0]
    sources = [s for copy in steps(build, "COPY") for s in copy.split()[:-1]]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    assert set(packages) | {"pyproject.toml", project["project"]["readme"]} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists() and not dockerignored(source), source
    assert not dockerignored("bot/cli.py") and not dockerignored("diagnostics/checks/base.py")
    for stray in (
        ".venv/bin/python",
        ".git/config",
        ".env",
        "tests/test_deploy.py",
        "examples/broken-service/cluster.json",
        "bot/__pycache__/cli.cpython-311.pyc",
    ):
        assert dockerignored(stray), stray


# --- the Slack app manifests ------------------------------------------------------------------


def manifest(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "slack" / name).read_text())


# Bot scopes per Web API method and per event; a method missing here fails the test below, on
# purpose: add the scope it needs to both manifests and to this table.
SCOPES_BY_METHOD: dict[str, set[str]] = {
    "auth.test": set(),
    "api.test": set(),
    "apps.connections.open": set(),
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.delete": {"chat:write"},
    "files.upload": {"files:write"},
    "files.upload.v2": {"files:write"},
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
    "usergroups.list": {"usergroups:read"},
    "usergroups.users.list": {"usergroups:read"},
    "conversations.info": {"channels:read", "groups:read"},
    "users.info": {"users:read"},
    "reactions.add": {"reactions:write"},
    "views.open": set(),
    "views.publish": set(),
}
SCOPES_BY_EVENT = {"app_mention": {"app_mentions:read"}}
_WEB_METHODS = {n for n in dir(WebClient) if "_" in n and not n.startswith("_")} - {"api_call"}


def slack_calls_in_code() -> tuple[set[str], set[str]]:
    """(Web API methods, Bolt events) named anywhere in bot/ and handlers/."""
    methods: set[str] = set()
    events: set[str] = set()
    for path in [*ROOT.glob("bot/**/*.py"), *ROOT.glob("handlers/**/*.py")]:
        src = path.read_text()
        methods |= {m.replace("_", ".") for m in re.findall(r"\.(\w+)\(", src) if m in _WEB_METHODS}
        methods |= {
            m
            for m in re.findall(r"[\"']([a-z]+(?:\.[A-Za-z0-9]+)+)[\"']", src)
            if m.replace(".", "_") in _WEB_METHODS
        }
        events |= set(re.findall(r"\.event\(\s*[\"']([a-z_.]+)[\"']", src))
    return methods, events


def test_the_scopes_are_exactly_what_the_bots_code_uses() -> None:
    methods, events = slack_calls_in_code()
    assert {"chat.postMessage", "usergroups.users.list"} <= methods  # the scan finds calls
    unknown = methods - set(SCOPES_BY_METHOD)
    assert not unknown, f"add the scopes of {sorted(unknown)} to SCOPES_BY_METHOD and manifests"
    needed = {"commands"}.union(*(SCOPES_BY_METHOD[m] for m in methods))
    needed = needed.union(*(SCOPES_BY_EVENT[e] for e in events))
    for name in ("manifest.yaml", "manifest-http.yaml"):
        m = manifest(name)
        assert set(m["oauth_config"]["scopes"]["bot"]) == needed, name
        assert set(m["settings"]["event_subscriptions"]["bot_events"]) == events, name


def test_the_manifest_names_aksdiag_with_a_usage_hint_and_matches_the_bot() -> None:
    from bot.deps import Settings

    for name in ("manifest.yaml", "manifest-http.yaml"):
        m = manifest(name)
        (command,) = m["features"]["slash_commands"]
        assert command["command"] == "/aksdiag" == Settings().command
        assert command["usage_hint"] and command["description"]
        assert m["settings"]["interactivity"]["is_enabled"] is True  # Re-run / Show commands
        assert m["features"]["bot_user"]["display_name"]


def test_socket_mode_manifest_has_no_urls_and_http_manifest_points_at_the_ingress() -> None:
    socket, http = manifest("manifest.yaml"), manifest("manifest-http.yaml")
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "url" not in socket["features"]["slash_commands"][0]
    assert "request_url" not in str(socket["settings"])
    ingress = yaml.safe_load((DEPLOY / "k8s/overlays/http-mode/ingress.yaml").read_text())
    (rule,) = ingress["spec"]["rules"]
    events_url = f"https://{rule['host']}{rule['http']['paths'][0]['path']}"
    assert http["settings"]["socket_mode_enabled"] is False
    assert http["features"]["slash_commands"][0]["url"] == events_url
    assert http["settings"]["event_subscriptions"]["request_url"] == events_url
    assert http["settings"]["interactivity"]["request_url"] == events_url


# --- the Azure roles --------------------------------------------------------------------------

# The Azure permission behind each ARM SDK call the collectors make. A call missing here fails
# the test below, on purpose: grant it in a role under deploy/azure, document it, add it here.
ACTIONS_BY_CALL: dict[str, set[str]] = {
    "managed_clusters.get": {"Microsoft.ContainerService/managedClusters/read"},
    "managed_clusters.list_kubernetes_versions": {
        "Microsoft.ContainerService/locations/kubernetesVersions/read"
    },
    "public_ip_addresses.get": {"Microsoft.Network/publicIPAddresses/read"},
    "public_ip_prefixes.get": {"Microsoft.Network/publicIPPrefixes/read"},
    "subnets.get": {"Microsoft.Network/virtualNetworks/subnets/read"},
    "nat_gateways.get": {"Microsoft.Network/natGateways/read"},
    "load_balancers.list_all": {"Microsoft.Network/loadBalancers/read"},
    # Control-plane logs: where they go, and the audit tables queried through the cluster
    # (resource-context: microsoft.insights/logs/<table>/read on the resource).
    "diagnostic_settings.list": {"Microsoft.Insights/diagnosticSettings/read"},
    "logs.query_resource": {
        f"Microsoft.Insights/logs/{t}/read"
        for t in ("AKSAudit", "AKSAuditAdmin", "AzureDiagnostics")
    },
    # The Azure network path (diagnostics/collectors/armnet.py).
    "virtual_networks.get": {"Microsoft.Network/virtualNetworks/read"},
    "virtual_networks.list": {"Microsoft.Network/virtualNetworks/read"},
    "network_security_groups.get": {"Microsoft.Network/networkSecurityGroups/read"},
    "network_security_groups.list": {"Microsoft.Network/networkSecurityGroups/read"},
    "route_tables.get": {"Microsoft.Network/routeTables/read"},
    "azure_firewalls.list_all": {"Microsoft.Network/azureFirewalls/read"},
    "firewall_policies.get": {"Microsoft.Network/firewallPolicies/read"},
    "firewall_policies.list_all": {"Microsoft.Network/firewallPolicies/read"},
    "firewall_policy_rule_collection_groups.list": {
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups/read"
    },
    "private_zones.get": {"Microsoft.Network/privateDnsZones/read"},
    "private_zones.list_by_resource_group": {"Microsoft.Network/privateDnsZones/read"},
    "virtual_network_links.list": {"Microsoft.Network/privateDnsZones/virtualNetworkLinks/read"},
    "record_sets.list_by_type": {"Microsoft.Network/privateDnsZones/A/read"},
    "managed_clusters.list_outbound_network_dependencies_endpoints": {
        "Microsoft.ContainerService/managedClusters/outboundNetworkDependenciesEndpoints/read"
    },
    # Entra clusters only: the built-in Azure Kubernetes Service Cluster User Role.
    "managed_clusters.list_cluster_user_credentials": {
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
    },
    # Opt-in per cluster: aksdiag-run-command-role.json (the poller reads commandResults).
    "managed_clusters.begin_run_command": {
        "Microsoft.ContainerService/managedClusters/runCommand/action",
        "Microsoft.ContainerService/managedClusters/commandResults/read",
    },
}


def arm_calls_in_code() -> set[str]:
    """`<operation group>.<operation>` of every Azure SDK call in diagnostics/ and bot/."""
    import inspect

    from azure.mgmt.containerservice import ContainerServiceClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.privatedns import PrivateDnsManagementClient

    groups = set()
    for client in (ContainerServiceClient, NetworkManagementClient, PrivateDnsManagementClient):
        src = inspect.getsource(client.__init__)
        groups |= set(re.findall(r"self\.(\w+) = \w+Operations\(", src))
    calls = set()
    for path in [*ROOT.glob("diagnostics/**/*.py"), *ROOT.glob("bot/**/*.py")]:
        for group, op in re.findall(r"\.(\w+)\.(\w+)\(", path.read_text()):
            if group in groups:
                calls.add(f"{group}.{op}")
        text = path.read_text()
        if ".query_resource(" in text:  # azure-monitor-query's LogsQueryClient
            calls.add("logs.query_resource")
        if ".rest.send_request(" in text and "Microsoft.Insights/diagnosticSettings" in text:
            calls.add("diagnostic_settings.list")
    return calls


def role(name: str) -> dict[str, Any]:
    return json.loads((DEPLOY / "azure" / name).read_text())


def test_azure_roles_grant_exactly_what_the_collectors_call() -> None:
    calls = arm_calls_in_code()
    assert {"managed_clusters.get", "public_ip_addresses.get"} <= calls  # the scan finds calls
    unknown = calls - set(ACTIONS_BY_CALL)
    assert not unknown, f"grant and document {sorted(unknown)}, then add them to ACTIONS_BY_CALL"
    needed = set().union(*(ACTIONS_BY_CALL[c] for c in calls))
    reader = set(role("aksdiag-reader-role.json")["Actions"])
    run_command = set(role("aksdiag-run-command-role.json")["Actions"])
    user_credential = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
    assert reader == {a for a in needed if a.endswith("/read")} - {
        "Microsoft.ContainerService/managedClusters/commandResults/read"
    }
    assert run_command >= ACTIONS_BY_CALL["managed_clusters.begin_run_command"]
    assert user_credential not in reader | run_command  # admin rights on non-Entra clusters
    assert "Azure Kubernetes Service Cluster User Role" in DOCS and user_credential in DOCS


@pytest.mark.parametrize("name", ["aksdiag-reader-role.json", "aksdiag-run-command-role.json"])
def test_azure_roles_read_only_but_the_opt_in_run_command(name: str) -> None:
    r = role(name)
    writes = {a for a in r["Actions"] if not a.endswith("/read")}
    if name == "aksdiag-reader-role.json":
        assert not writes
        assert f'--role "{r["Name"]}"' in DOCS  # the guide assigns it by this name
    else:
        assert writes == {"Microsoft.ContainerService/managedClusters/runCommand/action"}
    assert not r["DataActions"] and not any("*" in a for a in r["Actions"])
    assert r["IsCustom"] is True and r["AssignableScopes"]
    assert f"deploy/azure/{name}" in DOCS
