"""The private parts of dependencies aksdiag relies on, each checked by what we use it for.

constraints.txt pins the versions these pass with. When `make lock` moves a dependency and one
of these fails, the message says what moved and where the code that leans on it is; fix that
code (or find the public API that has appeared since) before committing the new lock.
"""

from __future__ import annotations

import inspect
import threading
import urllib.request
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from azure.mgmt.containerservice import models as aks

from bot.scheduler import SlotExecutor
from bot.serve import HttpServer
from diagnostics.collectors.armjson import _rest_names, parse_cluster


def test_azure_sdk_models_still_expose_their_rest_field_table() -> None:
    """diagnostics/collectors/armjson.py builds the az-spelling -> REST-spelling table from
    the SDK models' private `_attr_to_rest_field` (values with `_rest_name`), filled when a
    model is first instantiated. Without it every `az aks show` cluster.json loses the keys
    az spells differently (authorizedIpRanges) and checks silently see no authorized ranges."""
    aks.ManagedClusterAPIServerAccessProfile({})
    table = getattr(aks.ManagedClusterAPIServerAccessProfile, "_attr_to_rest_field", None)
    assert isinstance(table, dict) and table, (
        "azure-mgmt-containerservice models no longer have `_attr_to_rest_field`: "
        "rewrite armjson._rest_names"
    )
    rest = {getattr(f, "_rest_name", None) for f in table.values()}
    assert "authorizedIPRanges" in rest, "the fields lost `_rest_name`: rewrite armjson._rest_names"
    assert _rest_names()["authorizedipranges"] == "authorizedIPRanges"
    az_shape = {"name": "c", "apiServerAccessProfile": {"authorizedIpRanges": ["198.51.100.0/24"]}}
    assert parse_cluster(az_shape).authorized_ip_ranges == ("198.51.100.0/24",)


def test_apscheduler_pool_executor_still_submits_through_do_submit_job() -> None:
    """bot/scheduler.py's SlotExecutor overrides APScheduler 3's private
    `BasePoolExecutor._do_submit_job(job, run_times)` to hand each digest its scheduled fire
    time (the key that makes a fire time post once across replicas)."""
    hook = getattr(BasePoolExecutor, "_do_submit_job", None)
    assert hook is not None, "APScheduler moved `_do_submit_job`: bot.scheduler.SlotExecutor"
    assert list(inspect.signature(hook).parameters) == ["self", "job", "run_times"], (
        "APScheduler changed `_do_submit_job`'s signature: bot.scheduler.SlotExecutor"
    )
    seen: dict[str, datetime | None] = {}
    ran = threading.Event()

    def job(scheduled_for: datetime | None = None) -> None:
        seen["at"] = scheduled_for
        ran.set()

    scheduler = BackgroundScheduler(executors={"default": SlotExecutor(1)}, timezone=UTC)
    due = (datetime.now(UTC) + timedelta(seconds=0.3)).replace(microsecond=0) + timedelta(seconds=1)
    # An interval that starts at `due` (not a DateTrigger): the job stays in the store after it
    # ran, so the scheduler thread never races shutdown removing a finished one-off job.
    trigger = IntervalTrigger(hours=1, start_date=due, timezone=UTC)
    scheduler.add_job(job, trigger=trigger, id="digest:test")
    scheduler.start()
    try:
        assert ran.wait(10), "the job never ran through SlotExecutor"
    finally:
        scheduler.shutdown(wait=True)
    assert seen["at"] == due, "SlotExecutor no longer hands the job its scheduled fire time"


def test_waitress_server_still_stops_through_its_trigger_and_socket_map() -> None:
    """bot/serve.py's HttpServer.stop closes waitress's sockets from its own loop thread
    through the private `server.trigger`, `server._map` and `wasyncore.dispatcher.close`
    (waitress has no public stop). If this fails, `serve` would hang on SIGTERM."""
    calls: list[str] = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = HttpServer(app).start()
    raw = server._server
    for name in ("_map", "trigger", "task_dispatcher"):
        assert hasattr(raw, name), f"waitress servers no longer have `{name}`: HttpServer.stop"
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/x", timeout=5) as r:
        assert r.read() == b"ok"
    server.stop(timeout_s=5)
    assert server._thread is not None and not server._thread.is_alive(), (
        "waitress's loop did not end after HttpServer.stop: the trigger/_map protocol changed"
    )
    assert calls == ["/x"]
