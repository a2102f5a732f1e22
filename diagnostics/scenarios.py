"""Scenarios, their aliases and arguments: one parser for the CLI, Slack and buttons.

Every value a user types is validated against Kubernetes / Azure naming rules here, before
anything runs, and every error says what was wrong and what would be right.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from diagnostics.checks.base import ScenarioArgs


class UsageError(ValueError):
    """Bad input from a user: the message is shown to them as it is."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    aliases: tuple[str, ...]
    usage: str
    help: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "apiserver",
            ("api", "api-server", "apiserver-access", "kubectl"),
            "apiserver CLUSTER [--from IP[,IP...]]",
            "Why a client cannot reach the API server: cluster state, authorized IP ranges, "
            "private cluster and DNS, an active probe.",
        ),
        Scenario(
            "pod-ip",
            ("podip", "ipam", "ip", "pod-ips", "ips"),
            "pod-ip CLUSTER [--node NODE]",
            "Why pods cannot get an IP address: allocation failures, leaked IPs, exhausted nodes, "
            "terminated-pod backlog, subnet capacity.",
        ),
        Scenario(
            "service",
            ("svc", "services", "endpoints"),
            "service CLUSTER NAMESPACE/SERVICE",
            "Why a service is not reachable from pods: selector, endpoints, ports, kube-proxy, "
            "network policies, CNI errors.",
        ),
        Scenario(
            "node-api",
            ("nodeapi", "nodes", "node", "pods-to-api", "in-cluster"),
            "node-api CLUSTER [--as NAMESPACE/SERVICEACCOUNT] [--since 1h]",
            "Why nodes and pods cannot reach the API server: the kubernetes service, the tunnel, "
            "egress policies, authorized ranges, firewall, DNS, RBAC, the API server's 403s and "
            "429s (audit log).",
        ),
        Scenario(
            "health",
            ("all", "check", "digest-check", "everything"),
            "health CLUSTER [--since 1h]",
            "Every passive check at once (what digests run).",
        ),
    )
}

_ALIASES = {alias: s.name for s in SCENARIOS.values() for alias in (s.name, *s.aliases)}

# Naming rules (Kubernetes: DNS-1123 label/subdomain; Azure: AKS cluster names).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CLUSTER = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
MAX_FROM = 20


