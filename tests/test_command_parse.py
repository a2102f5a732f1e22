"""Every command the bot can print parses in the real azure-cli and the real kubectl
(tools/check_commands.py). The full run needs the cached azure-cli virtualenv: it runs when that
exists or when AKSDIAG_COMMAND_CHECK=1 (then it is created, which takes minutes once); `make
check` sets it, so CI (.ci/run) always runs the full check. Splitting commands into invocations is tested always."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import check_commands as cc  # noqa: E402

VENV = cc.azcli_venv()
HAVE_AZCLI = (VENV / "bin" / "python").exists() or os.environ.get("AKSDIAG_COMMAND_CHECK") == "1"
needs_azcli = pytest.mark.skipif(
    not HAVE_AZCLI, reason=f"no azure-cli venv at {VENV}; AKSDIAG_COMMAND_CHECK=1 creates it"
)


def test_commands_split_into_az_and_kubectl_invocations():
    cmd = "nslookup api.example && kubectl get pods -n shop -o json | jq '.items | length'"
    (call,) = cc.calls(cmd, "x")
    assert call.tool == "kubectl" and call.argv == ("get", "pods", "-n", "shop", "-o", "json")
    heredoc = "kubectl apply -f - <<'EOF'\napiVersion: v1\nkind: ConfigMap\nEOF"
    (call,) = cc.calls(heredoc, "x")
    assert call.argv == ("apply", "-f", "-") and call.stdin == "apiVersion: v1\nkind: ConfigMap\n"
    quoted = (
        "az aks update -g rg -n c --api-server-authorized-ip-ranges 192.0.2.0/26,203.0.113.7/32"
    )
    (call,) = cc.calls(quoted, "x")
    assert call.argv[-1] == "20.192.2.0/26,20.203.113.7/32"  # documentation nets az refuses


@needs_azcli
def test_the_check_catches_what_the_clis_refuse():
    bad_az = cc.Call("az", ("aks", "update", "-g", "rg", "-n", "c", "--bogus"), None, "", "t")
    good_az = cc.Call("az", ("aks", "show", "--resource-group", "rg", "--name", "c"), None, "", "t")
    refused = cc.check_az(cc.ensure_azcli(VENV), [bad_az, good_az])
    assert [c for c, _ in refused] == [bad_az]
    assert "unrecognized arguments: --bogus" in refused[0][1]
    bad_k = cc.Call("kubectl", ("get", "pods", "--bogus"), None, "", "t")
    wrong = cc.Call("kubectl", ("get", "podz"), None, "", "t")
    good_k = cc.Call("kubectl", ("delete", "pod", "-n", "shop", "web"), None, "", "t")
    refused = cc.check_kubectl([bad_k, wrong, good_k], ROOT / "examples" / "healthy")
    assert [c for c, _ in refused] == [bad_k, wrong]


@needs_azcli
def test_every_printed_command_parses(capsys):
    status = cc.main([])
    out = capsys.readouterr().out
    assert status == 0, out


def test_a_command_substitution_is_checked_inside_and_out():
    cmd = (
        'az network route-table show --ids "$(az network vnet subnet show --ids /subscriptions/'
        "s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/n "
        '--query routeTable.id -o tsv)" -o table'
    )
    inner, outer = cc.calls(cmd, "x")
    assert inner.argv[:4] == ("network", "vnet", "subnet", "show")
    assert outer.argv[:3] == ("network", "route-table", "show")
    assert outer.argv[4].startswith("/subscriptions/")  # an id of the shape az checks


def test_every_step_that_needs_an_az_extension_says_which_to_add():
    """Extension commands cannot be parse-checked offline (the extension index is not on PyPI):
    the finding that prints one must tell the reader how to get the command."""
    from diagnostics.collectors.snapshot_dir import read_snapshot
    from diagnostics.runner import analyse

    seen = 0
    for folder in cc.example_folders():
        snap = read_snapshot(folder, folder.name)
        for scenario in ("apiserver", "pod-ip", "node-api", "health"):
            for f in analyse(scenario, snap).findings:
                text = " ".join([f.cause, *f.evidence, *(s.text for s in f.remediation)])
                for step in f.remediation:
                    for call in cc.calls(step.command or "", f.code):
                        if ext := cc.extension_for(call.argv):
                            seen += 1
                            assert f"az extension add --name {ext}" in text, (f.code, step)
    assert seen  # the examples do print firewall commands (hub-spoke-firewall, firewall-udr)
