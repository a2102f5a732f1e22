"""A local Slack Web API emulator on 127.0.0.1 that records every call.

It answers what the bot uses: `auth.test`, `chat.postMessage`, `chat.update`,
`chat.postEphemeral`, `files.getUploadURLExternal` + the upload URL +
`files.completeUploadExternal`, `usergroups.list`, `usergroups.users.list`,
`conversations.info`, `apps.connections.open`, and `response_url` endpoints
(`/response/<token>`). Faults are injected per method: Slack errors (`not_in_channel`),
429 with Retry-After, latency, and a gate that holds a call until the test releases it.

Standard library only; start with `SlackEmulator().start()`, stop with `stop()`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")
BOT_TOKEN = "xoxb-0000000000-FAKE0000000-EXAMPLEtoken0000000000"
BOT_USER = "UBOTFAKE1"
APP_TOKEN = "xapp-1-AFAKE0001-0000000000-EXAMPLEappLevelToken000000"
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Call:
    method: str  # Web API method, "upload" or "response"
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    path: str = ""


@dataclass
class Gate:
    """Holds matching calls until `release()`; `arrived` is set when the first one comes in."""

    arrived: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.opened.set()


class SlackEmulator:
    def __init__(self, token: str = BOT_TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.usergroups: list[dict[str, Any]] = []
        self.members: dict[str, list[str]] = {}
        self.latency: dict[str, float] = {}
        self._errors: dict[str, list[tuple[str, Callable[[dict[str, Any]], bool] | None]]] = {}
        self._rate_limits: dict[str, list[int]] = {}
        self._gates: dict[str, Gate] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._ws: Any = None  # the Socket Mode connection, once a client opened it
        self._ws_lock = threading.Lock()
        self.socket_acks: list[dict[str, Any]] = []

    # lifecycle ---------------------------------------------------------------------------
    listen_backlog = 128  # Slack does not refuse connections

    def start(self) -> SlackEmulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as a real server: no wait for delayed ACKs

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                emulator._handle(self)

            def do_POST(self) -> None:
                emulator._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = self.listen_backlog

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        for gate in self._gates.values():
            gate.release()
        if self._ws is not None:
            try:
                self._ws.close()
            except OSError:
                pass
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.port}/response/{token}"

    # fault injection --------------------------------------------------------------------
    def fail(
        self,
        method: str,
        error: str,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (whose params satisfy `when`) with `error`."""
        with self._lock:
            self._errors.setdefault(method, []).extend([(error, when)] * times)

    def rate_limit(self, method: str, retry_after: int = 0, times: int = 1) -> None:
        with self._lock:
            self._rate_limits.setdefault(method, []).extend([retry_after] * times)

    def hold(self, method: str) -> Gate:
        gate = self._gates[method] = Gate()
        return gate

    # queries ----------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Poll until `predicate()` is truthy; its value. Fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {getattr(predicate, '__name__', predicate)}"
                )
            time.sleep(0.02)

    def top_level(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                m
                for (c, _), m in sorted(self.messages.items(), key=lambda kv: float(kv[0][1]))
                if (channel is None or c == channel) and not m.get("thread_ts")
            ]

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                m
                for (c, _), m in sorted(self.messages.items(), key=lambda kv: float(kv[0][1]))
                if c == channel and m.get("thread_ts") == thread_ts
            ]

    def responses(self, token: str | None = None) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.calls_to("response")
            if token is None or c.path.endswith(f"/{token}")
        ]

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.calls_to("chat.postEphemeral")
            if user is None or c.params.get("user") == user
        ]

    # Socket Mode ------------------------------------------------------------------------
    @property
    def socket_connected(self) -> bool:
        return self._ws is not None

    def socket_send(self, envelope: dict[str, Any]) -> None:
        """Deliver a Socket Mode envelope (slash_commands, events_api, interactive)."""
        self._ws_frame(0x1, json.dumps(envelope).encode())

    def _ws_frame(self, opcode: int, data: bytes) -> None:
        n = len(data)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        with self._ws_lock:
            self._ws.sendall(head + data)

    def _websocket(self, h: BaseHTTPRequestHandler) -> None:
        key = h.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        h.send_response(101)
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        h.end_headers()
        h.wfile.flush()
        self._ws = h.connection
        self.socket_send(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "emulator"},
                "connection_info": {"app_id": "AFAKE0001"},
            }
        )
        read = h.rfile.read
        while True:
            try:
                b1, b2 = read(2)
            except (ValueError, OSError):
                return
            opcode, n = b1 & 0x0F, b2 & 0x7F
            if n == 126:
                n = struct.unpack(">H", read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", read(8))[0]
            mask = read(4) if b2 & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(read(n)))
            if opcode == 0x1:
                with self._lock:
                    self.socket_acks.append(json.loads(data))
            elif opcode == 0x9:
                self._ws_frame(0xA, data)
            elif opcode == 0x8:
                self._ws_frame(0x8, data[:2])
                return

    # serving ----------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        if url.path == "/socket" and h.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket(h)
            return
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        if url.path.startswith("/api/"):
            method = url.path[len("/api/") :]
            params = _params(raw, headers.get("content-type", ""), url.query)
        elif url.path.startswith("/upload/"):
            method, params = "upload", {"bytes": len(raw), "content": raw.decode(errors="replace")}
        elif url.path.startswith("/response/"):
            method, params = "response", json.loads(raw or b"{}")
        else:
            self._send(h, 404, {"ok": False, "error": "unknown_path"})
            return
        call = Call(method, params, headers, time.monotonic(), url.path)
        with self._lock:
            self.calls.append(call)
            rate = self._rate_limits.get(method)
            retry_after = rate.pop(0) if rate else None
            error = None
            pending = self._errors.get(method) or []
            for i, (name, when) in enumerate(pending):
                if when is None or when(params):
                    error = name
                    del pending[i]
                    break
        gate = self._gates.get(method)
        if gate is not None:
            gate.arrived.set()
            gate.opened.wait(30)
        if self.latency.get(method):
            time.sleep(self.latency[method])
        if retry_after is not None:
            self._send(
                h, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
            )
            return
        if method == "upload":
            self._send(h, 200, "OK")
            return
        if method == "response":
            self._send(h, 200, "ok")
            return
        tokens = (
            {f"Bearer {APP_TOKEN}"}
            if method == "apps.connections.open"
            else {f"Bearer {self.token}"}
        )
        if headers.get("authorization") not in tokens and "token" not in params:
            self._send(h, 200, {"ok": False, "error": "not_authed"})
            return
        if error is not None:
            self._send(h, 200, {"ok": False, "error": error})
            return
        self._send(h, 200, self._answer(method, params))

    def _answer(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": "Example",
                "user": "aksdiag",
                "team_id": "TFAKE0001",
                "user_id": BOT_USER,
                "bot_id": "BFAKE0001",
            }
        if method == "chat.postMessage":
            ts = f"{1700000000 + next(self._ts)}.000100"
            msg = {
                "channel": p.get("channel"),
                "ts": ts,
                "text": p.get("text"),
                "blocks": p.get("blocks") or [],
                "thread_ts": p.get("thread_ts"),
                "updates": 0,
            }
            with self._lock:
                self.messages[(str(p.get("channel")), ts)] = msg
            return {"ok": True, "channel": p.get("channel"), "ts": ts, "message": msg}
        if method == "chat.update":
            key = (str(p.get("channel")), str(p.get("ts")))
            with self._lock:
                if key not in self.messages:
                    return {"ok": False, "error": "message_not_found"}
                msg = self.messages[key]
                msg.update(
                    text=p.get("text"), blocks=p.get("blocks") or [], updates=msg["updates"] + 1
                )
            return {"ok": True, "channel": key[0], "ts": key[1]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}
        if method == "files.getUploadURLExternal":
            fid = f"FFAKE{next(self._ids):04d}"
            return {
                "ok": True,
                "file_id": fid,
                "upload_url": f"http://127.0.0.1:{self.port}/upload/{fid}",
            }
        if method == "files.completeUploadExternal":
            files = p.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        if method == "usergroups.list":
            return {"ok": True, "usergroups": self.usergroups}
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.members.get(str(p.get("usergroup")), [])}
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": p.get("channel"), "is_member": True}}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return {"ok": False, "error": "unknown_method"}

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)


def _params(raw: bytes, content_type: str, query: str) -> dict[str, Any]:
    out: dict[str, Any] = {k: v[0] for k, v in parse_qs(query).items()}
    if "json" in content_type and raw:
        out.update(json.loads(raw))
    elif raw:
        out.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
    for key in ("blocks",):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out