def suggest(word: str, choices: Sequence[str]) -> str:
    """' Did you mean `x`?' or ''."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""


def resolve_scenario(word: str) -> Scenario:
    name = _ALIASES.get(word.strip().lower())
    if name is None:
        valid = ", ".join(f"`{n}`" for n in SCENARIOS)
        shown = _printable(word)
        raise UsageError(
            f"unknown scenario `{shown}`.{suggest(word, list(_ALIASES))} Valid scenarios: {valid}."
        )
    return SCENARIOS[name]


def _printable(text: str, limit: int = 40) -> str:
    clean = "".join(ch if ch.isprintable() and ch not in "`*_~<>&" else "?" for ch in text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def validate_cluster_name(name: str) -> str:
    if not _CLUSTER.fullmatch(name or ""):
        raise UsageError(
            f"`{_printable(name)}` is not a valid cluster name: use 1-63 letters, digits, "
            "`-`, `_` or `.`, starting and ending with a letter or digit."
        )
    return name


def _check_name(kind: str, value: str, rule: re.Pattern[str], limit: int) -> str:
    if not value or len(value) > limit or not rule.fullmatch(value):
        raise UsageError(
            f"`{_printable(value)}` is not a valid {kind}: Kubernetes names are lowercase "
            f"letters, digits and `-` (at most {limit} characters)."
        )
    return value


def parse_qualified(value: str, what: str) -> tuple[str, str]:
    """NAMESPACE/NAME for services and service accounts."""
    if value.count("/") != 1:
        raise UsageError(f"expected {what} as NAMESPACE/NAME, got `{_printable(value)}`.")
    ns, name = value.split("/")
    _check_name("namespace", ns, _DNS_LABEL, 63)
    if what == "service":
        _check_name("service name", name, _DNS_LABEL, 63)
    else:
        _check_name("service account name", name, _DNS_SUBDOMAIN, 253)
    return ns, name


def parse_ips(value: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if "%" in part:  # an IPv6 zone id (`fe80::1%eth0`) names an interface, not a source
            raise UsageError(
                f"`{_printable(part[:60])}` has an IPv6 zone id (`%…`); give the address alone."
            )
        try:
            net = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise UsageError(
                f"`{_printable(part)}` is not an IP address or CIDR (for example 198.51.100.7)."
            ) from None
        out.append(str(net.network_address) if net.num_addresses == 1 else str(net))
    if not out:
        raise UsageError(
            "`--from` needs at least one IP address, for example `--from 198.51.100.7`."
        )
    if len(out) > MAX_FROM:
        raise UsageError(f"`--from` takes at most {MAX_FROM} addresses.")
    return tuple(dict.fromkeys(out))


def _normalise_flag(token: str) -> str:
    # Slack and phones turn `--` into an em or en dash.
    for dash in ("—", "–"):
        if token.startswith(dash):
            token = "--" + token[len(dash) :]
    return token


_FLAGS = {"--from": "apiserver", "--node": "pod-ip", "--as": "node-api", "--since": "node-api"}
_HEALTH_FLAGS = {"--since"}  # also taken by health, which runs the node-api log checks
_DURATION = re.compile(r"^(\d{1,5})([smhd])$")
MAX_SINCE = 7 * 86400


def parse_duration(value: str) -> int:
    """`--since`: 30m, 2h, 1d (at most 7d) -> seconds."""
    m = _DURATION.fullmatch(value.strip().lower())
    seconds = int(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]] if m else 0
    if not 60 <= seconds <= MAX_SINCE:
        raise UsageError(
            f"`--since` takes a duration from 1m to 7d such as `30m`, `2h` or `1d`, not "
            f"`{_printable(value)}`."
        )
    return seconds


def parse_args(scenario: str, tokens: Sequence[str]) -> ScenarioArgs:
    """Scenario arguments after the cluster, in any order: `--from`, `--node`, `--as`, and the
    `NAMESPACE/SERVICE` positional of `service`. `--flag=value` works too."""
    from_ips: tuple[str, ...] = ()
    node: str | None = None
    service: tuple[str, str] | None = None
    as_account: tuple[str, str] | None = None
    since: int | None = None
    items = [_normalise_flag(t) for t in tokens]
    i = 0
    while i < len(items):
        token = items[i]
        if token.startswith("--"):
            flag, _, inline = token.partition("=")
            if flag not in _FLAGS:
                valid = ", ".join(f"`{f}`" for f in _FLAGS)
                raise UsageError(
                    f"unknown option `{_printable(flag)}`.{suggest(flag, list(_FLAGS))} "
                    f"Options: {valid}."
                )
            in_health = scenario == "health" and flag in _HEALTH_FLAGS
            if (_FLAGS[flag] != scenario or scenario == "health") and not in_health:
                raise UsageError(
                    f"`{flag}` belongs to the `{_FLAGS[flag]}` scenario, not `{scenario}`."
                )
            if inline:
                value = inline
            elif i + 1 < len(items) and not items[i + 1].startswith("--"):
                i += 1
                value = items[i]
            else:
                raise UsageError(f"`{flag}` needs a value.")
            if flag == "--from":
                from_ips = parse_ips(value)
            elif flag == "--node":
                node = _check_name("node name", value, _DNS_SUBDOMAIN, 253)
            elif flag == "--since":
                since = parse_duration(value)
            else:
                as_account = parse_qualified(value, "service account")
        elif scenario == "service" and service is None:
            service = parse_qualified(token, "service")
        else:
            raise UsageError(
                f"unexpected `{_printable(token)}`. Usage: `{SCENARIOS[scenario].usage}`."
            )
        i += 1
    if scenario == "service" and service is None:
        raise UsageError(
            "which service? Usage: `service CLUSTER NAMESPACE/SERVICE`, "
            "for example `service prod default/web`."
        )
    return ScenarioArgs(
        from_ips=from_ips, node=node, service=service, as_account=as_account, since=since
    )
