"""The Slack bot end to end: real slack-bolt and slack-sdk against a fake Slack on 127.0.0.1.

Events and slash commands are signed exactly as Slack signs them and POSTed to the bot's
aiohttp server; the bot's Web API calls land in ``FakeSlack``, which keeps the thread as
a user would see it. A channel mention is delivered twice (``app_mention`` and
``message``), as Slack does, so every mention also checks that it is answered once.
Button clicks are ``block_actions`` payloads, form-encoded and signed like slash commands.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import time
from collections.abc import Callable
from contextlib import suppress

import aiohttp
import pytest
import yaml

from bots.slack import run
from bots.slack.app import EVENTS_PATH, SLASH_COMMANDS, SlackBot
from bots.slack.replies import LIMIT, PLACEHOLDER
from core.conversations.commands import COMMANDS
from core.conversations.service import ConversationService
from core.conversations.wording import SORRY
from core.errors import SettingsError
from core.runtime import open_service
from core.settings import Settings
from tests import ROOT
from tests.bots.slack.harness import (
    REQUEST,
    SECRET,
    Harness,
    _id,
    ask_to_post,
    decided,
    serve,
    sign,
)
from tests.bugs import BUG, break_verb, internal_errors, logged_bug
from tests.conftest import FakeWebhook
from tests.fakes.openai_server import Fail, FakeOpenAI, Reply
from tests.fakes.slack_server import FakeSlack, wait_until

# -- conversations in threads ----------------------------------------------------------


async def test_mention_is_answered_in_its_thread_with_a_working_indicator(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    """Where Slack offers neither streaming nor a status line, a placeholder shows the work."""
    slack.fake.refuse_streaming = slack.fake.refuse_status = True
    channel = _id("C")
    fake_llm.hold = asyncio.Event()
    ts = await slack.mention(channel, "q1")
    await wait_until(lambda: slack.fake.thread(channel, ts) == [PLACEHOLDER], what="placeholder")
    fake_llm.hold.set()
    assert await slack.answers(channel, ts) == ["heard: q1"]
    [post] = slack.fake.made("chat.postMessage")
    assert post.params["thread_ts"] == ts and post.token == "xoxb-test-token"
    assert slack.fake.thread(channel, None) == []
    await slack.settled(2)
    assert len(fake_llm.requests) == 1, "the app_mention and message twins were both answered"


async def test_follow_up_in_the_thread_needs_no_mention(slack: Harness) -> None:
    channel = _id("C")
    ts = await slack.mention(channel, "q1")
    await slack.answers(channel, ts)
    await slack.say(channel, "q2", thread_ts=ts)
    assert await slack.answers(channel, ts, 2) == ["heard: q1", "heard: q1 | q2"]


async def test_two_threads_are_isolated(slack: Harness) -> None:
    channel = _id("C")
    first = await slack.mention(channel, "apples")
    second = await slack.mention(channel, "pears")
    await slack.answers(channel, first)
    await slack.answers(channel, second)
    await slack.say(channel, "more apples", thread_ts=first)
    await slack.say(channel, "more pears", thread_ts=second)
    assert (await slack.answers(channel, first, 2))[-1] == "heard: apples | more apples"
    assert (await slack.answers(channel, second, 2))[-1] == "heard: pears | more pears"


async def test_direct_messages_top_level_continues_and_a_dm_thread_is_separate(
    slack: Harness,
) -> None:
    dm = _id("D")
    first = await slack.say(dm, "hi")
    assert await slack.answers(dm, None) == ["heard: hi"]
    await slack.say(dm, "again")
    assert (await slack.answers(dm, None, 2))[-1] == "heard: hi | again"
    await slack.say(dm, "aside", thread_ts=first)
    assert await slack.answers(dm, first) == ["heard: aside"]


async def test_bots_edits_joins_and_strangers_threads_are_ignored(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    fake = slack.fake
    own = slack.message(channel, "I am the bot", user=fake.bot_user)
    own["bot_id"] = fake.bot_id
    assert await slack.deliver(slack.envelope(own)) == 200  # dropped by Bolt before listeners
    ignored = [
        slack.message(channel, f"<@{fake.bot_user}> deploy finished", kind="bot_message"),
        slack.message(channel, "", kind="message_changed"),
        slack.message(channel, "", kind="channel_join"),
        slack.message(channel, "not for the bot", thread_ts=fake.next_ts()),  # nobody's thread
        slack.message(channel, "top level chatter"),
    ]
    ignored[0].pop("user")
    for field in ("user", "text"):  # an edit carries them inside "message" only
        ignored[1].pop(field)
    ignored[1]["message"]["text"] = f"<@{fake.bot_user}> edited question"
    for event in ignored:
        assert await slack.deliver(slack.envelope(event)) == 200
    await slack.settled(len(ignored))
    assert fake.messages == [] and fake_llm.requests == []


async def test_bad_signature_and_stale_timestamp_are_rejected(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    body = slack.envelope(slack.message(channel, f"<@{slack.fake.bot_user}> hi"))
    assert await slack.deliver(body, secret="not-the-secret") == 401
    assert await slack.deliver(body, age=6 * 60) == 401
    assert slack.bot is not None and slack.bot.handled == 0
    assert slack.fake.calls == [] and fake_llm.requests == []


async def test_retried_delivery_is_answered_once(slack: Harness, fake_llm: FakeOpenAI) -> None:
    channel = _id("C")
    body = slack.envelope(slack.message(channel, f"<@{slack.fake.bot_user}> once"))
    assert await slack.deliver(body) == 200
    ts = body["event"]["ts"]
    assert await slack.answers(channel, ts) == ["heard: once"]
    assert await slack.deliver(body, retry=1) == 200
    await slack.settled(2)
    assert slack.fake.thread(channel, ts) == ["heard: once"]
    assert len(fake_llm.requests) == 1


async def test_two_instances_sharing_the_database_answer_once(
    slack: Harness, slack_settings: Settings, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    body = slack.envelope(slack.message(channel, f"<@{slack.fake.bot_user}> only one of you"))
    async with (
        open_service(slack_settings) as other_service,
        serve(slack_settings, other_service, slack.fake) as other,
    ):
        statuses = await asyncio.gather(slack.deliver(body), slack.deliver(body, url=other.url))
        assert list(statuses) == [200, 200]
        await slack.settled(1)
        await other.settled(1)
    assert slack.fake.thread(channel, body["event"]["ts"]) == ["heard: only one of you"]
    assert len(fake_llm.requests) == 1


async def test_allow_lists_limit_channels_and_users(
    make_settings: Callable[..., Settings], service: ConversationService, fake_slack: FakeSlack,
    fake_llm: FakeOpenAI,
) -> None:
    allowed, other = _id("C"), _id("C")
    member = _id("U")
    settings = make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake_slack.api_url,
        SLACK_ALLOWED_CHANNELS=f"{allowed}, CNOTUSED", SLACK_ALLOWED_USERS=member,
    )
    async with serve(settings, service, fake_slack) as slack:
        outsider_ts = await slack.mention(allowed, "let me in")  # slack.user is not listed
        elsewhere_ts = await slack.mention(other, "over here")
        slack.user = member
        ts = await slack.mention(allowed, "hello")
        assert await slack.answers(allowed, ts) == ["heard: hello"]
        await slack.settled(6)
        assert fake_slack.thread(allowed, outsider_ts) == [] and fake_slack.thread(other, elsewhere_ts) == []
        refused = await slack.command("history", "", other)
        assert refused == "Backtrack is not enabled for you in this channel"
    assert len(fake_llm.requests) == 1


# -- commands --------------------------------------------------------------------------


async def test_history_and_rewind_inside_a_thread_never_reach_the_model(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    ts = await slack.mention(channel, "q1")
    await slack.answers(channel, ts)
    await slack.say(channel, "q2", thread_ts=ts)
    await slack.answers(channel, ts, 2)
    asked = len(fake_llm.requests)

    await slack.say(channel, "!history", thread_ts=ts)
    history = (await slack.answers(channel, ts, 3))[-1]
    assert "1. q1" in history and "2. q2" in history

    await slack.mention(channel, "!rewind 1", thread_ts=ts)
    rewind = (await slack.answers(channel, ts, 4))[-1]
    assert rewind.startswith("Rewound 1 turn.") and "2. q2" in rewind
    assert "It now ends with: 1. q1" in rewind
    assert len(fake_llm.requests) == asked

    await slack.say(channel, "q3", thread_ts=ts)
    assert (await slack.answers(channel, ts, 5))[-1] == "heard: q1 | q3"


async def test_retry_edit_and_branch_in_a_thread_post_the_new_version_there(slack: Harness) -> None:
    channel = _id("C")
    ts = await slack.mention(channel, "q1")
    await slack.answers(channel, ts)
    await slack.say(channel, "q2", thread_ts=ts)
    await slack.answers(channel, ts, 2)

    await slack.say(channel, "!retry", thread_ts=ts)
    retried = (await slack.answers(channel, ts, 3))[-1]
    assert retried.startswith("heard: q1 | q2") and "Version 2 of 2 of turn 2" in retried
    await slack.say(channel, "!edit 1 Q1", thread_ts=ts)
    edited = (await slack.answers(channel, ts, 4))[-1]
    assert edited.startswith("heard: Q1") and "Version 2 of 2 of turn 1" in edited
    await slack.say(channel, "!branch 1", thread_ts=ts)
    assert (await slack.answers(channel, ts, 5))[-1].startswith("Switched to version 1 of 2 of turn 1")
    await slack.say(channel, "q3", thread_ts=ts)
    assert (await slack.answers(channel, ts, 6))[-1] == "heard: q1 | q2 | q3"  # the retried turn 2's branch


async def test_slash_history_and_rewind_act_on_the_latest_conversation_or_a_link(
    slack: Harness,
) -> None:
    channel, elsewhere = _id("C"), _id("C")
    ts = await slack.mention(channel, "q1")
    await slack.answers(channel, ts)
    await slack.say(channel, "q2", thread_ts=ts)
    await slack.answers(channel, ts, 2)

    history = await slack.command("history", "", channel)
    assert "“q1”" in history and "1. q1" in history and "2. q2" in history

    rewind = await slack.command("rewind", "1", channel)
    assert "Rewound 1 turn." in rewind and "It now ends with: 1. q1" in rewind

    link = f"https://example.slack.com/archives/{channel}/p{ts.replace('.', '')}"
    by_link = await slack.command("history", f"5 <{link}>", channel)
    assert "1. q1" in by_link and "q2" not in by_link

    reply_link = f"{link}?thread_ts={ts}&cid={channel}"
    refused = await slack.command("history", reply_link, elsewhere)
    assert refused.startswith("That link points to another channel")
    assert (await slack.command("rewind", "", elsewhere)).startswith("You have no conversation")
    assert len(slack.fake.thread(channel, ts)) == 2, "slash commands answer only the invoker"


# -- answers, failures, transport --------------------------------------------------------


@pytest.mark.parametrize("native", [True, False], ids=["streamed", "edited"])
async def test_long_answer_is_split_under_the_limit_with_code_blocks_intact(
    slack: Harness, fake_llm: FakeOpenAI, native: bool
) -> None:
    slack.fake.refuse_streaming = slack.fake.refuse_status = not native
    code = "\n".join(f"    total = total + {i}  # step {i}" for i in range(80))
    prose = " ".join(f"word{i}" for i in range(400))
    text = f"{prose}\n\n```python\n{code}\n```\n\n{prose}\n\nThe end."
    fake_llm.queue(Reply(text))
    channel = _id("C")
    ts = await slack.mention(channel, "write a lot")
    await slack.settled(2)
    pieces = slack.fake.thread(channel, ts)
    assert len(pieces) >= 3 and PLACEHOLDER not in pieces
    assert all(len(p) <= LIMIT for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces), "a piece cut a code block open"
    joined = "\n".join(pieces)
    assert all(f"total = total + {i}  # step {i}" in joined for i in range(80))
    assert pieces[-1].endswith("The end.")
    first = slack.fake.messages[0]
    if native:
        assert len(slack.fake.made("chat.startStream")) == len(pieces) and not first.edits
    else:
        assert first.edits[0] == PLACEHOLDER, "the placeholder did not become the first piece"


async def test_model_failure_is_reported_and_the_conversation_recovers(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    ts = await slack.mention(channel, "q1")
    await slack.answers(channel, ts)
    fake_llm.queue(Fail(500))
    await slack.say(channel, "q2", thread_ts=ts)
    error = (await slack.answers(channel, ts, 2))[-1]
    assert error == "The assistant failed to answer; please try again."
    await slack.say(channel, "q3", thread_ts=ts)
    assert (await slack.answers(channel, ts, 3))[-1] == "heard: q1 | q3"


async def test_rate_limited_post_is_retried(slack: Harness) -> None:
    slack.fake.refuse_streaming = True
    slack.fake.rate_limit("chat.postMessage", 1)
    channel = _id("C")
    ts = await slack.mention(channel, "patience")
    assert await slack.answers(channel, ts) == ["heard: patience"]
    assert [c.status for c in slack.fake.made("chat.postMessage")] == [429, 200]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_http_mode_answers_url_verification_and_health_checks(
    slack_settings: Settings, fake_slack: FakeSlack
) -> None:
    port = _free_port()
    task = asyncio.create_task(run(slack_settings, argparse.Namespace(host="127.0.0.1", port=port)))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool:
                with suppress(aiohttp.ClientConnectionError):
                    async with session.get(url + "/healthz") as response:
                        return response.status == 200 and (await response.json())["status"] == "ok"
                return False

            deadline = time.monotonic() + 10
            while not await healthy():
                assert not task.done() and time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.05)
            harness = Harness(fake_slack, url=url, session=session)
            challenge = {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                         "type": "url_verification"}
            raw = json.dumps(challenge)
            stamp = int(time.time())
            headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(stamp),
                       "X-Slack-Signature": sign(raw, stamp)}
            async with session.post(url + EVENTS_PATH, data=raw, headers=headers) as response:
                assert response.status == 200
                assert (await response.json())["challenge"] == challenge["challenge"]
            channel = _id("C")
            ts = await harness.mention(channel, "over http")
            assert await harness.answers(channel, ts) == ["heard: over http"]
        assert {c.token for c in fake_slack.made("auth.test")} == {"xoxb-test-token"}
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_missing_tokens_are_named(
    make_settings: Callable[..., Settings], service: ConversationService
) -> None:
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN"):
        SlackBot(make_settings(), service)
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET"):
        SlackBot(make_settings(SLACK_BOT_TOKEN="xoxb-test-token"), service)


async def test_socket_mode_envelope_is_acknowledged_and_answered(
    make_settings: Callable[..., Settings], fake_slack: FakeSlack, fake_llm: FakeOpenAI
) -> None:
    settings = make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_APP_TOKEN="xapp-test-token",
        SLACK_API_URL=fake_slack.api_url,
    )
    task = asyncio.create_task(run(settings, argparse.Namespace(host=None, port=None)))
    try:
        await wait_until(lambda: fake_slack.connected or task.done(), what="socket connection")
        assert not task.done(), task.exception()
        [opened] = fake_slack.made("apps.connections.open")
        assert opened.token == "xapp-test-token"
        harness = Harness(fake_slack)
        channel = _id("C")
        payload = harness.envelope(
            harness.message(channel, f"<@{fake_slack.bot_user}> over the socket", kind="app_mention")
        )
        envelope_id = await fake_slack.send_envelope(copy.deepcopy(payload))
        await wait_until(lambda: any(a.get("envelope_id") == envelope_id for a in fake_slack.acks),
                         what="envelope ack")
        assert await harness.answers(channel, payload["event"]["ts"]) == ["heard: over the socket"]
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_the_answer_streams_into_the_placeholder(slack: Harness, fake_llm: FakeOpenAI) -> None:
    slack.fake.refuse_streaming = slack.fake.refuse_status = True
    channel = _id("C")
    answer = " ".join(f"word{i}" for i in range(60))
    fake_llm.queue(Reply(answer, chunk_delay=0.25))
    ts = await slack.mention(channel, "tell me a long story")
    await wait_until(lambda: slack.fake.thread(channel, ts) == [answer], what="the final answer")
    previews = [c.params["text"] for c in slack.fake.made("chat.update")][:-1]
    assert previews, "no in-place edit before the final answer"
    for preview in previews:
        assert preview.endswith(" …") and answer.startswith(preview.removesuffix(" …"))
        assert len(preview) < len(answer)


async def test_hostile_and_odd_messages_get_an_answer_or_a_clear_refusal(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    ts = await slack.mention(channel, "start")
    await slack.answers(channel, ts)
    odd = [
        "مرحبا بالعالم ‏שלום",
        "🎉" * 300 + "👨‍👩‍👧‍👦",
        "'; DROP TABLE turns; --",
        "\x00\x07 bell and nul",
        "x" * 100_000,
        "   ",
        "!history lots",
        "!rewind -3",
        f"!history <https://other.slack.com/archives/{_id('C')}/p1700000000000100>",
    ]
    for n, text in enumerate(odd, start=2):
        await slack.say(channel, text, thread_ts=ts)
        await slack.answers(channel, ts, n)
    replies = slack.fake.thread(channel, ts)[1:]
    assert replies[0] == "heard: start | مرحبا بالعالم ‏שלום"
    assert replies[1].endswith("🎉" * 300 + "👨‍👩‍👧‍👦")
    assert replies[2].endswith("'; DROP TABLE turns; --")
    assert replies[3].endswith("| bell and nul")
    assert replies[4].startswith("The message is too long (100,000 characters")
    assert replies[5] == "The message is empty"
    assert replies[6].startswith("/history takes a number")
    assert replies[7].startswith("Rewind takes a number of turns of at least 1")
    assert replies[8].startswith("/history takes a number")  # a link is no argument for !history
    await slack.say(channel, "!history 20", thread_ts=ts)
    listing = (await slack.answers(channel, ts, len(odd) + 2))[-1]
    assert listing.count("\n") == 4 and "DROP TABLE" in listing  # the 5 answered turns, stored intact


# -- approvals ---------------------------------------------------------------------------

async def test_approve_button_runs_the_tool_and_finishes_the_turn_in_the_thread(
    hitl: Harness, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    channel = _id("C")
    ts, request = await ask_to_post(hitl, fake_llm, channel)
    buttons = [(b["text"]["text"], b["style"], b["action_id"]) for b in request.buttons()]
    assert buttons == [("Approve", "primary", "backtrack_approve"), ("Reject", "danger", "backtrack_reject")]
    assert request.blocks[0]["text"]["text"] == REQUEST and fake_webhook.posts == []

    await hitl.click(request, "Approve")
    assert await hitl.answers(channel, ts, 2) == [decided("Approved", hitl.user), "Posted it."]
    assert request.buttons() == [], "the buttons stayed after the decision"
    assert fake_webhook.posts == [{"text": "deploy at 5pm", "content": "deploy at 5pm"}]
    await hitl.say(channel, "!history", thread_ts=ts)
    assert "1. announce the deploy" in (await hitl.answers(channel, ts, 3))[-1]


async def test_reject_button_in_a_dm_runs_nothing_and_the_model_answers(
    hitl: Harness, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    dm = _id("D")
    thread, request = await ask_to_post(hitl, fake_llm, dm, Reply("Understood, I did not post it."))
    await hitl.click(request, "Reject")
    final = await hitl.answers(dm, thread, 2)
    assert final == [decided("Rejected", hitl.user), "Understood, I did not post it."]
    assert fake_webhook.posts == []
    tool_result = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert f"{hitl.user} rejected this action" in tool_result[-1]["content"]


async def test_a_click_after_a_restart_is_handled_by_the_new_instance(
    hitl_settings: Settings, fake_slack: FakeSlack, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    channel = _id("C")
    async with open_service(hitl_settings) as service, serve(hitl_settings, service, fake_slack) as first:
        ts, request = await ask_to_post(first, fake_llm, channel)
    async with open_service(hitl_settings) as service, serve(hitl_settings, service, fake_slack) as second:
        await second.click(request, "Approve", user=first.user)
        assert await second.answers(channel, ts, 2) == [decided("Approved", first.user), "Posted it."]
    assert fake_webhook.posts == [{"text": "deploy at 5pm", "content": "deploy at 5pm"}]


async def test_only_the_requester_may_decide_and_others_are_told_privately(
    hitl: Harness, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    channel = _id("C")
    ts, request = await ask_to_post(hitl, fake_llm, channel)
    refused = await hitl.click(request, "Approve", user=_id("U"))
    assert await hitl.told(refused) == "You are not allowed to approve or reject this request."
    assert hitl.fake.thread(channel, ts) == [REQUEST] and len(request.buttons()) == 2
    assert fake_webhook.posts == []

    await hitl.click(request, "Approve")
    assert await hitl.answers(channel, ts, 2) == [decided("Approved", hitl.user), "Posted it."]
    assert len(fake_webhook.posts) == 1


async def test_listed_approvers_decide_instead_of_the_requester(
    make_settings: Callable[..., Settings], fake_slack: FakeSlack, fake_llm: FakeOpenAI,
    fake_webhook: FakeWebhook,
) -> None:
    lead = _id("U")
    settings = make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_slack.api_url,
        BACKTRACK_WEBHOOK_URL=fake_webhook.url, BACKTRACK_APPROVERS=f"{lead}, {_id('U')}",
    )
    channel = _id("C")
    async with open_service(settings) as service, serve(settings, service, fake_slack) as slack:
        ts, request = await ask_to_post(slack, fake_llm, channel)
        refused = await slack.click(request, "Approve")  # the requester is not listed
        assert await slack.told(refused) == "You are not allowed to approve or reject this request."
        assert fake_webhook.posts == [] and len(request.buttons()) == 2
        await slack.click(request, "Approve", user=lead)
        assert await slack.answers(channel, ts, 2) == [decided("Approved", lead), "Posted it."]
    assert len(fake_webhook.posts) == 1


async def test_double_and_stale_clicks_change_nothing_and_tell_the_clicker(
    hitl: Harness, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    channel = _id("C")
    ts, request = await ask_to_post(hitl, fake_llm, channel)
    as_shown = copy.deepcopy(request)  # the buttons as a second browser tab still shows them
    urls = await asyncio.gather(hitl.click(request, "Approve"), hitl.click(request, "Approve"))
    assert await hitl.answers(channel, ts, 2) == [decided("Approved", hitl.user), "Posted it."]
    await wait_until(lambda: any(hitl.fake.responded(u) for u in urls), what="the double click's answer")
    [loser] = [u for u in urls if hitl.fake.responded(u)]
    already = f"That request was already approved by {hitl.user}."
    assert await hitl.told(loser) == already

    asked = len(fake_llm.requests)
    stale = await hitl.click(as_shown, "Reject")
    assert await hitl.told(stale) == already
    assert hitl.fake.thread(channel, ts) == [decided("Approved", hitl.user), "Posted it."]
    assert len(fake_webhook.posts) == 1 and len(fake_llm.requests) == asked


async def test_a_new_message_while_pending_is_told_to_wait_and_the_request_survives(
    hitl: Harness, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    channel = _id("C")
    ts, request = await ask_to_post(hitl, fake_llm, channel)
    asked = len(fake_llm.requests)
    await hitl.say(channel, "are you there?", thread_ts=ts)
    notice = (await hitl.answers(channel, ts, 2))[-1]
    assert notice.startswith(REQUEST) and "still waiting for a decision" in notice
    assert len(fake_llm.requests) == asked and len(request.buttons()) == 2

    await hitl.click(request, "Approve")
    final = await hitl.answers(channel, ts, 3)
    assert final == [decided("Approved", hitl.user), notice, "Posted it."]
    assert len(fake_webhook.posts) == 1


async def test_a_model_failure_after_approval_is_shown_in_the_thread(
    hitl: Harness, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    channel = _id("C")
    ts, request = await ask_to_post(hitl, fake_llm, channel, Fail(500))
    await hitl.click(request, "Approve")
    final = await hitl.answers(channel, ts, 2)
    assert final == [decided("Approved", hitl.user), "The assistant failed to answer; please try again."]
    assert len(fake_webhook.posts) == 1 and request.buttons() == []


async def test_a_database_outage_is_told_in_the_thread_and_recovers(
    own_database: tuple[str, Callable[[], None], Callable[[], None]],
    slack_settings: Settings, fake_slack: FakeSlack,
) -> None:
    url, stop, start = own_database
    settings = slack_settings.model_copy(update={"database_url": url, "db_timeout": 1.0})
    channel = _id("C")
    async with open_service(settings) as service, serve(settings, service, fake_slack) as slack:
        ts = await slack.mention(channel, "before")
        assert await slack.answers(channel, ts) == ["heard: before"]
        await asyncio.to_thread(stop)
        down = await slack.mention(channel, "during")
        assert await slack.answers(channel, down) == [
            "Storage is unavailable right now; please try again shortly."]
        await asyncio.to_thread(start)
        async with asyncio.timeout(20):
            while True:  # the user tries again, as told, until the database is back
                await slack.say(channel, "after", thread_ts=ts)
                replies = await slack.answers(channel, ts, len(slack.fake.thread(channel, ts)) + 1)
                if replies[-1] == "heard: before | after":
                    break
                await asyncio.sleep(0.5)
    stop()


# -- the outermost boundary ------------------------------------------------------------


async def test_an_unexpected_failure_is_logged_counted_and_answered_with_the_apology(
    slack: Harness, service: ConversationService, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = _id("C")
    before = internal_errors()
    break_verb(monkeypatch, service, "ask")
    ts = await slack.mention(channel, "crash, please")
    assert await slack.answers(channel, ts) == [SORRY]
    await slack.settled(2)
    assert internal_errors() == before + 1 and logged_bug(caplog)

    break_verb(monkeypatch, service, "threads")  # the first thing /history asks the service
    assert await slack.command("history", "", channel) == SORRY
    assert internal_errors() == before + 2
    sent = [c for c in slack.fake.calls if c.method.startswith("chat.")]
    assert sent and not any(BUG in str(call.params) for call in sent)


async def test_an_unexpected_failure_on_a_click_tells_the_clicker_the_apology(
    hitl: Harness, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert hitl.bot is not None
    channel, before = _id("C"), internal_errors()
    ts, request = await ask_to_post(hitl, fake_llm, channel)
    break_verb(monkeypatch, hitl.bot.service, "resolve")
    assert await hitl.told(await hitl.click(request, "Approve")) == SORRY
    assert internal_errors() == before + 1 and logged_bug(caplog)
    assert hitl.fake.thread(channel, ts) == [REQUEST] and fake_webhook.posts == []
    monkeypatch.undo()  # the request survived the bug: it can still be decided
    await hitl.click(request, "Reject")
    assert (await hitl.answers(channel, ts, 2))[0] == decided("Rejected", hitl.user)


def test_the_manifest_registers_every_command_the_bot_answers() -> None:
    """A command missing from the manifest is one Slack never sends: users would see Slack's
    own "not a valid command" instead of the bot's answer."""
    manifest = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
    registered = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert registered == {f"/{name}" for name in SLASH_COMMANDS}
    assert set(COMMANDS) - set(SLASH_COMMANDS) == {"edit", "retry", "branch"}  # typed in the thread
    assert all(c["url"].endswith(EVENTS_PATH) for c in manifest["features"]["slash_commands"])
