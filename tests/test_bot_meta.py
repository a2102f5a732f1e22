"""Silences and digests from Slack: who may use them, what the channel sees, and how silenced
findings show up collapsed in answers."""

from __future__ import annotations

from bot_harness import ALICE, MALLORY, OPS, Bot, block_text, make_clusters

pytest_plugins = ["bot_fixtures"]
CODE = "apiserver.authorized-ip.client-excluded"


def _answer(bot, text, **kw):
    token, url = bot.response_url()
    ack = bot.command(text, response_url=url, **kw)
    assert ack.status == 200
    return bot.slack.wait_for(lambda: bot.slack.responses(token))[0]


def test_a_silenced_finding_shows_collapsed_with_who_why_and_until(bot):
    said = _answer(bot, f"silence {CODE} prod for 2h -- fix rolling out, INC-1234")
    assert said["response_type"] == "in_channel"
    assert f"<@UFAKEALICE> silenced *prod* `{CODE}`" in said["text"] and "(2h)" in said["text"]

    bot.command("apiserver prod")
    (parent,) = bot.finished_parents()
    assert "1 silenced" in block_text(parent) and "*CRITICAL*" not in block_text(parent)
    replies = bot.slack.replies(OPS, parent["ts"])
    collapsed = block_text(replies[-1])
    assert ":no_bell: 1 silenced" in collapsed and f"`{CODE}`" in collapsed
    assert (
        "by <@UFAKEALICE>" in collapsed
        and "fix rolling out, INC-1234" in collapsed
        and "until" in collapsed
    )

    listed = _answer(bot, "silences")
    assert "Active silences" in listed["text"] and CODE in listed["text"]
    ended = _answer(bot, f"unsilence {CODE} prod")
    assert "ended the silence" in ended["text"]
    assert "No silences are active" in _answer(bot, "silences")["text"]


def test_silence_needs_access_to_the_cluster_and_valid_words(bot):
    refused = _answer(bot, f"silence {CODE} vault -- not mine", user=MALLORY)
    assert "unknown cluster `vault`" in refused["text"]  # reads like a cluster that is not there
    bad = _answer(bot, "silence apiserver.nope prod -- x")
    assert "unknown finding code `apiserver.nope`" in bad["text"]
    no_reason = _answer(bot, f"silence {CODE} prod for 2h")
    assert "say why after `--`" in no_reason["text"]
    unknown = _answer(bot, f"silence {CODE} prdo -- x")
    assert "Did you mean `prod`?" in unknown["text"]


def test_digest_now_posts_in_the_digest_channel(bot):
    token, url = bot.response_url()
    bot.command("digest morning", response_url=url, channel="CFAKEELSEWHERE")
    texts = [
        r["text"]
        for r in bot.slack.wait_for(
            lambda: len(bot.slack.responses(token)) >= 2 and bot.slack.responses(token)
        )
    ]
    assert "Posting the *morning* digest in <#CFAKEOPS1>" in texts[0]
    assert "digest is posted in <#CFAKEOPS1>" in texts[1]
    assert bot.slack.top_level(OPS)  # the digest itself, in its channel


def test_digest_covering_a_restricted_cluster_is_refused(tmp_path, redis_url):
    config = make_clusters(tmp_path)
    config["digests"][0]["clusters"].append("vault")
    b = Bot(tmp_path, redis_url, config=config)
    try:
        ack = b.command("digest morning", user=MALLORY)
        nope = b.command("digest nope", user=MALLORY)
        # a digest Mallory may not post reads like one that does not exist, and no digest
        # she may not post is listed or suggested to her
        assert ack.json()["text"] == nope.json()["text"].replace("nope", "morning")
        assert (
            "vault" not in ack.json()["text"] and "Digests you may post: none" in ack.json()["text"]
        )
        alice = b.command("digest nope", user=ALICE).json()["text"]
        assert "Digests you may post: `morning`" in alice
        assert b.slack.top_level(OPS) == []
    finally:
        b.stop()
