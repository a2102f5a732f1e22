"""Which ClusterSource serves a cluster: a snapshot folder, or the live collectors."""

from __future__ import annotations

from diagnostics.collectors.snapshot_dir import SnapshotSource
from diagnostics.runner import ClusterSource

from bot.config import ClusterConfig, Config


class SourceError(Exception):
    """The cluster cannot be read the way it is configured; the message says why."""


def source_for(alias: str, cluster: ClusterConfig, config: Config | None = None) -> ClusterSource:
    if cluster.snapshot:
        folder = config.resolve(cluster.snapshot) if config else cluster.snapshot
        return SnapshotSource(folder, label=alias)
    raise SourceError(
        f"cluster {alias!r} is configured for live access, which this build cannot read yet"
    )
