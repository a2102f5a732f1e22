"""The floor of the big-cluster rows: the least any Python program can do to get a cluster's
pods — a plain paged fetch of `/api/v1/pods` (`limit` 500, following `continue`) through one
urllib3 connection pool, each page parsed with `json.loads` and its items kept, the garbage
collector paused. No projection, no checks, no report.

    python -m bench.floor KUBECONFIG      # prints {"pods": N, "seconds": S}
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import urllib3


def fetch_pods(server: str, token: str, ca_file: str | None, page_size: int = 500) -> list[Any]:
    pool = urllib3.PoolManager(ca_certs=ca_file, maxsize=1)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    items: list[Any] = []
    cont = ""
    for _ in range(1_000_000):  # bounded: a page per iteration
        fields = {"limit": str(page_size), **({"continue": cont} if cont else {})}
        resp = pool.request("GET", f"{server}/api/v1/pods", fields=fields, headers=headers)
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from {server}")
        page = json.loads(resp.data)
        items.extend(page["items"])
        cont = page["metadata"].get("continue") or ""
        if not cont:
            break
    return items


def _main() -> None:
    doc = json.loads(Path(sys.argv[1]).read_text())
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    started = time.perf_counter()
    gc.disable()
    pods = fetch_pods(cluster["server"], user["token"], cluster.get("certificate-authority"))
    took = time.perf_counter() - started
    sys.stdout.write(json.dumps({"pods": len(pods), "seconds": round(took, 3)}) + "\n")


if __name__ == "__main__":
    _main()
