"""pytest fixtures for the bot tests (loaded with `pytest_plugins = ["bot_fixtures"]`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bot_harness import Bot


@pytest.fixture
def bot(tmp_path: Path, redis_url: str) -> Iterator[Bot]:
    b = Bot(tmp_path, redis_url)
    try:
        yield b
    finally:
        b.stop()
