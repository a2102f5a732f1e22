"""The Bolt app factory: `create_app(deps)` builds a Slack app and registers every handler
module on it (`register(app, deps)`). Nothing happens at import time; building the app calls
`auth.test` once (Bolt verifies the token; when Slack was unreachable at start, the first
request does), nothing else. Each listener opens a request id
(bot.logs) that follows the work onto the executors."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial

from slack_bolt import App, BoltRequest, BoltResponse

from bot.deps import Deps
from bot.executors import ContextExecutor
from handlers import HANDLER_MODULES
from handlers.diagnose import tell_interrupted

log = logging.getLogger(__name__)


def create_app(
    deps: Deps,
    *,
    signing_secret: str | None = None,
    socket_mode: bool = False,
    verify_token: bool = True,
) -> App:
    """HTTP mode verifies Slack's signature (`signing_secret`, default `$SLACK_SIGNING_SECRET`);
    Socket Mode needs none. Listeners run on a pool sized by `deps.settings`; they only parse,
    authorize, ack and hand the work to `deps.executor`. `verify_token=False` (Slack was
    unreachable at start) leaves Bolt's `auth.test` to the first request."""
    secret = signing_secret or os.environ.get("SLACK_SIGNING_SECRET")
    bolt_log = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _DropClientTokenWarning) for f in bolt_log.filters):
        bolt_log.addFilter(_DropClientTokenWarning())
    if not socket_mode and not secret:
        raise ValueError("HTTP mode needs SLACK_SIGNING_SECRET (Socket Mode needs SLACK_APP_TOKEN)")
    app = App(
        client=deps.client,
        signing_secret=secret or "",
        request_verification_enabled=not socket_mode,
        token_verification_enabled=verify_token,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
        listener_executor=ContextExecutor(
            max_workers=deps.settings.listener_threads, thread_name_prefix="aksdiag-listener"
        ),
        logger=bolt_log,
    )
    app.use(_log_retries)
    for module in HANDLER_MODULES:
        module.register(app, deps)
    if deps.inflight is not None:  # answers a dead replica left behind: tell their requesters
        deps.inflight.on_orphan = partial(tell_interrupted, deps)

    @app.error
    def on_error(error: Exception, body: dict[str, object]) -> None:
        log.error("unhandled error in a listener: %s: %s", type(error).__name__, error)

    return app


def _log_retries(request: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:
    """Slack redelivers an event it thinks was lost; the handlers drop duplicates by event id."""
    retry = (request.headers.get("x-slack-retry-num") or [""])[0]
    if retry:
        reason = (request.headers.get("x-slack-retry-reason") or [""])[0]
        log.info("Slack retry %s (%s)", retry, reason)
    return next()


class _DropClientTokenWarning(logging.Filter):
    """Bolt warns that `SLACK_BOT_TOKEN` is unused when a client is given: by design here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()
