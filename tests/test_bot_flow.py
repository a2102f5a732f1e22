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
    assert "running" in first_post["text"] and first_post.get("thread_ts") is None
    text = block_text(parent)
    assert "`apiserver` on *prod* for <@UFAKEALICE>" in text
    assert "*CRITICAL* — 1 critical" in text
    assert "run `" in text and "took" in text
    assert set(buttons(parent)) == {RERUN, COMMANDS}
    assert json.loads(buttons(parent)[RERUN]) == {"s": "apiserver", "c": "prod", "a": {}}
    assert parent["updates"] == 1  # running -> verdict

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
    assert "cached answer" in text and "s old" in text and "Re-run" in text
    assert RERUN in buttons(second)
    assert bot.metric("aksdiag_cluster_collections_total", cluster="prod") == 1
    assert bot.metric("aksdiag_cache_hits_total", scenario="apiserver") == 1
    assert CODE in block_text(bot.slack.replies(OPS, second["ts"])[0])


def test_rerun_button_reads_the_cluster_again_and_answers_in_the_thread(bot):
    bot.command("apiserver prod")
    (parent,) = bot.finished_parents()
    token, url = bot.response_url()
    ack = bot.client.action(
        RERUN, buttons(parent)[RERUN], message_ts=parent["ts"], response_url=url
    )
    assert ack.status == 200

    def rerun_done():
        return [m for m in bot.slack.replies(OPS, parent["ts"]) if RERUN in buttons(m)]

    (rerun,) = bot.slack.wait_for(rerun_done)
    assert "*CRITICAL*" in block_text(rerun) and "cached" not in block_text(rerun)
    assert bot.metric("aksdiag_cluster_collections_total", cluster="prod") == 2
    assert bot.slack.responses(token) == []


def test_show_commands_posts_every_command_in_the_thread(bot):
    bot.command("apiserver prod")
    (parent,) = bot.finished_parents()
    before = len(bot.slack.replies(OPS, parent["ts"]))
    bot.client.action(COMMANDS, buttons(parent)[COMMANDS], message_ts=parent["ts"])
    replies = bot.slack.wait_for(lambda: bot.slack.replies(OPS, parent["ts"])[before:])
    text = block_text(replies[0])
    assert f"`{CODE}`" in text
    assert "az aks show --resource-group rg-prod --name prod" in text
    assert bot.metric("aksdiag_cluster_collections_total", cluster="prod") == 1  # cached report


def test_mention_in_a_thread_answers_in_that_thread(bot):
    ack = bot.client.mention("<@UBOTFAKE1> apiserver prod", thread_ts="1690000000.000001")
    assert ack.status == 200

    def answered():
        return [m for m in bot.slack.replies(OPS, "1690000000.000001") if RERUN in buttons(m)]

    (parent,) = bot.slack.wait_for(answered)
    replies = bot.slack.replies(OPS, "1690000000.000001")
    assert any(CODE in block_text(m) for m in replies if m is not parent)
    assert bot.slack.top_level(OPS) == []  # nothing outside the thread


def test_mention_at_top_level_posts_a_parent_with_replies(bot):
    bot.client.mention("<@UBOTFAKE1>   service   prod   shop/web")
    (parent,) = bot.finished_parents()
    assert "`service` on *prod*" in block_text(parent)
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
        assert len(replies) >= 2
        for m in replies:
            assert len(m["blocks"]) <= 50
            assert all(len(blk.get("text", {}).get("text", "")) <= 3000 for blk in m["blocks"])
            assert len(json.dumps(m["blocks"])) <= 13000
        shown = sum(block_text(m).count(f"`{CODE}`") for m in replies)
        assert shown == 60
    finally:
        b.stop()


def test_a_message_slack_rejects_as_too_long_arrives_as_a_file(bot):
    bot.slack.fail("chat.postMessage", "msg_too_long", when=lambda p: bool(p.get("thread_ts")))
    bot.command("apiserver prod")
    uploads = bot.slack.wait_for(lambda: bot.slack.calls_to("upload"))
    (parent,) = bot.slack.wait_for(lambda: [m for m in bot.slack.top_level(OPS) if buttons(m)])
    assert CODE in uploads[0].params["content"]
    (done,) = bot.slack.calls_to("files.completeUploadExternal")
    assert done.params["thread_ts"] == parent["ts"] and done.params["channel_id"] == OPS
    assert (
        bot.metric(
            "aksdiag_slack_api_errors_total", method="chat.postMessage", error="msg_too_long"
        )
        == 1
    )
