"""The ack-latency baseline: a bare Bolt app whose slash command listener only acks, served on
`/slack/events` by the same HTTP server as the bot (`bot.serve.HttpServer`: waitress, as many
threads as `aksdiag serve` gives it), in a process of its own.

Like the bot's, its WebClient points at the Slack emulator (Bolt checks the token there once).

    python -m bench.bare_bolt SIGNING_SECRET SLACK_API_URL [THREADS]   # prints {"port": ...}
"""

from __future__ import annotations

import json
import sys

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_emulator import BOT_TOKEN
from slack_sdk import WebClient

import bench  # noqa: F401  (tests/ on sys.path)
from bot.deps import Settings
from bot.serve import HttpServer


def bare_app(signing_secret: str, api_url: str, command: str = "/aksdiag") -> App:
    app = App(client=WebClient(token=BOT_TOKEN, base_url=api_url), signing_secret=signing_secret)

    @app.command(command)
    def only_ack(ack: Ack) -> None:
        ack()

    return app


def _main() -> None:
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else Settings().listener_threads * 2
    app = bare_app(sys.argv[1], sys.argv[2])
    server = HttpServer(SlackRequestHandler(app), threads=threads).start()
    sys.stdout.write(json.dumps({"port": server.port}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    _main()
