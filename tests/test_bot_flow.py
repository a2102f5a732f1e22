"""The bot as an on-call engineer meets it: over signed HTTP into the real Bolt app, answers
read back from the Slack emulator. Ack first, then the threaded answer; cache; buttons;
mentions; history."""

from __future__ import annotations

import json

from bot_harness import ALICE, OPS, block_text, buttons

pytest_plugins = ["bot_fixtures"]
RERUN, COMMANDS = "aksdiag_rerun", "aksdiag_commands"
CODE = "apiserver.authorized-ip.client-excluded"


def test_command_is_acked_then_answered_in_a_thread_worst_first(bot):
    token, url = bot.response_url()
    ack = bot.command("apiserver prod", response_url=url)
    assert ack.status == 200 and ack.body == ""  # nothing to show: the parent message follows

    (parent,) = bot.finished_parents()
    first_post = bot.slack.calls_to("chat.postMessage")[0].params
    # Ready within 2 s: the answer is the first message (no "running"), and its notification
    # text says what is wrong.
    assert first_post["text"].startswith("CRITICAL: Client 198.51.100.0/24 is not in the API")
    assert first_post["text"].endswith("— apiserver prod") and first_post.get("thread_ts") is None
    text = block_text(parent)
    assert "`apiserver prod` · for <@UFAKEALICE>" in text
    assert "*CRITICAL* · *Client 198.51.100.0/24" in text and "1 critical" in text
    assert "run `" in text and "took" in text
    assert set(buttons(parent)) == {RERUN, COMMANDS}
    assert json.loads(buttons(parent)[RERUN]) == {"s": "apiserver", "c": "prod", "a": {}}
    assert parent["updates"] == 0

    replies = bot.slack.replies(OPS, parent["ts"])
    assert replies, "findings are posted as thread replies"
    assert CODE in block_text(replies[0])
    assert "az aks update --resource-group rg-prod --name prod" in block_text(replies[0])
    assert bot.slack.responses(token) == []  # nothing went wrong, nothing ephemeral


def test_identical_command_within_ttl_is_a_cached_answer_that_says_its_age(bot):
    bot.command("apiserver prod")
    bot.finished_parents(count=1)
    bot.command("api prod")  # an alias is the same request
    second = bot.finished_parents(count=2)[1]
    text = block_text(second)
    assert "cached" in text and " ago (Re-run reads it again)" in text
    assert RERUN in buttons(second)
    assert bot.metric("aksdiag_cluster_collections_total", cluster="prod") == 1
    assert bot.metric("aksdiag_cache_hits_total", scenario="apiserver") == 1
    # the thread is not posted again: one reply points to the first answer
    first = bot.finished_parents(count=2)[0]
    (reply,) = bot.slack.wait_for(lambda: bot.slack.replies(OPS, second["ts"]))
    link = f"https://example.slack.com/archives/{OPS}/p{first['ts'].replace('.', '')}"
    assert ":recycle: Same answer as <" + link in block_text(reply)
    assert CODE not in block_text(reply)


def test_rerun_button_reads_the_cluster_again_and_answers_in_the_thread(bot):
    bot.command("apiserver prod")
    (parent,) = bot.finished_parents()
    token, url = bot.response_url()
    ack = bot.client.action(
        RERUN, buttons(parent)[RERUN], message_ts=parent["ts"], response_url=url
    )
    assert ack.status == 200

    def rerun_done():
        return [
            m for m in bot.slack.top_level(OPS) if m["updates"] and "re-run by" in block_text(m)
        ]

    (updated,) = bot.slack.wait_for(rerun_done)  # the original answer, updated in place
    text = block_text(updated)
    assert updated["ts"] == parent["ts"] and "*CRITICAL*" in text and "cached" not in text
    assert "re-run by <@UFAKEALICE>" in text and "resolved 0, still 1, new 0" in text
    replies = bot.slack.wait_for(
        lambda: [m for m in bot.slack.replies(OPS, parent["ts"]) if "Re-run by" in block_text(m)]
    )
    assert "Nothing changed." in block_text(replies[0])  # only the difference, no second answer
    assert not any(RERUN in buttons(m) for m in bot.slack.replies(OPS, parent["ts"]))
    assert bot.metric("aksdiag_cluster_collections_total", cluster="prod") == 2
    assert bot.slack.responses(token) == []


def test_show_commands_answers_privately_with_each_step(bot):
    bot.command("apiserver prod")
    (parent,) = bot.finished_parents()
    before = len(bot.slack.replies(OPS, parent["ts"]))
    token, url = bot.response_url()
    bot.client.action(
        COMMANDS, buttons(parent)[COMMANDS], message_ts=parent["ts"], response_url=url
    )
    (answer, *_) = bot.slack.wait_for(lambda: bot.slack.responses(token))
    assert answer["response_type"] == "ephemeral"
    assert len(bot.slack.replies(OPS, parent["ts"])) == before  # nothing public
    text = block_text(answer)
    assert f"`{CODE}`" in text
    assert "az aks show --resource-group rg-prod --name prod" in text
    assert bot.metric("aksdiag_cluster_collections_total", cluster="prod") == 1  # cached report


