"""Per-user and per-channel limits (issue 15), over the wire with the production defaults: a
flood from one user gets a handful of threads and an ephemeral "not now" for the rest, and
another user's first answer in another channel is not queued behind the flood; the limits
are shared by replicas through Redis. Assertions are on the emulator's calls (order and
counts), never on wall-clock time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from bot_harness import ALICE, BOB, MALLORY, OPS, OTHER, Bot

from bot.limits import LimitSettings

DEFAULTS = LimitSettings()
NOT_NOW = "Not now"


def _parents(bot: Bot, channel: str) -> list[dict]:
    return [
        c.params
        for c in bot.slack.calls_to("chat.postMessage")
        if c.params.get("channel") == channel and not c.params.get("thread_ts")
    ]


def test_fifty_health_commands_from_one_user_get_bounded_posts_and_do_not_delay_another_user(
    tmp_path, redis_url
):
    bot = Bot(tmp_path, redis_url, limits=DEFAULTS)
    try:
        urls = [bot.response_url() for _ in range(50)]
        with ThreadPoolExecutor(10) as pool:
            acks = list(
                pool.map(
                    lambda tu: bot.command("health prod", user=MALLORY, response_url=tu[1]), urls
                )
            )
        assert all(a.status == 200 for a in acks)
        bot.command("apiserver staging", user=BOB, channel=OTHER)  # after the whole flood
        assert len(bot.finished_parents(OTHER, timeout=60)) == 1

        def refused() -> list[dict]:
            return [r for t, _ in urls for r in bot.slack.responses(t) if NOT_NOW in r["text"]]

        def settled() -> bool:  # every command was either refused or answered in the channel
            return len(refused()) + len(bot.slack.top_level(OPS)) >= 50

        bot.slack.wait_for(settled, timeout=60)
        refusals = refused()
        admitted = 50 - len(refusals)
        assert 1 <= admitted <= DEFAULTS.user_per_minute
        assert all(r["response_type"] == "ephemeral" for r in refusals)
        assert "diagnoses" in refusals[0]["text"] and "ask again" in refusals[0]["text"].lower()
        bot.finished_parents(OPS, count=admitted, timeout=60)
        flood = _parents(bot, OPS)
        assert len(flood) <= DEFAULTS.user_per_minute  # threads, not 50 of them
        posts = [c for c in bot.slack.calls_to("chat.postMessage") if c.params["channel"] == OPS]
        per_thread = max(1, len(posts) // max(1, len(flood)))
        assert len(posts) <= DEFAULTS.user_per_minute * per_thread
        # Bob's answer is not queued behind the flood: at most the admitted few of Mallory's
        # threads were started before Bob's first post
        calls = bot.slack.calls_to("chat.postMessage")
        bob_first = next(i for i, c in enumerate(calls) if c.params["channel"] == OTHER)
        before = [
            c
            for c in calls[:bob_first]
            if c.params["channel"] == OPS and not c.params.get("thread_ts")
        ]
        assert len(before) <= DEFAULTS.user_per_minute
    finally:
        bot.stop()


def test_diagnoses_in_flight_are_limited_per_user_with_an_ephemeral_answer_then_freed(
    tmp_path, redis_url
):
    limits = LimitSettings(user_in_flight=2, channel_in_flight=3)
    bot = Bot(tmp_path, redis_url, limits=limits)
    try:
        gate = bot.slack.hold("chat.postMessage")  # answers stay in flight until released
        bot.command("apiserver prod", user=MALLORY)
        bot.command("health staging", user=MALLORY)
        assert gate.arrived.wait(10)
        token, url = bot.response_url()
        bot.command("pod-ip prod", user=MALLORY, response_url=url)
        (third,) = bot.slack.wait_for(lambda: bot.slack.responses(token))
        assert third["response_type"] == "ephemeral"
        assert "you have 2 diagnoses or digests running already" in third["text"]
        token, url = bot.response_url()  # another user in the same channel may still ask
        bot.command("apiserver staging", user=ALICE, response_url=url)
        token2, url2 = bot.response_url()  # the channel's limit (3) is now reached
        bot.command("apiserver staging", user=BOB, response_url=url2)
        (channel_full,) = bot.slack.wait_for(lambda: bot.slack.responses(token2))
        assert "3 diagnoses or digests are running in this channel already" in channel_full["text"]
        gate.release()
        bot.finished_parents(OPS, count=3, timeout=30)
        bot.command("pod-ip prod", user=MALLORY)  # the slots were freed when they answered
        bot.finished_parents(OPS, count=4, timeout=30)
    finally:
        bot.stop()


def test_two_replicas_share_the_limits_through_redis(tmp_path, redis_url):
    limits = LimitSettings(user_in_flight=2)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = Bot(tmp_path / "one", redis_url, limits=limits)
    two = Bot(tmp_path / "two", redis_url, limits=limits)
    try:
        gates = [one.slack.hold("chat.postMessage"), two.slack.hold("chat.postMessage")]
        one.command("apiserver prod", user=MALLORY)
        two.command("apiserver staging", user=MALLORY)
        assert all(g.arrived.wait(10) for g in gates)
        token, url = two.response_url()
        two.command("pod-ip prod", user=MALLORY, response_url=url)  # the third, on either one
        (said,) = two.slack.wait_for(lambda: two.slack.responses(token))
        assert "you have 2 diagnoses or digests running already" in said["text"]
        for g in gates:
            g.release()
        one.finished_parents(OPS)
        two.finished_parents(OPS)
    finally:
        one.stop()
        two.stop()


def test_digests_posted_on_demand_count_against_the_same_limits(tmp_path, redis_url):
    bot = Bot(tmp_path, redis_url, limits=DEFAULTS)
    try:
        urls = [bot.response_url() for _ in range(15)]
        with ThreadPoolExecutor(5) as pool:
            list(
                pool.map(
                    lambda tu: bot.command("digest morning", user=ALICE, response_url=tu[1]), urls
                )
            )

        def final(token: str) -> str:
            said = [r["text"] for r in bot.slack.responses(token)]
            return next((t for t in said if NOT_NOW in t or "digest is posted" in t), "")

        def finals() -> list[str]:
            got = [final(t) for t, _ in urls]
            return got if all(got) else []

        texts = bot.slack.wait_for(finals, timeout=60)
        posted = [t for t in texts if "digest is posted" in t]
        assert 1 <= len(posted) <= DEFAULTS.user_per_minute
        assert len(texts) - len(posted) >= 15 - DEFAULTS.user_per_minute
        assert len(_parents(bot, OPS)) <= DEFAULTS.user_per_minute  # the digests themselves
    finally:
        bot.stop()
