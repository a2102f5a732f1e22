"""Kubernetes API reads: credentials, lists, and what a failed call means in words.

The official `kubernetes` client loads the credentials (kubeconfig with exec plugins, client
certificates, in-cluster service account) and builds the TLS connection pool; lists are then
fetched through that pool as raw JSON and projected item by item, never deserialised into
client models (30,000 pods: ~19 s as models, under 1 s raw with the garbage collector paused).

Lists are paginated (`limit`/`continue`). The first page asks for `resourceVersion=0`, which
the API server answers from its watch cache instead of etcd. Before Kubernetes 1.33 the watch
cache ignores `limit` and returns the whole list at once; the reader accepts both. A page of
the usual size is parsed at once with orjson (~4x faster than streaming); a bigger answer is
parsed item by item with ijson straight from its bytes, so even an unpaginated 150,000-pod
answer never exists as one big Python list. `continue` pages carry no resourceVersion (the API server
rejects the pair).

Every call has connect and read timeouts; 429 and 5xx answers (and dropped connections) are
retried with exponential backoff honouring Retry-After, within bounds. Anything else becomes a
`ReadError` whose `reason` is a sentence for the report.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import ijson
import orjson
import urllib3
from kubernetes import client as kclient

from diagnostics.projection import PROJECTORS
from diagnostics.redact import redact_text
from diagnostics.resources import K8S_RESOURCES, ApiResource

log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "aksdiag/0.1 (read-only diagnostics)"
WHOLE_PAGE_MAX = 8 << 20  # bytes: a page of `limit` items; parsed whole, it is a few times this


class ReadError(Exception):
    """A read that failed; `reason` is what the report says, `kind` what it means:
    unauthorized, forbidden, not-installed, not-found, timeout, unreachable, overload, error."""

    def __init__(self, reason: str, kind: str = "error", status: int | None = None) -> None:
        reason = redact_text(reason)  # server messages can quote a credential (webhooks, proxies)
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status

    @property
    def overload(self) -> bool:
        return self.kind == "overload"

    @property
    def unreachable(self) -> bool:
        return self.kind == "unreachable"


def secs(value: float) -> str:
    return f"{value:g} s"


# ---------------------------------------------------------------- GC pause shared by threads
_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while parsing; reference-counted across threads."""
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


# ---------------------------------------------------------------- what to list
@dataclass(frozen=True, slots=True)
class ListRequest:
    """One list: a resource of K8S_RESOURCES, optionally narrowed by a field selector."""

    resource: str
    field_selector: str = ""

    @property
    def key(self) -> str:
        return f"{self.resource}?{self.field_selector}" if self.field_selector else self.resource

    @property
    def api(self) -> ApiResource:
        return K8S_RESOURCES[self.resource]

    @property
    def where(self) -> str:
        scope = f" in {self.api.namespace}" if self.api.namespace else ""
        return f"{self.resource}{scope}" + (
            f" ({self.field_selector})" if self.field_selector else ""
        )


