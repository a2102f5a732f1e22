"""The active probe of the API server endpoint from where aksdiag runs: DNS, TCP 443, TLS,
`GET /healthz`, each stage with its own timeout and duration. The outcome names the first
stage that failed (`dns-failed`, `tcp-timeout`, `tcp-refused`, `tls-failed`, `http-error`) or
`ok`, which is what the `apiserver.probe.*` findings report.

The API server's certificate is issued by the cluster's own CA: with that CA (from the
kubeconfig) the certificate is verified; without it the handshake still has to complete, and
the detail says the certificate was not verified. A 401/403 on /healthz still proves the
endpoint answers (anonymous access can be disabled), so it counts as reachable.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from diagnostics.snapshot import ProbeResult


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _resolve(host: str, port: int, timeout: float) -> tuple[list[str] | None, str]:
    """getaddrinfo with a timeout (it has none of its own): (addresses, error)."""
    result: dict[str, object] = {}

    def work() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            result["ok"] = list(dict.fromkeys(str(i[4][0]) for i in infos))
        except (socket.gaierror, UnicodeError, OSError) as exc:
            result["error"] = exc

    t = threading.Thread(target=work, daemon=True, name="aksdiag-dns")
    t.start()
    t.join(timeout)
    if "ok" in result:
        return result["ok"], ""  # type: ignore[return-value]
    if "error" in result:
        return None, f"{host} does not resolve: {result['error']}"
    return None, f"no DNS answer for {host} within {timeout:g} s"


def probe(
    host: str,
    port: int = 443,
    *,
    tls: bool = True,
    timeout: float = 5.0,
    ca_file: str | None = None,
    path: str = "/healthz",
) -> ProbeResult:
    """Probe host:port stage by stage; never raises."""
    stages: dict[str, float] = {}

    def result(
        outcome: str, detail: str, addresses: tuple[str, ...] = (), status: int | None = None
    ) -> ProbeResult:
        return ProbeResult(host, port, outcome, detail, addresses, stages, status)

    start = time.perf_counter()
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        found, error = _resolve(host, port, timeout)
        stages["dns"] = _ms(start)
        if found is None:
            return result("dns-failed", error)
        addresses = found
    addrs = tuple(addresses)

    sock: socket.socket | None = None
    start = time.perf_counter()
    errors: list[str] = []
    refused = False
    for address in addresses[:3]:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
            break
        except ConnectionRefusedError:
            refused = True
            errors.append(f"{address}: connection refused")
        except TimeoutError:
            errors.append(f"{address}: no answer within {timeout:g} s")
        except OSError as exc:
            errors.append(f"{address}: {exc.strerror or exc}")
    stages["tcp"] = _ms(start)
    if sock is None:
        outcome = (
            "tcp-refused" if refused and all("refused" in e for e in errors) else "tcp-timeout"
        )
        return result(outcome, f"TCP {port}: " + "; ".join(errors), addrs)

    try:
        conn: socket.socket = sock
        note = ""
        if tls:
            start = time.perf_counter()
            if ca_file:
                ctx = ssl.create_default_context(cafile=ca_file)
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                note = " (certificate not verified: the cluster CA is not known here)"
            try:
                conn = ctx.wrap_socket(sock, server_hostname=host)
            except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
                stages["tls"] = _ms(start)
                return result(
                    "tls-failed", f"TLS handshake with {host}:{port} failed: {exc}", addrs
                )
            stages["tls"] = _ms(start)
        start = time.perf_counter()
        try:
            conn.settimeout(timeout)
            conn.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: aksdiag-probe\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n".encode()
            )
            resp = http.client.HTTPResponse(conn)
            resp.begin()
            body = resp.read(512).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException) as exc:
            stages["http"] = _ms(start)
            return result(
                "http-error",
                f"GET {path}: no valid HTTP answer: {exc or type(exc).__name__}",
                addrs,
            )
        stages["http"] = _ms(start)
        if resp.status == 200:
            return result("ok", f"GET {path} -> 200 {body[:60]}{note}", addrs, 200)
        if resp.status in (401, 403):
            return result(
                "ok",
                f"GET {path} -> {resp.status}: the API server answers (anonymous access is off){note}",
                addrs,
                resp.status,
            )
        return result(
            "http-error", f"GET {path} -> {resp.status}: {body[:200]}", addrs, resp.status
        )
    finally:
        sock.close()


def probe_url(url: str, *, timeout: float = 5.0, ca_file: str | None = None) -> ProbeResult:
    """Probe the API server of a kubeconfig `server:` URL (https by default, port 443)."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    tls = parts.scheme != "http"
    port = parts.port or (443 if tls else 80)
    return probe(parts.hostname or "", port, tls=tls, timeout=timeout, ca_file=ca_file)
