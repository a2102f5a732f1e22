"""The active probe against real sockets on loopback: a TLS API server (trustme CA), a wrong
CA, plain HTTP where TLS is expected, /healthz errors, a closed port, a port that never
answers, and a name that does not resolve."""

from __future__ import annotations

import socket

import pytest
from emulators import KubeEmulator, make_tls

from diagnostics.collectors.probe import probe, probe_url


@pytest.fixture
def server(tls):
    with KubeEmulator(certfile=str(tls.server_pem)) as emu:
        yield emu


def test_healthy_api_server_with_its_ca(server, tls):
    r = probe("127.0.0.1", server.port, timeout=3, ca_file=str(tls.ca_pem))
    assert r.outcome == "ok" and r.http_status == 200
    assert r.detail == "GET /healthz -> 200 ok"
    assert set(r.stages_ms) == {"tcp", "tls", "http"}  # an IP literal needs no DNS
    assert server.count("/healthz") == 1


def test_without_the_cluster_ca_the_handshake_still_counts_and_says_so(server):
    r = probe_url(f"https://127.0.0.1:{server.port}", timeout=3)
    assert r.outcome == "ok"
    assert "certificate not verified" in r.detail


def test_a_certificate_from_another_ca_fails_tls(server, tmp_path):
    other = make_tls(tmp_path / "other")
    r = probe("127.0.0.1", server.port, timeout=3, ca_file=str(other.ca_pem))
    assert r.outcome == "tls-failed"
    assert "CERTIFICATE_VERIFY_FAILED" in r.detail
    assert server.count("/healthz") == 0


def test_plain_http_where_tls_is_expected_fails_tls():
    with KubeEmulator() as plain:
        r = probe("127.0.0.1", plain.port, timeout=3)
    assert r.outcome == "tls-failed"


def test_healthz_500_is_an_http_error(server, tls):
    server.fault("/healthz", 500, body="[-]etcd failed: reason withheld\nhealthz check failed")
    r = probe("127.0.0.1", server.port, timeout=3, ca_file=str(tls.ca_pem))
    assert r.outcome == "http-error" and r.http_status == 500
    assert "etcd failed" in r.detail


def test_healthz_401_still_proves_the_endpoint_answers(server, tls):
    server.fault("/healthz", 401)
    r = probe("127.0.0.1", server.port, timeout=3, ca_file=str(tls.ca_pem))
    assert r.outcome == "ok" and r.http_status == 401
    assert "anonymous access is off" in r.detail


def test_a_closed_port_is_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = probe("127.0.0.1", port, timeout=3)
    assert r.outcome == "tcp-refused"
    assert r.detail == f"TCP {port}: 127.0.0.1: connection refused"


def test_a_port_that_never_answers_times_out():
    """A listening socket whose accept queue is full: the kernel drops further SYNs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        held.append(c)
    try:
        check = socket.socket()
        check.settimeout(0.3)
        if check.connect_ex(("127.0.0.1", port)) == 0:
            pytest.skip("this kernel accepts connections beyond the listen backlog")
        check.close()
        r = probe("127.0.0.1", port, timeout=0.3)
        assert r.outcome == "tcp-timeout"
        assert r.detail == f"TCP {port}: 127.0.0.1: no answer within 0.3 s"
    finally:
        for c in held:
            c.close()
        listener.close()


def test_a_name_that_does_not_resolve():
    r = probe("prod-dns-abc123.hcp.westeurope.azmk8s.invalid", 443, timeout=3)
    assert r.outcome == "dns-failed"
    assert r.detail.startswith("prod-dns-abc123.hcp.westeurope.azmk8s.invalid does not resolve")
    assert "dns" in r.stages_ms and r.addresses == ()
