"""`aksdiag serve`: run the Slack bot.

Socket Mode when `SLACK_APP_TOKEN` is set, else HTTP mode: Bolt's `/slack/events` (commands,
events and interactivity) served by waitress, a multi-threaded production WSGI server. Both
modes serve `/healthz` (the process is alive), `/readyz` (Redis and Slack answer) and
`/metrics` (Prometheus text). Secrets come from the environment only: `SLACK_BOT_TOKEN`,
`SLACK_SIGNING_SECRET` (HTTP mode), `SLACK_APP_TOKEN` (Socket Mode), `REDIS_URL` (without it an
embedded valkey server starts). `SLACK_API_URL` overrides the Web API base URL.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.errors import SlackApiError
from waitress import wasyncore
from waitress.server import create_server

from bot.app import create_app
from bot.config import ConfigError, load_config
from bot.deps import Deps, Settings, build_deps
from bot.logs import setup_logging
from bot.metrics import CONTENT_TYPE_LATEST
from bot.payloads import malformed, signed
from bot.slack_send import make_web_client
from bot.store import connect

log = logging.getLogger("aksdiag.serve")
EXIT_CONFIG = 3
# Slack's largest payloads (a button click carries its whole message, 50 blocks of 3,000
# characters) stay far below this; waitress answers 413 to anything bigger (a Content-Length
# over it at once, a chunked body once it passes it) before Bolt reads a byte of it.
MAX_BODY_BYTES = 1024 * 1024
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Readiness:
    """Redis answers PING; Slack answers auth.test (remembered for `slack_ttl_s`)."""

    def __init__(self, deps: Deps, slack_ttl_s: float = 30.0) -> None:
        self._deps = deps
        self._ttl = slack_ttl_s
        self._slack_ok_at = 0.0
        self._lock = threading.Lock()

    def check(self) -> tuple[bool, dict[str, str]]:
        out: dict[str, str] = {}
        try:
            self._deps.redis.ping()
            out["redis"] = "ok"
        except RedisError as exc:
            out["redis"] = f"unreachable: {type(exc).__name__}"
        with self._lock:
            fresh = time.monotonic() - self._slack_ok_at < self._ttl
        if fresh:
            out["slack"] = "ok"
        else:
            try:
                self._deps.client.auth_test()
                out["slack"] = "ok"
                with self._lock:
                    self._slack_ok_at = time.monotonic()
            except (SlackApiError, OSError) as exc:
                out["slack"] = f"unreachable: {type(exc).__name__}"
        return all(v == "ok" for v in out.values()), out


def build_wsgi(deps: Deps, app: App | None, signing_secret: str | None = None) -> WsgiApp:
    """One WSGI app: Bolt on `/slack/events` (HTTP mode), plus health and metrics. A signed
    body Bolt could not parse gets 400 (`bot/payloads.py`), an unsigned one 401."""
    secret = signing_secret or os.environ.get("SLACK_SIGNING_SECRET")
    bolt = SlackRequestHandler(app) if app is not None else None
    readiness = Readiness(deps)

    def reply(start: Callable[..., Any], status: str, body: bytes, ctype: str) -> list[bytes]:
        start(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return reply(start_response, "200 OK", b'{"status":"ok"}', "application/json")
        if path == "/readyz":
            ok, parts = readiness.check()
            body = json.dumps({"status": "ok" if ok else "unavailable", **parts}).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            return reply(start_response, status, body, "application/json")
        if path == "/metrics":
            return reply(start_response, "200 OK", deps.metrics.render(), CONTENT_TYPE_LATEST)
        if bolt is not None and path == bolt.path:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            if problem := malformed(body, environ.get("CONTENT_TYPE", "")):
                if not signed(secret, body, environ):
                    return reply(
                        start_response, "401 Unauthorized", b"invalid request\n", "text/plain"
                    )
                return reply(
                    start_response, "400 Bad Request", f"{problem}\n".encode(), "text/plain"
                )
            return bolt(environ, start_response)
        return reply(start_response, "404 Not Found", b"not found\n", "text/plain")

    return wsgi


class HttpServer:
    """waitress in a thread: `start()`, `port`, `stop()`."""

    def __init__(
        self, wsgi: WsgiApp, host: str = "127.0.0.1", port: int = 0, threads: int = 16
    ) -> None:
        self._server = create_server(
            wsgi,
            host=host,
            port=port,
            threads=threads,
            connection_limit=200,
            channel_timeout=30,
            ident="aksdiag",
            clear_untrusted_proxy_headers=True,
            max_request_body_size=MAX_BODY_BYTES,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.effective_port)  # type: ignore[union-attr]

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self._run, name="aksdiag-http", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._server.run()
        except Exception:
            log.exception("the HTTP server loop stopped")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, close connections, let running requests finish (up to `timeout_s`).
        The sockets are closed by the server's own loop thread (a trigger thunk), which then
        ends because nothing is left to watch."""
        server: Any = self._server

        def close_all() -> None:
            for channel in list(server._map.values()):
                if channel is not server and channel is not server.trigger:
                    channel.close()
            wasyncore.dispatcher.close(server)  # the listening socket
            server.trigger.close()

        try:
            if self._thread is None or not self._thread.is_alive():
                raise OSError("the server loop is not running")
            server.trigger.pull_trigger(close_all)
            self._thread.join(timeout_s)
        except OSError:
            try:
                close_all()
            except OSError:
                log.debug("server sockets already closed")
        server.task_dispatcher.shutdown(timeout=int(timeout_s))


def _start_scheduler(deps: Deps) -> Any:
    """Digests on their cron, when there are digests (each fire time posts once across
    replicas: bot.digest claims it in Redis)."""
    if not deps.config.digests:
        return None
    from bot.scheduler import start_scheduler

    return start_scheduler(deps.config, deps.digests)