def test_mention_in_a_thread_answers_in_that_thread(bot):
    ack = bot.client.mention("<@UBOTFAKE1> apiserver prod", thread_ts="1690000000.000001")
    assert ack.status == 200

    def answered():
        return [m for m in bot.slack.replies(OPS, "1690000000.000001") if RERUN in buttons(m)]

    (parent,) = bot.slack.wait_for(answered)
    bot.slack.wait_for(  # the answer comes first, its causes right after it
        lambda: [
            m
            for m in bot.slack.replies(OPS, "1690000000.000001")
            if m is not parent and CODE in block_text(m)
        ]
    )
    assert bot.slack.top_level(OPS) == []  # nothing outside the thread


def test_mention_at_top_level_posts_a_parent_with_replies(bot):
    bot.client.mention("<@UBOTFAKE1>   service   prod   shop/web")
    (parent,) = bot.finished_parents()
    assert "`service prod shop/web`" in block_text(parent)
    assert json.loads(buttons(parent)[RERUN])["a"] == {"service": "shop/web"}
    assert bot.slack.replies(OPS, parent["ts"])


def test_help_and_clusters_answer_in_the_ack(bot):
    help_ack = bot.command("help")
    assert "apiserver CLUSTER [--from IP[,IP...]]" in help_ack.json()["text"]
    assert "history CLUSTER" in help_ack.json()["text"]
    empty = bot.command("")
    assert "*Scenarios*" in empty.json()["text"]
    clusters = bot.command("clusters", user=ALICE).json()["text"]
    assert "`prod`" in clusters and "`vault`" in clusters  # Alice is on vault's allow list
    other = bot.command("clusters", user="UFAKEMALLORY").json()["text"]
    assert "`prod`" in other and "`vault`" not in other
    assert "restricted" not in other and "more" not in other  # no count of hidden clusters


def test_history_lists_the_runs_of_a_cluster(bot):
    bot.command("apiserver prod")
    bot.finished_parents()
    token, url = bot.response_url()
    ack = bot.command("history prod", response_url=url)
    assert ack.status == 200 and ack.body == ""
    (answer,) = bot.slack.wait_for(lambda: bot.slack.responses(token))
    assert answer["response_type"] == "ephemeral"
    assert "Latest runs on prod" in answer["text"]
    assert "`apiserver`" in answer["text"] and "*CRITICAL*" in answer["text"]
    assert "fresh" in answer["text"] and "by <@UFAKEALICE>" in answer["text"]


def test_many_findings_are_split_across_replies_within_slack_limits(tmp_path, redis_url):
    from bot_harness import Bot, make_clusters

    config = make_clusters(tmp_path)
    config["clusters"]["prod"]["operator_networks"] = [f"198.51.{i}.0/24" for i in range(60)]
    b = Bot(tmp_path, redis_url, config=config)
    try:
        b.command("apiserver prod")
        (parent,) = b.finished_parents()
        assert "60 critical" in block_text(parent)
        replies = b.slack.replies(OPS, parent["ts"])
        assert replies
        for m in replies:
            assert len(m["blocks"]) <= 50
            assert all(len(blk.get("text", {}).get("text", "")) <= 3000 for blk in m["blocks"])
            assert len(json.dumps(m["blocks"])) <= 13000
        # 60 repeats of one code are one cause listing its subjects, not 60 sections
        text = "\n".join(block_text(m) for m in replies)
        assert "(and 59 more clients)" in text and "and 55 more" in text
    finally:
        b.stop()


def test_a_message_slack_rejects_as_too_long_arrives_as_a_file(bot):
    bot.slack.fail(
        "chat.postMessage",
        "msg_too_long",
        when=lambda p: bool(p.get("thread_ts") and p.get("blocks")),
    )
    bot.command("apiserver prod")
    uploads = bot.slack.wait_for(lambda: bot.slack.calls_to("upload"))
    (parent,) = bot.slack.wait_for(lambda: [m for m in bot.slack.top_level(OPS) if buttons(m)])
    assert CODE in uploads[0].params["content"]
    (done,) = bot.slack.wait_for(lambda: bot.slack.calls_to("files.completeUploadExternal"))
    assert done.params["thread_ts"] == parent["ts"] and done.params["channel_id"] == OPS
    assert (
        bot.metric(
            "aksdiag_slack_api_errors_total", method="chat.postMessage", error="msg_too_long"
        )
        == 1
    )
