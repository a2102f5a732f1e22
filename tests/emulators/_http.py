"""The HTTP plumbing both emulators share: a threaded loopback server (plain or TLS), fault
injection per path, and a request counter per path. Standard library only.

A subclass implements `route(request) -> Reply`. Tests start and stop a server themselves
(`with Emulator(...) as emu:`), so nothing outlives a test.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lowercased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list -> JSON, bytes/str -> as is
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain")
        if self.body is None:
            return b"", "application/json"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Fault:
    """What to do instead of answering normally: a status (with Retry-After), a delay before the
    answer, or dropping the connection. `times` None means every matching request."""

    path: str  # exact path, or a prefix ending in "*"
    status: int | None = None
    method: str | None = None
    times: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False
    body: Any = None
    hits: int = 0

    def matches(self, req: Request, fold_case: bool = False) -> bool:
        if self.method and self.method != req.method:
            return False
        want, got = (self.path.lower(), req.path.lower()) if fold_case else (self.path, req.path)
        if want.endswith("*"):
            return got.startswith(want[:-1])
        return got == want


class _Server(ThreadingHTTPServer):
    """Threads per connection; the TLS handshake happens in the connection's own thread (not
    in the accept loop, where one slow client would hold up every other), and a deep backlog
    so bursts of concurrent clients are not dropped."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that gave up, or a plain-HTTP client probing a TLS port
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()


class EmulatorServer:
    """Base class: start/stop, URL, faults, counters. Subclasses define `route`."""

    fold_case = False  # ARM paths are case-insensitive: faults and counts ignore case

    def __init__(self, certfile: str | None = None, keyfile: str | None = None) -> None:
        self._tls = (certfile, keyfile) if certfile else None
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self.requests: list[Request] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm
            # holds small answers on kept-alive connections ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                emulator._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        server = _Server(("127.0.0.1", 0), Handler)
        if self._tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self._tls[0], self._tls[1])
            server.ssl_context = ctx
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the emulator first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ faults and counters
    def fault(self, path: str, status: int | None = None, **kw: Any) -> Fault:
        """Inject a fault for requests whose path matches (see Fault)."""
        f = Fault(path, status, **kw)
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, path: str) -> int:
        """Requests seen for a path; "prefix*" and "*suffix" count every path that matches."""
        path = path.lower() if self.fold_case else path
        with self._lock:
            if path.endswith("*"):
                return sum(n for p, n in self.counts.items() if p.startswith(path[:-1]))
            if path.startswith("*"):
                return sum(n for p, n in self.counts.items() if p.endswith(path[1:]))
            return self.counts[path]

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.requests.clear()

    def _take_fault(self, req: Request) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.matches(req, self.fold_case) and (f.times is None or f.hits < f.times):
                    f.hits += 1
                    return f
        return None

    # ------------------------------------------------------------ dispatch
    def route(self, req: Request) -> Reply:  # pragma: no cover - subclasses answer
        return Reply(404, {"message": "not found"})

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        req = Request(
            h.command, parts.path, query, {k.lower(): v for k, v in h.headers.items()}, body
        )
        with self._lock:
            self.counts[req.path.lower() if self.fold_case else req.path] += 1
            self.requests.append(req)
        fault = self._take_fault(req)
        if fault is not None:
            if fault.delay:
                self._stopping.wait(fault.delay)
            if fault.drop:
                h.close_connection = True
                return
            if fault.status is not None:
                headers = (
                    {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                )
                self._send(
                    h, Reply(fault.status, fault.body or self.error_body(fault.status), headers)
                )
                return
        try:
            reply = self.route(req)
        except Exception as exc:  # an emulator bug must show up as a 500, not a hang
            reply = Reply(500, {"message": f"emulator error: {type(exc).__name__}: {exc}"})
        self._send(h, reply)

    def error_body(self, status: int) -> Any:
        return {"message": f"injected {status}"}

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, reply: Reply) -> None:
        data, ctype = reply.encode()
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", reply.headers.get("Content-Type", ctype))
            for k, v in reply.headers.items():
                if k != "Content-Type":
                    h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            h.close_connection = True
