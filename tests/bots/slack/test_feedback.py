"""Feedback buttons, the "Rewind to here" shortcut and ``/new`` in DMs, end to end.

The real slack-bolt app runs against ``FakeSlack``; clicks are ``block_actions`` payloads
with the ``feedback_buttons`` element Slack sends, the shortcut a ``message_action``
payload carrying the message it was used on, both form-encoded and signed as Slack does.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from bots.slack.feedback import REWIND_HERE
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.settings import Settings
from tests import ROOT
from tests.bots.slack.harness import SECRET, Harness, _id, fixture, serve
from tests.fakes.slack_server import FakeSlack, Posted, wait_until


@asynccontextmanager
async def _bot(settings: Callable[..., Settings], service: ConversationService, **env: str) -> AsyncIterator[Harness]:
    fake = FakeSlack(team=_id("T"), bot_user=_id("U"), bot_id=_id("B"))
    await fake.start()
    made = settings(
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.api_url, **env
    )
    try:
        async with serve(made, service, fake) as harness:
            yield harness
    finally:
        await fake.stop()


@pytest.fixture
async def slack(make_settings: Callable[..., Settings], service: ConversationService) -> AsyncIterator[Harness]:
    async with _bot(make_settings, service) as harness:
        yield harness


def _trigger() -> str:
    return f"{time.time_ns()}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}"


def _message(harness: Harness, posted: Posted, body: dict[str, Any], user: str) -> None:
    team = harness.fake.team
    body["user"].update(id=user, username=user.lower(), name=user.lower(), team_id=team)
    body["team"]["id"] = team
    body["channel"]["id"] = posted.channel
    message = body["message"]
    message.update(ts=posted.ts, text=posted.text, blocks=copy.deepcopy(posted.blocks))
    if posted.thread_ts is None:
        del message["thread_ts"], message["parent_user_id"]
    else:
        message["thread_ts"] = posted.thread_ts
    body["trigger_id"] = _trigger()
    body["response_url"] = harness.fake.response_url()


async def rate(harness: Harness, posted: Posted, vote: str, user: str | None = None) -> str:
    """Click 👍 (``up``) or 👎 (``down``) under a bot message; the clicker's private answer."""
    element = posted.feedback()
    assert element is not None, "the answer has no feedback buttons"
    body = fixture("block_actions")
    _message(harness, posted, body, user or harness.user)
    body["container"].update(message_ts=posted.ts, channel_id=posted.channel)
    if posted.thread_ts is None:
        del body["container"]["thread_ts"]
    else:
        body["container"]["thread_ts"] = posted.thread_ts
    button = element["positive_button" if vote == "up" else "negative_button"]
    [block] = [b for b in posted.blocks if b["type"] == "context_actions"]
    body["actions"] = [{"type": "feedback_buttons", "action_id": element["action_id"],
                        "block_id": block["block_id"], "value": button["value"],
                        "action_ts": f"{time.time():.6f}"}]
    assert await harness.post_form({"payload": json.dumps(body)}) == 200
    return await harness.told(str(body["response_url"]))


async def rewind_here(
    harness: Harness, posted: Posted, *, author: str | None = None, user: str | None = None
) -> str:
    """Use the shortcut on a message (``author``: someone else's message); the private answer."""
    body = fixture("message_action")
    _message(harness, posted, body, user or harness.user)
    body["callback_id"], body["message_ts"] = REWIND_HERE, posted.ts
    body["message"].update(user=harness.fake.bot_user, bot_id=harness.fake.bot_id)
    if author is not None:
        body["message"].update(user=author)
        del body["message"]["bot_id"], body["message"]["app_id"]
    assert await harness.post_form({"payload": json.dumps(body)}) == 200
    await wait_until(lambda: harness.fake.responded(body["response_url"]), what="shortcut answer")
    [reply] = harness.fake.responded(body["response_url"])
    assert reply["response_type"] == "ephemeral"
    return str(reply["text"])


def _rated(value: str) -> float:
    return REGISTRY.get_sample_value("backtrack_feedback_total", {"platform": "slack", "value": value}) or 0.0


async def test_every_answer_has_feedback_and_a_double_click_is_stored_once(slack: Harness) -> None:
    dm = _id("D")
    await slack.say(dm, "q1")
    [answer] = await slack.answers(dm, None)
    [posted] = slack.fake.posted(dm, None)
    assert answer == "heard: q1" and posted.feedback() is not None
    before = _rated("up")

    assert await rate(slack, posted, "up") == "Thanks, your feedback is noted."
    assert await rate(slack, posted, "up") == "You had already rated this answer so."
    assert _rated("up") == before + 1
    await rate(slack, posted, "up", user=_id("U"))

    await slack.say(dm, "!history --all")
    audit = (await slack.answers(dm, None, 2))[-1]
    assert "1. q1" in audit and "👍2" in audit and "👎" not in audit


async def test_rewind_to_here_on_turn_2_of_4_forks_there_and_keeps_the_rest(slack: Harness) -> None:
    channel = _id("C")
    ts = await slack.mention(channel, "q1")
    for n in range(2, 5):
        await slack.answers(channel, ts, n - 1)
        await slack.say(channel, f"q{n}", thread_ts=ts)
    await slack.answers(channel, ts, 4)
    second = slack.fake.posted(channel, ts)[1]
    assert second.text == "heard: q1 | q2"

    told = await rewind_here(slack, second)
    assert told.startswith("Rewound 2 turns.") and "It now ends with: 2. q2" in told

    await slack.say(channel, "!history", thread_ts=ts)
    history = (await slack.answers(channel, ts, 5))[-1]
    assert "1. q1" in history and "2. q2" in history and "q3" not in history
    await slack.say(channel, "!history --all", thread_ts=ts)
    audit = (await slack.answers(channel, ts, 6))[-1]
    assert "q3" in audit and "q4" in audit and "from turn 4 to turn 2" in audit
    await slack.say(channel, "q5", thread_ts=ts)
    assert (await slack.answers(channel, ts, 7))[-1] == "heard: q1 | q2 | q5"