# ---------------------------------------------------------------- the reader
class KubeApi:
    """Raw, bounded reads through an ApiClient's connection pool and credentials."""

    def __init__(
        self,
        api_client: kclient.ApiClient,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        page_size: int = 500,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 10.0,
        cached_lists: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = api_client
        self._cfg: kclient.Configuration = api_client.configuration
        self._pool: urllib3.PoolManager = api_client.rest_client.pool_manager
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.page_size, self.retries, self.backoff = page_size, retries, backoff
        self.max_retry_after, self.cached_lists = max_retry_after, cached_lists
        self._sleep = sleep

    @property
    def server(self) -> str:
        return str(self._cfg.host)

    @property
    def ca_file(self) -> str | None:
        return self._cfg.ssl_ca_cert or None

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": USER_AGENT, "Accept-Encoding": "gzip"}
        auth = self._cfg.auth_settings().get("BearerToken")
        if auth and auth.get("value"):
            headers["Authorization"] = str(auth["value"])
        return headers

    # ------------------------------------------------------------ one call, retried
    def request(
        self, method: str, path: str, query: dict[str, str] | None = None, body: Any = None
    ) -> bytes:
        """One call; the body of a 2xx answer, else ReadError (429/5xx retried first)."""
        url = self.server.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")
        timeout = urllib3.Timeout(connect=self.connect_timeout, read=self.timeout)
        data = json.dumps(body).encode() if body is not None else None
        last = ""
        for attempt in range(self.retries + 1):
            headers = self._headers()
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                resp = self._pool.request(
                    method,
                    url,
                    body=data,
                    headers=headers,
                    timeout=timeout,
                    retries=False,
                    preload_content=False,
                )
                payload = resp.read()
                resp.release_conn()
            except urllib3.exceptions.HTTPError as exc:
                err = self._transport_error(exc)
                if err.kind != "dropped" or attempt == self.retries:
                    raise (
                        ReadError(err.reason, "unreachable") if err.kind == "dropped" else err
                    ) from None
                last = err.reason
                self._sleep(self._delay(attempt, None))
                continue
            if 200 <= resp.status < 300:
                return bytes(payload)
            message = _status_message(payload)
            if resp.status in RETRY_STATUS and attempt < self.retries:
                last = f"HTTP {resp.status}"
                self._sleep(self._delay(attempt, resp.headers.get("Retry-After")))
                continue
            raise self._status_error(resp.status, message, path, attempt)
        raise ReadError(f"gave up after {self.retries + 1} attempts: {last}", "overload")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_retry_after)
            except ValueError:
                pass
        return min(
            self.backoff * (2.0**attempt) * (0.75 + random.random() / 2), self.max_retry_after
        )

    def _status_error(self, status: int, message: str, path: str, attempt: int) -> ReadError:
        detail = f": {message}" if message else ""
        if status == 401:
            return ReadError(
                f"unauthorized (401): the API server rejected the credentials{detail}",
                "unauthorized",
                status,
            )
        if status == 403:
            return ReadError(
                f"forbidden: {message or 'the API server answered 403'}", "forbidden", status
            )
        if status == 404:
            return ReadError(f"not found (404): {path}{detail}", "not-found", status)
        if status == 410:
            return ReadError(
                f"expired (410): the list changed too much while paging{detail}", "error", status
            )
        if status in RETRY_STATUS:
            tries = f" {attempt + 1} times" if attempt else ""
            return ReadError(
                f"the API server is overloaded or failing: HTTP {status}{tries}{detail}",
                "overload",
                status,
            )
        return ReadError(f"HTTP {status}{detail}", "error", status)

    def _transport_error(self, exc: Exception) -> ReadError:
        reason = getattr(exc, "reason", None)
        inner = reason if isinstance(reason, Exception) else exc
        host = urlsplit(self.server).netloc
        text = str(inner)
        low = text.lower()
        x = urllib3.exceptions
        if "refused" in low:  # NewConnectionError is a ConnectTimeoutError subclass: first
            return ReadError(f"API server unreachable: connection refused ({host})", "unreachable")
        if isinstance(inner, x.NameResolutionError) or "resolve" in low:
            name = urlsplit(self.server).hostname
            return ReadError(f"API server unreachable: cannot resolve {name}", "unreachable")
        if isinstance(inner, x.ConnectTimeoutError) or "connect timeout" in low:
            return ReadError(
                f"API server unreachable: no TCP connection to {host} "
                f"within {secs(self.connect_timeout)}",
                "unreachable",
            )
        if isinstance(inner, x.ReadTimeoutError | TimeoutError):
            return ReadError(f"timed out after {secs(self.timeout)}", "timeout")
        if isinstance(inner, x.SSLError) or "ssl" in low:
            return ReadError(
                f"API server unreachable: TLS handshake with {host} failed: {text}", "unreachable"
            )
        if isinstance(inner, x.ProtocolError):
            return ReadError(f"the connection to {host} was closed without an answer", "dropped")
        return ReadError(f"API server unreachable: {type(inner).__name__}: {text}", "unreachable")

    # ------------------------------------------------------------ lists
    def iter_pages(self, req: ListRequest) -> Iterator[bytes]:
        """The raw pages of a list, following `continue` (ReadError on failure)."""
        api = req.api
        cont = ""
        while True:
            query: dict[str, str] = {"limit": str(self.page_size)}
            if cont:
                query["continue"] = cont
            elif self.cached_lists:
                query["resourceVersion"] = "0"
            if req.field_selector:
                query["fieldSelector"] = req.field_selector
            try:
                page = self.request("GET", api.list_path, query)
            except ReadError as err:
                if err.status == 404:
                    raise _not_installed(api) from None
                raise
            try:
                meta = next(ijson.items(io.BytesIO(page), "metadata"), None) or {}
            except ijson.JSONError as exc:
                raise _not_json(exc) from None
            yield page
            cont = meta.get("continue") or ""
            if not cont:
                return

    @staticmethod
    def page_items(page: bytes) -> Iterator[dict[str, Any]]:
        """Items of one page: parsed at once up to WHOLE_PAGE_MAX bytes, else one at a time
        from its bytes (and whatever orjson refuses, such as integers over 64 bits)."""
        if len(page) <= WHOLE_PAGE_MAX:
            try:
                doc = orjson.loads(page)
            except orjson.JSONDecodeError:
                pass  # ijson below parses it, or says why it is not JSON
            else:
                items = doc.get("items") if isinstance(doc, dict) else None
                yield from items if isinstance(items, list) else ()
                return
        try:
            yield from ijson.items(io.BytesIO(page), "items.item", use_float=True)
        except ijson.JSONError as exc:
            raise _not_json(exc) from None

    def iter_items(self, req: ListRequest) -> Iterator[dict[str, Any]]:
        """Raw items of a list, page by page (for capture)."""
        for page in self.iter_pages(req):
            yield from self.page_items(page)

    def list_records(self, req: ListRequest) -> list[Any]:
        """A list projected to snapshot records as each page is parsed; the collector is paused
        while parsing (not while waiting on the network)."""
        project = PROJECTORS[req.resource]
        out: list[Any] = []
        for page in self.iter_pages(req):
            with gc_paused():
                out.extend(project(item) for item in self.page_items(page))
        return out

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        raw = self.request("POST", path, body=body)
        try:
            out = json.loads(raw)
        except ValueError as exc:
            raise _not_json(exc) from None
        return out if isinstance(out, dict) else {}


def _not_json(exc: Exception) -> ReadError:
    return ReadError(f"the API server answered something that is not JSON: {exc}")


def _not_installed(api: ApiResource) -> ReadError:
    if api.group:
        what = f"{api.kind} ({api.group}/{api.version})"
        hint = ""
        if api.name == "nodenetworkconfigs":
            hint = " (kubenet, Azure CNI Overlay and Azure CNI without dynamic IP allocation have none)"
        return ReadError(
            f"not installed: this cluster does not serve {what}{hint}", "not-installed", 404
        )
    return ReadError(f"not installed: this cluster does not serve {api.name}", "not-installed", 404)


def _status_message(payload: bytes) -> str:
    """The `message` of a Kubernetes Status body, else the start of the body."""
    text = payload[:2000].decode("utf-8", "replace").strip()
    try:
        doc = json.loads(payload[:65536])
        if isinstance(doc, dict) and doc.get("message"):
            return str(doc["message"])[:500]
    except ValueError:
        pass
    return text[:300]
