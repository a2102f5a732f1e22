"""Slack handlers: thin listeners registered on an app by `register(app, deps)`; parsing in
`handlers.parse`, access rules in `handlers.access`, the answer flow in `handlers.diagnose`."""

from handlers import actions, commands, mentions

HANDLER_MODULES = (commands, mentions, actions)

__all__ = ["HANDLER_MODULES"]