async def test_rewind_to_here_is_refused_on_anything_but_an_answer(slack: Harness) -> None:
    channel = _id("C")
    ts = await slack.mention(channel, "q1")
    await slack.answers(channel, ts)
    await slack.say(channel, "!history", thread_ts=ts)
    await slack.answers(channel, ts, 2)
    answer, command_reply = slack.fake.posted(channel, ts)

    foreign = await rewind_here(slack, answer, author=_id("U"))
    assert foreign.startswith("Rewind to here works on backtrack's answers")
    assert (await rewind_here(slack, command_reply)).startswith("Rewind to here works on backtrack's answers")
    await slack.say(channel, "!history", thread_ts=ts)
    assert "1. q1" in (await slack.answers(channel, ts, 3))[-1], "nothing moved"


async def test_someone_outside_the_allow_list_can_neither_rate_nor_rewind(
    make_settings: Callable[..., Settings], service: ConversationService
) -> None:
    allowed = _id("U")
    async with _bot(make_settings, service, SLACK_ALLOWED_USERS=allowed) as slack:
        slack.user = allowed
        channel = _id("C")
        ts = await slack.mention(channel, "q1")
        await slack.answers(channel, ts)
        await slack.say(channel, "q2", thread_ts=ts)
        await slack.answers(channel, ts, 2)
        first = slack.fake.posted(channel, ts)[0]
        stranger = _id("U")

        refused = await rewind_here(slack, first, user=stranger)
        assert refused == "Backtrack is not enabled for you in this channel"
        assert await rate(slack, first, "down", user=stranger) == refused
        [turn, _] = await service.history(ThreadKey.slack(slack.fake.team, channel, ts))
        assert turn.feedback == (), "nothing stored"
        await slack.say(channel, "q3", thread_ts=ts)
        assert (await slack.answers(channel, ts, 3))[-1] == "heard: q1 | q2 | q3", "nothing moved"


async def test_new_in_a_dm_starts_afresh_and_keeps_the_old_conversation(slack: Harness) -> None:
    dm, channel = _id("D"), _id("C")
    await slack.say(dm, "q1")
    await slack.answers(dm, None)
    old = slack.fake.posted(dm, None)[0]

    assert (await slack.command("new", "", dm)).startswith("Started a new conversation here.")
    await slack.say(dm, "q2")
    assert (await slack.answers(dm, None, 2))[-1] == "heard: q2"
    assert slack.bot is not None
    listed = await slack.bot.service.threads(platform="slack", user=slack.user)
    assert sorted(info.title for info in listed) == ["q1", "q2"]

    assert await rate(slack, old, "down") == "Thanks, your feedback is noted."  # the old one still
    await slack.say(dm, "!new")
    assert (await slack.answers(dm, None, 3))[-1].startswith("Started a new conversation here.")
    await slack.say(dm, "q3")
    assert (await slack.answers(dm, None, 4))[-1] == "heard: q3"
    ts = await slack.mention(channel, "in a thread")
    await slack.answers(channel, ts)
    await slack.say(channel, "!new", thread_ts=ts)
    assert (await slack.answers(channel, ts, 2))[-1].startswith("/new works where one conversation runs on")
    refused = await slack.command("new", "", channel)
    assert refused.startswith("/new starts a fresh conversation in a direct message")


def test_the_manifest_registers_the_shortcut_the_bot_answers() -> None:
    manifest = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
    shortcuts = manifest["features"]["shortcuts"]
    assert [(s["type"], s["callback_id"]) for s in shortcuts] == [("message", REWIND_HERE)]


async def test_app_home_lists_the_users_conversations_newest_first(slack: Harness) -> None:
    channel, dm = _id("C"), _id("D")
    ts = await slack.mention(channel, "about the deploy")
    await slack.answers(channel, ts)
    await slack.say(dm, "a private question")
    await slack.answers(dm, None)

    event = {"type": "app_home_opened", "user": slack.user, "channel": dm, "tab": "home",
             "event_ts": f"{time.time():.6f}"}
    assert await slack.deliver(slack.envelope(event)) == 200
    await wait_until(lambda: slack.user in slack.fake.homes, what="the home tab")
    rows = [b["text"]["text"] for b in slack.fake.homes[slack.user]["blocks"] if b["type"] == "section"]
    assert len(rows) == 2
    assert rows[0].startswith("*a private question*\nDirect message")
    assert rows[1].startswith(f"*about the deploy*\n<#{channel}>")
    assert f"/archives/{channel}/p{ts.replace('.', '')}|Open>" in rows[1]

    stranger = _id("U")
    event.update(user=stranger, event_ts=f"{time.time():.6f}")
    assert await slack.deliver(slack.envelope(event)) == 200
    await wait_until(lambda: stranger in slack.fake.homes, what="the stranger's home tab")
    [empty] = [b for b in slack.fake.homes[stranger]["blocks"] if b["type"] == "section"]
    assert empty["text"]["text"].startswith("None yet.")
