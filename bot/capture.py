"""`aksdiag capture CLUSTER DIR [--kubeconfig F --context C] [--config F]`: write a snapshot
folder of a live cluster (no Secret objects, token-like values redacted), with progress on
stderr. Exit status: 0 written, 2 bad usage, 3 nothing could be read or written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.config import ConfigError, load_config
from bot.sources import kubeconfig_source, source_for
from diagnostics.collectors.capture import CaptureError, capture
from diagnostics.collectors.live import LiveSource
from diagnostics.scenarios import UsageError, parse_duration

EXIT_OK, EXIT_USAGE, EXIT_SOURCE = 0, 2, 3


def _say(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def _source(ns: argparse.Namespace) -> LiveSource | str:
    """The live source to capture, or a usage error message."""
    if ns.context and not ns.kubeconfig:
        return "--context goes with --kubeconfig"
    if ns.kubeconfig:
        return kubeconfig_source(ns.cluster, ns.kubeconfig, ns.context)
    config = load_config(ns.config)
    cluster = config.cluster(ns.cluster)
    if cluster is None:
        known = ", ".join(sorted(config.clusters)) or "none"
        return (
            f"unknown cluster {ns.cluster!r} in {config.path}. Configured clusters: {known}. "
            "Or pass --kubeconfig FILE."
        )
    source = source_for(ns.cluster, cluster, config)
    if not isinstance(source, LiveSource):
        return (
            f"cluster {ns.cluster!r} is configured as a snapshot folder already; nothing to capture"
        )
    return source


def capture_command(ns: argparse.Namespace) -> int:
    try:
        since = parse_duration(ns.since) if getattr(ns, "since", None) else None
    except UsageError as exc:
        _say(f"aksdiag: {exc}".replace("`", ""))
        return EXIT_USAGE
    try:
        source = _source(ns)
    except ConfigError as exc:
        _say(f"aksdiag: {exc}")
        return EXIT_SOURCE
    if isinstance(source, str):
        _say(f"aksdiag: {source}")
        return EXIT_USAGE
    _say(f"capturing {source.label} ({source.path}) into {ns.dir}")
    try:
        result = capture(source, Path(ns.dir), progress=_say, since=since)
    except (CaptureError, OSError) as exc:
        _say(f"aksdiag: {exc}")
        return EXIT_SOURCE
    finally:
        if ns.kubeconfig:  # configured sources are shared per process; leave them open
            source.close()
    files = [name for name in result.counts if name != "snapshot.json"]
    _say(
        f"wrote {len(files)} file(s) and snapshot.json to {result.folder} (captured {result.captured_at})"
    )
    for what, why in result.missing.items():
        _say(f"  not captured: {what}: {why}")
    for note in result.notes:
        _say(f"  note: {note}")
    return EXIT_OK if files else EXIT_SOURCE
