"""Kubernetes API servers for the benchmarks, run in a process of their own so that their
memory and CPU do not count as the measured client's.

`FastKubeEmulator` is the test suite's `KubeEmulator` (discovery, bearer tokens, kubeconfig,
label and field selectors, `limit`/`continue`, faults, request counters) with one change: a list
is filtered once and each of its pages serialized once, then served as cached bytes. The test
emulator filters the whole store and re-serializes on every page request, which at 150,000
pods (300 pages) costs minutes and would make the emulator, not the client, the thing measured.
Objects are stored as generated, without the test emulator's defensive deep copy, and answers
leave without Nagle's delay (TCP_NODELAY, as Go's HTTP server does).

    python -m bench.kube_server --nodes 5000 --kubeconfig DIR/kubeconfig
    python -m bench.kube_server --clusters 50 --nodes 10 --latency 0.2 --kubeconfig DIR/kc

print one JSON line once serving (`{"urls": [...], "kubeconfigs": [...], ...}`) and stop when
their standard input closes. `GET /_bench/counts` answers the request counts per path.
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from emulators import KubeEmulator, make_tls
from emulators._http import Reply, Request

from bench.generate import objects  # puts tests/ on sys.path

PageKey = tuple[str, str, str, str, int]


class FastKubeEmulator(KubeEmulator):
    """KubeEmulator whose list pages are serialized once and served as bytes."""

    def __init__(self, **kw: Any) -> None:
        self._pages: dict[PageKey, list[bytes]] = {}
        self._pages_lock = threading.Lock()
        super().__init__(**kw)

    def add(self, resource: str, *objs: dict[str, Any]) -> None:
        if resource not in self.resources:
            raise KeyError(f"the emulator does not serve {resource!r}")
        with self._store_lock:
            for obj in objs:
                self._rv += 1
                obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
                self._store[resource].append(obj)
            self._store[resource].sort(
                key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"].get("name", ""))
            )
        with self._pages_lock:
            self._pages.clear()

    def start(self) -> FastKubeEmulator:
        super().start()
        # Answer without Nagle's delay, as a real API server does (Go sets TCP_NODELAY): with
        # keep-alive connections, a small body written after its headers otherwise waits for
        # the client's delayed ACK, ~40 ms per small list.
        self._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[union-attr]
        return self

    def route(self, req: Request) -> Reply:
        if req.path == "/_bench/counts":
            with self._lock:
                return Reply(200, dict(self.counts))
        return super().route(req)

    def _list(self, res: Any, namespace: str, query: dict[str, str]) -> Reply:
        cont, rv = query.get("continue", ""), query.get("resourceVersion")
        limit = int(query.get("limit") or 0) if (query.get("limit") or "0").isdigit() else -1
        if limit < 0 or (cont and rv) or (rv == "0" and self.rv0_ignores_limit):
            return super()._list(res, namespace, query)  # the unusual cases, answered as before
        start = 0
        if cont:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(cont.encode()))["start"])
            except (ValueError, KeyError, TypeError):
                return super()._list(res, namespace, query)
        key = (
            res.name,
            namespace,
            query.get("labelSelector", ""),
            query.get("fieldSelector", ""),
            limit,
        )
        pages = self.pages(res, key)
        index = start // limit if limit else 0
        if pages is None or (limit and start % limit) or index >= len(pages):
            return super()._list(res, namespace, query)
        return Reply(200, pages[index], {"Content-Type": "application/json"})

    def pages(self, res: Any, key: PageKey) -> list[bytes] | None:
        """The serialized pages of one list (built on first use); None on a bad selector."""
        with self._pages_lock:
            if key in self._pages:
                return self._pages[key]
            _, namespace, labels, fields, limit = key
            whole = super()._list(
                res, namespace, {"labelSelector": labels, "fieldSelector": fields}
            )
            if whole.status != 200:
                return None
            body = whole.body
            items, rv = body["items"], body["metadata"]["resourceVersion"]
            step = limit or max(len(items), 1)
            out = []
            for start in range(0, max(len(items), 1), step):
                meta: dict[str, Any] = {"resourceVersion": rv}
                if limit and start + limit < len(items):
                    meta["continue"] = base64.urlsafe_b64encode(
                        json.dumps({"rv": int(rv), "start": start + limit}).encode()
                    ).decode()
                    meta["remainingItemCount"] = len(items) - start - limit
                page = {
                    "kind": body["kind"],
                    "apiVersion": body["apiVersion"],
                    "metadata": meta,
                    "items": items[start : start + step],
                }
                out.append(json.dumps(page).encode())
            self._pages[key] = out
            return out

    def warm(self, page_size: int = 500) -> None:
        """Serialize the lists aksdiag and kubectl ask for before anyone asks."""
        for res in self.resources.values():
            if "list" not in res.verbs:
                continue
            selectors = ("", "type=Warning") if res.name == "events" else ("",)
            namespaces = ("", "kube-system") if res.namespaced else ("",)
            for ns in namespaces:
                for fields in selectors:
                    self.pages(res, (res.name, ns, "", fields, page_size))


def _main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--pods-per-node", type=int, default=30)
    p.add_argument("--clusters", type=int, default=1, help="this many servers, each the cluster")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    p.add_argument("--kubeconfig", required=True, help="path; with --clusters N, suffixed -<i>")
    ns = p.parse_args()
    started = time.monotonic()
    base = Path(ns.kubeconfig).resolve()
    tls = make_tls(base.parent / f"{base.name}-tls")  # API servers speak TLS (kubectl insists)
    servers = []
    for _ in range(ns.clusters):
        objs = {k: list(v) for k, v in objects(ns.nodes, ns.pods_per_node).items()}
        emu = FastKubeEmulator(certfile=str(tls.server_pem), **objs)
        if ns.latency:
            emu.fault("*", delay=ns.latency)
        emu.warm()
        servers.append(emu.start())
    paths = (
        [base]
        if ns.clusters == 1
        else [base.with_name(f"{base.name}-{i:02d}") for i in range(ns.clusters)]
    )
    configs = [
        str(s.write_kubeconfig(p, ca_file=str(tls.ca_pem)))
        for s, p in zip(servers, paths, strict=True)
    ]
    ready = {
        "urls": [s.url for s in servers],
        "kubeconfigs": configs,
        "ca": str(tls.ca_pem),
        "build_s": round(time.monotonic() - started, 2),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes our stdin (or ends)
    for s in servers:
        s.stop()


if __name__ == "__main__":
    _main()
