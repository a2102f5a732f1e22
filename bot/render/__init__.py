"""Pure renderers: a Report in, text / Block Kit / JSON out. Senders live elsewhere."""

from bot.render.blocks import SlackMessage, render_slack, report_payload
from bot.render.text import render_text
from bot.render.thread import thread_messages

__all__ = ["SlackMessage", "render_slack", "render_text", "report_payload", "thread_messages"]
