"""Secrets (issue 8, item 3): tokens, keys and connection strings planted in a cluster — pod env
values, annotations, ConfigMaps, event messages — never reach a Slack payload, a log line of
`aksdiag serve` or of the CLI, a Redis value, or a snapshot written by `aksdiag capture`; and
settings errors never echo the secret they are about. Ids made of hex digits only (sandbox and
container ids in CNI events, sha256 digests) stay readable.

Every fake keeps its real format and says FAKE or EXAMPLE. Capture's own redaction of env, args,
last-applied and ConfigMap data is tested in `test_capture.py::test_capture_writes_no_secret_
and_redacts_planted_tokens`; log lines carrying the process's own tokens in
`test_bot_serve.py::test_json_logs_carry_the_request_id_and_never_a_secret`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml
from bot_harness import OPS, block_text, buttons
from builders import configmap, event
from emulators import KubeEmulator
from emulators.sample import NODE1, sample_objects
from slack_client import SIGNING_SECRET
from slack_emulator import SlackEmulator
from test_resilience_restart import ServeProcess

from bot.logs import JsonFormatter
from diagnostics.collectors.settings import LiveSettings, SettingsError
from diagnostics.redact import MASK, redact_text

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = "3f2a9c0d1e4b5a6978c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6"
DIGEST = "sha256:9b2d6a0c4e8f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d1e2f4a6b8c0d2e3f5a7b"
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJGQUtFLUVYQU1QTEUiLCJ0aWQiOiJGQUtFIn0"
    ".FAKEsignatureEXAMPLEabcdefghijklmnop"
)
ACCOUNT_KEY = "FAKEkeyEXAMPLE/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV+/=="
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEFAKEEXAMPLEkeyBODYabcdefghijklmnopqrstuvwxyz0123\n"
    "-----END RSA PRIVATE KEY-----"
)
# (where it is planted, the secret as written, the part that must never come out)
SECRETS = {
    "slack bot token": ("xoxb-1234567890-FAKE1234567-EXAMPLEbotTokenFAKE0000",) * 2,
    "slack app token": ("xapp-1-AFAKE00001-1234567890-EXAMPLEappTokenFAKE0000000000",) * 2,
    "aad jwt": (JWT, JWT.split(".")[1]),
    "storage connection string": (
        "DefaultEndpointsProtocol=https;AccountName=fakeexample;"
        f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net", ACCOUNT_KEY[:40],
    ),
    "sas url": (
        "https://fakeexample.blob.core.windows.net/logs?sv=2022-11-02&sp=rl&se=2030-01-01"
        "&sig=FAKEsasEXAMPLE%2Fabc123def456%3D", "FAKEsasEXAMPLE",
    ),
    "redis url": ("redis://:FAKEredisPasswordEXAMPLE@cache.example.internal:6380/0",
                  "FAKEredisPasswordEXAMPLE"),
    "pem private key": (PEM, "MIIEFAKEEXAMPLEkeyBODY"),
    "github token": ("ghp_FAKEexample0123456789abcdefghijklmnop",) * 2,
    "slack response url": ("https://hooks.slack.com/commands/T0FAKE000/1234567890/FAKEresponse"
                           "EXAMPLE0000", "FAKEresponseEXAMPLE"),
}  # fmt: skip
NEEDLES = [needle for _, needle in SECRETS.values()]
RERUN, COMMANDS = "aksdiag_rerun", "aksdiag_commands"


# ---------------------------------------------------------------- redaction by pattern
@pytest.mark.parametrize("kind", list(SECRETS))
def test_each_realistic_secret_format_is_masked_and_the_text_around_it_kept(kind):
    secret, needle = SECRETS[kind]
    text = f"upstream said: {secret} (retrying in 5s)"
    clean = redact_text(text)
    assert needle not in clean and MASK in clean
    assert clean.startswith("upstream said: ") and clean.endswith("(retrying in 5s)")


def test_hex_ids_stay_readable_and_base64_keys_do_not():
    cni = (f'failed to setup network for sandbox "{SANDBOX}": plugin type="azure-vnet" failed '
           f"(add): image {DIGEST}, commit 0123456789abcdef0123456789abcdef01234567")  # fmt: skip
    assert redact_text(cni) == cni
    assert redact_text(SANDBOX.upper()) == SANDBOX.upper()
    key = "FAKEkeyEXAMPLE0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ=="
    assert redact_text(f"key {key} end") == f"key {MASK} end"
    assert redact_text(f"key {ACCOUNT_KEY[:60]} end") == f"key {MASK} end"


def test_log_lines_mask_the_redis_password_however_it_is_written():
    env = {"REDIS_URL": "redis://:FAKE%2Fpw%2BEXAMPLE@cache:6380/0",
           "REDIS_PASSWORD": "FAKEbundledPASSWORDexample"}  # fmt: skip
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(env))
    log = logging.getLogger("test.secrets")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info(
            "auth with FAKE/pw+EXAMPLE failed; FAKE%2Fpw%2BEXAMPLE; FAKEbundledPASSWORDexample"
        )
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "FAKE/pw+EXAMPLE" not in out and "FAKE%2Fpw" not in out and "FAKEbundled" not in out


def test_live_settings_errors_do_not_echo_credentials_in_an_endpoint():
    with pytest.raises(SettingsError) as err:
        LiveSettings.from_env({"AKSDIAG_ARM_ENDPOINT": "http://admin:FAKEarmPassEXAMPLE@arm.local"})
    assert "AKSDIAG_ARM_ENDPOINT must be an https:// URL" in str(err.value)
    assert "FAKEarmPassEXAMPLE" not in str(err.value)


# ---------------------------------------------------------------- a cluster full of secrets
def planted_cluster() -> dict:
    objects = sample_objects()
    s = {kind: secret for kind, (secret, _) in SECRETS.items()}
    web = objects["pods"][0]
    web["metadata"]["annotations"] = {
        "example.com/deploy-notes": f"deployed with {s['github token']}",
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"token": s["aad jwt"]}),
    }
    web["spec"]["containers"][0]["env"] = [
        {"name": "SLACK_BOT_TOKEN", "value": s["slack bot token"]},  # by name
        {"name": "UPSTREAM", "value": s["sas url"]},  # by pattern only
        {"name": "CACHE", "value": s["redis url"]},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    objects["services"][0]["metadata"]["annotations"] = {"example.com/key": s["pem private key"]}
    objects["configmaps"].append(configmap("app-settings", {
        "storage": s["storage connection string"], "client_secret": s["slack app token"],
        "level": "info",
    }))  # fmt: skip
    pending = objects["events"][0]
    pending["message"] = (
        f'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network '
        f'for sandbox "{SANDBOX}": plugin type="azure-vnet" failed (add): Failed to allocate '
        f"address: no IP addresses available in range set: 10.244.1.1-10.244.1.254 "
        f"(diagnostics uploaded to {s['sas url']})"
    )  # fmt: skip
    objects["events"] += [
        event("FailedCreatePodSandBox",
              f'failed to setup network for sandbox "{SANDBOX}": plugin type="azure-vnet" failed '
              f"(add): netplugin failed: auth {s['aad jwt']} rejected by {s['redis url']}",
              name="web-0", namespace="shop", count=3, host=NODE1),
        event("Failed", f"Failed to pull image: authorization failed for {s['github token']}, "
              f"key {s['storage connection string']}", name="api-0", namespace="shop"),
    ]  # fmt: skip
    return objects


def deny_with_a_credential(k8s: KubeEmulator) -> None:
    """An API server error that quotes a credential (a webhook or a proxy can): the reason,
    "could not check X because Y", is shown in Slack, logged and written by capture."""
    k8s.fault("/apis/networking.k8s.io/v1/networkpolicies", 403, body={
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
        "code": 403, "message": f"denied by webhook: bearer {JWT} is not allowed; "
        f"see {SECRETS['sas url'][0]}"})  # fmt: skip


def _leaks(text: str) -> list[str]:
    return [n for n in NEEDLES if n in text]


def _redis_values(url: str) -> str:
    """Every value of every key, whatever its type."""
    client = redis.Redis.from_url(url)
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            out.append(client.get(key))
        elif kind == "list":
            out += client.lrange(key, 0, -1)
        elif kind == "hash":
            out += [*client.hgetall(key).keys(), *client.hgetall(key).values()]
        elif kind == "set":
            out += list(client.smembers(key))
        elif kind == "zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        out.append(key)
    client.close()
    return "\n".join(v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in out)


def test_planted_secrets_reach_no_slack_payload_log_line_or_cache_entry(tmp_path, tls, redis_url):
    slack = SlackEmulator().start()
    with KubeEmulator(certfile=str(tls.server_pem), **planted_cluster()) as k8s:
        deny_with_a_credential(k8s)
        kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        config = tmp_path / "aksdiag.yaml"
        config.write_text(yaml.safe_dump({"clusters": {"shop": {"kubernetes": {
            "kubeconfig": str(kubeconfig)}}}}))  # fmt: skip
        served = ServeProcess(config, slack, "--verbose", REDIS_URL=redis_url)
        try:
            asks = ["health shop", "service shop shop/web", "service shop shop/api",
                    "pod-ip shop", "node-api shop --as shop/web", "apiserver shop"]  # fmt: skip
            for text in asks:
                served.client.command(text, response_url=slack.response_url("r"))

            def finished() -> list[dict]:
                done = [m for m in slack.top_level(OPS) if RERUN in buttons(m)
                        and slack.replies(OPS, m["ts"])]  # fmt: skip
                # a service that does not exist is told to the requester only
                private = [r for r in slack.responses("r") if ":grey_question:" in r["text"]]
                return done if len(done) + len(private) == len(asks) else []

            parents = slack.wait_for(finished, 30)
            health = next(p for p in parents if "`health shop`" in block_text(p))
            served.client.action(COMMANDS, buttons(health)[COMMANDS], message_ts=health["ts"],
                                 response_url=slack.response_url("c"))  # fmt: skip
            served.client.command("history shop", response_url=slack.response_url("h"))
            slack.wait_for(lambda: slack.responses("h"))
            slack.wait_for(lambda: [m for m in slack.responses("c")
                                    if (m["text"] or "").startswith("commands for")])  # fmt: skip
        finally:
            assert served.stop() == 0
            slack.stop()
    payloads = "\n".join(json.dumps(c.params) for c in slack.calls)
    assert "podip.allocation-failed" in payloads and "service." in payloads  # findings were shown
    assert "denied by webhook" in payloads  # the reason was shown, its credential masked
    assert _leaks(payloads) == [], "a secret reached Slack"
    logs = "".join(served.lines)
    assert '"level": "debug"' in logs or '"level": "info"' in logs
    assert _leaks(logs) == [], "a secret reached a log line"
    cached = _redis_values(redis_url)
    assert "aksdiag:report:" in cached  # reports were cached
    assert _leaks(cached) == [], "a secret reached Redis"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "REDIS_", "AKSDIAG_", "AZURE_"))}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_cli_and_capture_write_no_secret_and_keep_hex_ids(tmp_path, tls):
    with KubeEmulator(certfile=str(tls.server_pem), **planted_cluster()) as k8s:
        deny_with_a_credential(k8s)
        kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig", ca_file=str(tls.ca_pem))
        ran = _cli("run", "health", "shop", "--kubeconfig", str(kubeconfig), "--format", "json",
                   "--verbose")  # fmt: skip
        captured = _cli("capture", "shop", str(tmp_path / "snap"), "--kubeconfig",
                        str(kubeconfig), "--verbose")  # fmt: skip
    assert ran.returncode in (0, 1) and json.loads(ran.stdout)["findings"]
    assert captured.returncode == 0, captured.stderr
    assert _leaks(ran.stdout + ran.stderr + captured.stdout + captured.stderr) == []
    written = "\n".join(p.read_text() for p in sorted((tmp_path / "snap").rglob("*.json")))
    assert _leaks(written) == [], "a secret reached the snapshot"
    assert SANDBOX in written, "a sandbox id is not a secret: it must stay readable"
    assert "denied by webhook" in written and "denied by webhook" in ran.stdout
    again = _cli("run", "pod-ip", "shop", "--snapshot", str(tmp_path / "snap"), "--format", "json")
    assert _leaks(again.stdout) == [] and "podip.allocation-failed" in again.stdout


# ---------------------------------------------------------------- settings errors
@pytest.mark.parametrize(
    "env, says, secret",
    [
        ({"REDIS_URL": "redis://:FAKEpass/EXAMPLE+key==@cache.example:6380/0"},
         "REDIS_URL is not a valid Redis URL", "FAKEpass"),
        ({"REDIS_URL": "redis//:FAKEredisEXAMPLE@cache.example:6380/0"},
         "REDIS_URL is not a valid Redis URL", "FAKEredisEXAMPLE"),
        ({"SLACK_BOT_TOKEN": "xoxb-9999999999-FAKE9999999-EXAMPLEwrongToken000000"},
         "Slack rejected SLACK_BOT_TOKEN (not_authed)", "EXAMPLEwrongToken"),
        ({"SLACK_APP_TOKEN": "xapp-1-AFAKE9-9999999999-EXAMPLEwrongAppToken00000000"},
         "Slack rejected SLACK_APP_TOKEN (not_authed)", "EXAMPLEwrongAppToken"),
    ],
    ids=["redis-url-bad-password", "redis-url-bad-scheme", "bot-token", "app-token"],
)  # fmt: skip
def test_serve_settings_errors_name_the_variable_never_the_secret(tmp_path, env, says, secret):
    config = tmp_path / "aksdiag.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"prod": {"snapshot": "prod"}}}))
    slack = SlackEmulator().start()
    try:
        done = _cli("serve", "--config", str(config), "--port", "0", env={
            "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url, **env,
        })  # fmt: skip
    finally:
        slack.stop()
    assert done.returncode == 3, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert secret not in done.stdout + done.stderr
