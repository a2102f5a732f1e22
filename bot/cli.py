"""`aksdiag`: the command line. Subcommands: run, scenarios, capture, serve, digest.

Exit status: 0 the command ran (whatever it found); 1 a finding reached `--fail-on`;
2 bad usage; 3 a source or configuration could not be read.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from rich.console import Console

from bot.config import Config, ConfigError, load_config
from bot.render import render_text, report_payload
from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.snapshot_dir import SnapshotError, SnapshotSource
from diagnostics.diagnosis import missing_subject
from diagnostics.model import Report, Severity
from diagnostics.runner import ClusterSource, run
from diagnostics.scenarios import SCENARIOS, UsageError, parse_args, resolve_scenario

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_SOURCE = 0, 1, 2, 3
log = logging.getLogger("aksdiag")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"aksdiag: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="configuration file (default: $AKSDIAG_CONFIG)")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="every step, all evidence and fingerprints; progress on stderr",
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = _Parser(
        prog="aksdiag",
        description="Diagnose Azure Kubernetes Service networking, from a terminal or Slack.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="run a scenario on a cluster and print the report")
    r.add_argument("scenario", help="apiserver, pod-ip, service, node-api or health (aliases work)")
    r.add_argument(
        "cluster", help="a configured cluster alias, or a label with --snapshot/--kubeconfig"
    )
    r.add_argument("target", nargs="?", help="NAMESPACE/SERVICE for the service scenario")
    r.add_argument(
        "--snapshot", metavar="DIR", help="read a snapshot folder instead of a live cluster"
    )
    r.add_argument("--kubeconfig", metavar="FILE", help="read Kubernetes live with this kubeconfig")
    r.add_argument("--context", metavar="NAME", help="kubeconfig context (with --kubeconfig)")
    r.add_argument("--format", choices=("text", "json", "blocks"), default="text")
    r.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        choices=[s.value for s in Severity],
        help="exit 1 when a finding is this severe or worse (critical, warning, info, ok)",
    )
    r.add_argument(
        "--from", dest="from_ips", metavar="IP[,IP...]", help="apiserver: client IPs to check"
    )
    r.add_argument("--node", metavar="NODE", help="pod-ip: look at one node")
    r.add_argument(
        "--as",
        dest="as_account",
        metavar="NAMESPACE/SA",
        help="node-api: the service account to check RBAC for",
    )
    r.add_argument(
        "--since", metavar="DURATION", help="node-api, health: audit log window (default 1h)"
    )
    _common(r)

    s = sub.add_parser("scenarios", help="list scenarios with one-line help")
    _common(s)

    c = sub.add_parser("capture", help="write a cluster's snapshot folder (secrets redacted)")
    c.add_argument("cluster")
    c.add_argument("dir")
    c.add_argument("--kubeconfig", metavar="FILE")
    c.add_argument("--context", metavar="NAME")
    c.add_argument("--since", metavar="DURATION", help="audit log window to capture (default 1h)")
    _common(c)

    v = sub.add_parser(
        "serve", help="run the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP)"
    )
    v.add_argument("--port", type=int, default=3000)
    v.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container listens on all
    _common(v)

    d = sub.add_parser("digest", help="post a configured digest now, or --print it here")
    d.add_argument("name")
    d.add_argument("--print", dest="print_only", action="store_true", help="render in the terminal")
    _common(d)
    return parser, dict(sub.choices)


def _scenario_tokens(ns: argparse.Namespace) -> list[str]:
    tokens: list[str] = []
    if ns.target:
        tokens.append(ns.target)
    for flag, value in (
        ("--from", ns.from_ips),
        ("--node", ns.node),
        ("--as", ns.as_account),
        ("--since", ns.since),
    ):
        if value is not None:
            tokens += [flag, value]
    return tokens


def _source(ns: argparse.Namespace, config: Config | None) -> tuple[ClusterSource, tuple[str, ...]]:
    if ns.snapshot:
        return SnapshotSource(ns.snapshot, label=ns.cluster), ()
    if ns.kubeconfig:
        from bot.sources import kubeconfig_source

        return kubeconfig_source(ns.cluster, ns.kubeconfig, ns.context), ()
    if config is None:
        config = load_config(ns.config)
    cluster = config.cluster(ns.cluster)
    if cluster is None:
        known = ", ".join(sorted(config.clusters)) or "none"
        from diagnostics.scenarios import suggest

        raise UsageError(
            f"unknown cluster `{ns.cluster}` in {config.path}.{suggest(ns.cluster, list(config.clusters))}"
            f" Configured clusters: {known}. Or pass --snapshot DIR / --kubeconfig FILE."
        )
    from bot.sources import source_for

    return source_for(ns.cluster, cluster, config), tuple(cluster.operator_networks)


def cmd_run(ns: argparse.Namespace) -> int:
    scenario = resolve_scenario(ns.scenario).name
    args: ScenarioArgs = parse_args(scenario, _scenario_tokens(ns))
    if ns.context and not ns.kubeconfig:
        raise UsageError("--context goes with --kubeconfig")
    config = load_config(ns.config) if ns.config else None
    source, networks = _source(ns, config)
    if ns.snapshot and config is not None and (cc := config.cluster(ns.cluster)):
        networks = tuple(cc.operator_networks)
    log.info("running %s on %s", scenario, source.label)
    report = run(scenario, source, args, operator_networks=networks)
    missing = missing_subject(report)
    if missing is not None and ns.format != "json":  # a usage error, not a finding to show
        hints = "; ".join(
            e for e in missing.evidence if e.startswith(("did you mean", "a service"))
        )
        sys.stderr.write(
            f"aksdiag: error: {missing.title}" + (f" ({hints})" if hints else "") + "\n"
        )
        return EXIT_USAGE
    _emit(report, ns.format, verbose=ns.verbose)
    if ns.fail_on and report.findings:
        threshold = Severity(ns.fail_on)
        if any(f.severity.at_least(threshold) for f in report.findings):
            return EXIT_FINDINGS
    return EXIT_OK


def _emit(report: Report, fmt: str, *, verbose: bool = False) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "blocks":
        payload = report_payload(report)
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        render_text(report, Console(soft_wrap=False), verbose=verbose)


def cmd_scenarios(ns: argparse.Namespace) -> int:
    console = Console()
    for s in SCENARIOS.values():
        console.print(f"[bold]{s.name:10}[/bold] {s.help}")
        console.print(
            f"           usage: aksdiag run {s.usage}   aliases: {', '.join(s.aliases)}",
            style="dim",
        )
    return EXIT_OK


def cmd_capture(ns: argparse.Namespace) -> int:
    from bot.capture import capture_command

    return int(capture_command(ns))


def cmd_serve(ns: argparse.Namespace) -> int:
    from bot.serve import serve_command

    return int(serve_command(ns))


def cmd_digest(ns: argparse.Namespace) -> int:
    from bot.digest import digest_command

    return int(digest_command(ns))


COMMANDS = {
    "run": cmd_run,
    "scenarios": cmd_scenarios,
    "capture": cmd_capture,
    "serve": cmd_serve,
    "digest": cmd_digest,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((i for i, a in enumerate(argv) if a in commands), None)
    if first:  # options may come before the subcommand too
        argv.insert(0, argv.pop(first))
    if not argv or argv[0] not in commands:
        if argv and argv[0] in ("-h", "--help"):
            parser.print_help()
            return EXIT_OK
        parser.print_help(sys.stderr)
        if argv:
            from diagnostics.scenarios import suggest

            sys.stderr.write(
                f"\naksdiag: unknown command {argv[0]!r}.{suggest(argv[0], list(commands))}\n".replace(
                    "`", "'"
                )
            )
        return EXIT_USAGE
    # Each subcommand parses its own options in any order among its positionals.
    ns = commands[argv[0]].parse_intermixed_args(argv[1:])
    ns.command = argv[0]
    logging.basicConfig(
        level=logging.INFO if getattr(ns, "verbose", False) else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[ns.command](ns)
    except UsageError as exc:
        sys.stderr.write(f"aksdiag: {exc}\n".replace("`", ""))
        return EXIT_USAGE
    except (SnapshotError, ConfigError) as exc:
        sys.stderr.write(f"aksdiag: {exc}\n")
        return EXIT_SOURCE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
