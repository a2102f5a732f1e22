"""Private clusters: Kubernetes lists read through the ARM `runCommand` API on the managed
cluster (what `az aks command invoke` uses), for when aksdiag cannot reach the API server.

Each run command starts a pod in the cluster and takes seconds to tens of seconds, so every
list a scenario needs goes into ONE command: `kubectl get R -A -o json` per resource, each
section introduced by a marker line. The result's `logs` hold what kubectl printed; each
section is either a kubectl `List` or kubectl's error text, which becomes a clear reason
(forbidden, not installed).

Run command output is bounded by what ARM returns in `logs`; very large clusters are better
read with direct API access.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Callable
from typing import Any

import ijson

from diagnostics.collectors.arm import ArmClient
from diagnostics.collectors.k8s import ListRequest, ReadError

MARKER = "=== aksdiag "


def script(requests: list[ListRequest]) -> str:
    """One shell line listing every request, each output after its marker."""
    parts = []
    for req in requests:
        api = req.api
        scope = f"-n {shlex.quote(api.namespace)}" if api.namespace else "-A"
        selector = (
            f" --field-selector {shlex.quote(req.field_selector)}" if req.field_selector else ""
        )
        parts.append(f"echo {shlex.quote(MARKER + req.key)}")
        parts.append(f"kubectl get {api.name} {scope}{selector} -o json 2>&1")
    return "; ".join(parts)


def _section_error(req: ListRequest, text: str) -> ReadError:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")[:400]
    low = line.lower()
    if "doesn't have a resource type" in low or "could not find the requested resource" in low:
        api = req.api
        return ReadError(
            f"not installed: this cluster does not serve {api.kind} ({api.api_version})",
            "not-installed",
        )
    if "forbidden" in low:
        return ReadError(f"forbidden (run command): {line}", "forbidden")
    if "unauthorized" in low or "must be logged in" in low:
        return ReadError(f"unauthorized (run command): {line}", "unauthorized")
    return ReadError(f"run command: kubectl said: {line}")


def parse(logs: str, requests: list[ListRequest]) -> dict[str, list[dict[str, Any]] | ReadError]:
    """Split the logs at the markers; each section -> raw items or a ReadError."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in logs.splitlines():
        if line.startswith(MARKER):
            current = sections.setdefault(line[len(MARKER) :].strip(), [])
        elif current is not None:
            current.append(line)
    out: dict[str, list[dict[str, Any]] | ReadError] = {}
    for req in requests:
        lines = sections.get(req.key)
        if lines is None:
            out[req.key] = ReadError(
                "run command: no output for this list (the command stopped early?)"
            )
            continue
        # kubectl may print warnings (deprecated APIs) before the JSON: skip to the document
        start = next((i for i, ln in enumerate(lines) if ln.startswith("{")), None)
        if start is None:
            out[req.key] = _section_error(req, "\n".join(lines))
            continue
        text = "\n".join(lines[start:])
        try:
            out[req.key] = list(
                ijson.items(io.BytesIO(text.encode()), "items.item", use_float=True)
            )
        except ijson.JSONError as exc:
            out[req.key] = ReadError(f"run command: kubectl output is not JSON ({exc})")
    return out


class RunCommandReader:
    """Kubernetes lists of a private cluster through ARM."""

    def __init__(
        self,
        arm: ArmClient,
        resource_group: str,
        name: str,
        *,
        cluster_token: Callable[[], str | None] = lambda: None,
        timeout: float = 180.0,
    ) -> None:
        self.arm, self.resource_group, self.name = arm, resource_group, name
        self.cluster_token = cluster_token
        self.timeout = timeout

    def read(self, requests: list[ListRequest]) -> dict[str, list[dict[str, Any]] | ReadError]:
        if not requests:
            return {}
        logs, _exit = self.arm.run_command(
            self.resource_group, self.name, script(requests), self.cluster_token(), self.timeout
        )
        return parse(logs, requests)
