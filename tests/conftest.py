"""Shared fixtures. Every test starts from clean environment variables."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

_PREFIXES = ("AKSDIAG_", "SLACK_", "REDIS_", "AZURE_", "KUBECONFIG")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(_PREFIXES):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
def examples() -> Path:
    return ROOT / "examples"


@pytest.fixture
def redis_server():
    """A real valkey server of this test's own, on a free port."""
    from bot.redis_embedded import EmbeddedRedis

    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A test CA and a server certificate for 127.0.0.1/localhost (trustme)."""
    from emulators.tls import make_tls

    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def k8s(tls):
    """The Kubernetes API emulator over TLS, serving a small cluster with real problems."""
    from emulators.k8s_api import KubeEmulator
    from emulators.sample import sample_objects

    with KubeEmulator(certfile=str(tls.server_pem), **sample_objects()) as emu:
        yield emu