def _stop_scheduler(scheduler: Any) -> None:
    from bot.scheduler import stop_scheduler

    stop_scheduler(scheduler)


BAD_REDIS_URL = (
    "REDIS_URL is not a valid Redis URL: expected redis://[USER]:PASSWORD@HOST:PORT/DB "
    "(rediss:// for TLS), with special characters of the password percent-encoded"
)


def _rejected(name: str, exc: SlackApiError, what: str) -> str:
    error = str(exc.response.get("error") or "an error")
    return f"Slack rejected {name} ({error}): set it to {what} from the Slack app's settings"


def _startup_error(text: str) -> int:
    log.error("%s", text)
    sys.stderr.write(f"aksdiag: {text}\n")
    return EXIT_CONFIG


def _connect_when_reachable(handler: Any, stop: threading.Event, first_wait_s: float = 1.0) -> None:
    """Retry the Socket Mode connection, backing off up to 30 s, until it opens or the process
    stops. A token Slack rejects stops the process (as it would at start)."""
    wait = first_wait_s
    while not stop.wait(wait):
        try:
            handler.connect()
        except SlackApiError as exc:
            _startup_error(_rejected("SLACK_APP_TOKEN", exc, "an app-level token, xapp-"))
            stop.set()
            return
        except OSError as exc:
            log.info("Slack still unreachable (%s); next try in %.0f s", type(exc).__name__, wait)
            wait = min(wait * 2, 30.0)
            continue
        log.info("Socket Mode connected")
        return


def serve_command(ns: argparse.Namespace) -> int:
    setup_logging(logging.DEBUG if getattr(ns, "verbose", False) else logging.INFO)
    try:
        config = load_config(ns.config)
    except ConfigError as exc:
        log.error("%s", exc)
        sys.stderr.write(f"aksdiag: {exc}\n")
        return EXIT_CONFIG
    token = os.environ.get("SLACK_BOT_TOKEN")
    app_token = os.environ.get("SLACK_APP_TOKEN")
    secret = os.environ.get("SLACK_SIGNING_SECRET")
    missing = [
        n
        for n, v in (("SLACK_BOT_TOKEN", token), ("SLACK_SIGNING_SECRET", secret or app_token))
        if not v
    ]
    if missing:
        text = f"set {' and '.join(missing)} in the environment (SLACK_APP_TOKEN for Socket Mode)"
        log.error("%s", text)
        sys.stderr.write(f"aksdiag: {text}\n")
        return EXIT_CONFIG

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        log.error("bad AKSDIAG_* setting: %s", exc)
        sys.stderr.write(f"aksdiag: bad AKSDIAG_* setting: {exc}\n")
        return EXIT_CONFIG
    # Errors about secrets name the variable and the problem, never its value (nor the text of
    # a parser's exception, which can quote part of it: redis-py does for a `/` in a password).
    redis_url = os.environ.get("REDIS_URL")
    redis: Redis | None = None
    if redis_url:
        try:
            redis = connect(redis_url)
        except ValueError:
            return _startup_error(BAD_REDIS_URL)
    client = make_web_client(token, os.environ.get("SLACK_API_URL"))
    slack_reachable = True
    try:
        client.auth_test()
    except SlackApiError as exc:
        return _startup_error(_rejected("SLACK_BOT_TOKEN", exc, "the bot token, xoxb-"))
    except OSError as exc:  # refused, timed out, no DNS: an outage, not a bad setting
        slack_reachable = False
        log.warning(
            "Slack is unreachable (%s: %s): serving anyway; /readyz reports it until it answers",
            type(exc).__name__,
            exc,
        )
    embedded = None
    if redis is None:
        from bot.redis_embedded import EmbeddedRedis

        embedded = EmbeddedRedis().start()
        redis = connect(embedded.url)
        log.info("no REDIS_URL: started an embedded valkey server (state is lost on restart)")
    deps = build_deps(config, redis, client, settings=settings)
    socket_mode = bool(app_token)
    stop = threading.Event()
    handler = None
    scheduler = None
    server = None
    try:
        app = create_app(
            deps, signing_secret=secret, socket_mode=socket_mode, verify_token=slack_reachable
        )
        deps.usergroups.start()
        if deps.inflight is not None:
            deps.inflight.start()  # heartbeat, and the sweep for answers a dead replica left
        scheduler = _start_scheduler(deps)
        server = HttpServer(
            build_wsgi(deps, None if socket_mode else app, secret),
            ns.host,
            ns.port,
            threads=settings.listener_threads * 2,
        ).start()
        if socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(app, app_token)
            try:
                handler.connect()
            except SlackApiError as exc:
                return _startup_error(
                    _rejected("SLACK_APP_TOKEN", exc, "an app-level token, xapp-")
                )
            except OSError as exc:
                log.warning(
                    "Slack is unreachable (%s): Socket Mode connects when Slack answers",
                    type(exc).__name__,
                )
                threading.Thread(
                    target=_connect_when_reachable,
                    args=(handler, stop),
                    name="aksdiag-socket-connect",
                    daemon=True,
                ).start()
        log.info(
            "aksdiag serving in %s on %s:%s (health, readiness, metrics%s)",
            "Socket Mode" if socket_mode else "HTTP mode",
            ns.host,
            server.port,
            "" if socket_mode else ", /slack/events",
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        log.info("shutting down: finishing answers in flight")
        return 0
    finally:
        if handler is not None:
            handler.close()
        if server is not None:
            server.stop()
        if scheduler is not None:
            _stop_scheduler(scheduler)
        deps.executor.shutdown(wait=True, cancel_futures=False)
        deps.close()
        if embedded is not None:
            embedded.stop()
