"""Both ways a list page is parsed give the same snapshot: pages of the usual size are parsed
whole (orjson), an answer too big for that (an API server that ignored `limit`) is streamed
item by item (ijson). Over the wire, against the API server emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import pod
from emulators import KubeEmulator, make_tls

from diagnostics.checks.base import ScenarioArgs
from diagnostics.collectors.k8s import WHOLE_PAGE_MAX
from diagnostics.collectors.kubeauth import KubeAccess
from diagnostics.collectors.live import LiveSource
from diagnostics.collectors.settings import LiveSettings

N = 7500


@pytest.fixture(scope="module")
def pods() -> list[dict]:
    """One unpaginated answer of ~9 MB, over WHOLE_PAGE_MAX."""
    return [
        pod(
            f"web-{i:05d}",
            f"team-{i % 7}",
            node=f"aks-nodepool1-12345678-vmss{i // 30:06x}",
            ip=f"10.{16 + i // 65536}.{i // 256 % 256}.{i % 256}",
            labels={"app": f"web-{i % 40}"},
            ports=[("http", 8080)],
            owner=("ReplicaSet", f"web-{i % 40}-7d9f8b6c4"),
        )
        for i in range(N)
    ]


def _collect(pods: list[dict], tmp: Path, *, ignores_limit: bool) -> tuple[list, int]:
    tls = make_tls(tmp / "tls")
    with KubeEmulator(
        certfile=str(tls.server_pem), rv0_ignores_limit=ignores_limit, pods=pods
    ) as emu:
        kc = emu.write_kubeconfig(tmp / "kubeconfig", ca_file=str(tls.ca_pem))
        src = LiveSource("big", kube=KubeAccess("kubeconfig", str(kc)), settings=LiveSettings())
        try:
            snap = src.collect({"pods"}, ScenarioArgs())
        finally:
            src.close()
        return snap.pods, emu.count("/api/v1/pods")


def test_a_streamed_answer_and_whole_pages_give_the_same_pods(pods, tmp_path):
    streamed, requests = _collect(pods, tmp_path / "one", ignores_limit=True)
    assert requests == 1  # one answer of every pod: bigger than a whole-parsed page may be
    paged, pages = _collect(pods, tmp_path / "paged", ignores_limit=False)
    assert pages == -(-len(pods) // 500)
    assert len(streamed) == len(pods) == N
    assert streamed == paged
    assert len({p.ip for p in paged}) == N


def test_the_threshold_sits_between_a_page_and_a_whole_list(pods):
    import json

    page = len(json.dumps({"items": pods[:500]}).encode())
    assert page * 4 < WHOLE_PAGE_MAX < len(json.dumps({"items": pods}).encode())
