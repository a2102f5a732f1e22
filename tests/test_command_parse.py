"""Every command the bot can print parses in the real azure-cli and the real kubectl
(tools/check_commands.py). The full run needs the cached azure-cli virtualenv: it runs when that
exists or when AKSDIAG_COMMAND_CHECK=1 (then it is created, which takes minutes once); CI runs
`make check-commands`. Splitting commands into invocations is tested always."""

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
