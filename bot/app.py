"""The Bolt app factory: `create_app(deps)` builds a Slack app and registers every handler
module on it (`register(app, deps)`). Nothing happens at import time; building the app calls
`auth.test` once (Bolt verifies the token), nothing else."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from slack_bolt import App, BoltRequest, BoltResponse

from bot.deps import Deps
from bot.executors import ContextExecutor
from bot.logs import new_request_id, request_context
from handlers import HANDLER_MODULES

log = logging.getLogger(__name__)


def create_app(deps: Deps, *, signing_secret: str | None = None, socket_mode: bool = False) -> App:
    """HTTP mode verifies Slack's signature (`signing_secret`, default `$SLACK_SIGNING_SECRET`);
    Socket Mode needs none. Listeners run on a pool sized by `deps.settings`; they only parse,
    authorize, ack and hand the work to `deps.executor`."""
    secret = signing_secret or os.environ.get("SLACK_SIGNING_SECRET")
    if not socket_mode and not secret:
        raise ValueError("HTTP mode needs SLACK_SIGNING_SECRET (Socket Mode needs SLACK_APP_TOKEN)")
    app = App(
        client=deps.client,
        signing_secret=secret or "",
        request_verification_enabled=not socket_mode,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        listener_executor=ContextExecutor(
            max_workers=deps.settings.listener_threads, thread_name_prefix="aksdiag-listener"
        ),
        logger=logging.getLogger("slack_bolt.App"),
    )
    app.use(_request_id)
    for module in HANDLER_MODULES:
        module.register(app, deps)

    @app.error
    def on_error(error: Exception, body: dict[str, object]) -> None:
        log.error("unhandled error in a listener: %s: %s", type(error).__name__, error)

    return app


def _request_id(request: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:
    """Every log line written while handling one Slack delivery carries the same id (the
    executors copy it into the work they run)."""
    retry = (request.headers.get("x-slack-retry-num") or [""])[0]
    with request_context(new_request_id()):
        if retry:
            log.info(
                "Slack retry %s (%s)",
                retry,
                (request.headers.get("x-slack-retry-reason") or [""])[0],
            )
        return next()
