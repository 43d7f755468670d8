"""Slack's agent surface end to end: native streaming, the status line, agent threads.

The real slack-bolt app and slack-sdk client run against ``FakeSlack``, which checks the
streaming and assistant-thread methods as Slack does (a stream needs a thread and, in a
channel, its recipient; only an open stream takes text; a stream ends by itself after
five minutes). Time is simulated for the five-minute limit: the bot and the fake read the
same ticking clock, so a stream "lasts" minutes without the test sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.replies import PLACEHOLDER
from bots.slack.stream import THINKING
from core.conversations.service import ConversationService
from core.errors import SettingsError
from core.settings import Settings
from tests import ROOT
from tests.bots.slack.harness import SECRET, Harness, _id, ask_to_post, serve
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.fakes.slack_server import STREAM_LIFETIME, FakeSlack, wait_until

SEARCHING = "is searching the web…"



def _story(words: int) -> str:
    return " ".join(f"word{i}" for i in range(words))


# -- streaming -------------------------------------------------------------------------


async def test_an_answer_streams_natively_under_a_status_line(slack: Harness, fake_llm: FakeOpenAI) -> None:
    channel, fake = _id("C"), slack.fake
    answer = _story(80)
    fake_llm.queue(Reply(answer, chunk_delay=0.05))
    ts = await slack.mention(channel, "tell me a story")
    assert await slack.answers(channel, ts) == [answer]
    await slack.settled(2)
    agent_calls = [c for c in fake.calls if c.method.startswith(("chat.", "assistant."))]
    order = [c.method for c in agent_calls]
    assert order[0] == "assistant.threads.setStatus" and order[1] == "chat.startStream"
    assert order[-2:] == ["chat.stopStream", "assistant.threads.setStatus"]
    assert "chat.appendStream" in order, "the answer arrived in one piece, not streamed"
    assert "chat.postMessage" not in order and "chat.update" not in order, "a placeholder was posted"
    assert all(c.error is None for c in agent_calls)
    [start] = fake.made("chat.startStream")
    assert start.params["thread_ts"] == ts
    assert (start.params["recipient_team_id"], start.params["recipient_user_id"]) == (fake.team, slack.user)
    assert fake.status_of(channel, ts) == [THINKING, ""]


async def test_where_slack_refuses_to_stream_the_answer_is_edited_in_under_the_status(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    fake = slack.fake
    fake.refuse_streaming = True
    channel = _id("C")
    answer = _story(60)
    fake_llm.queue(Reply(answer, chunk_delay=0.1))
    ts = await slack.mention(channel, "and now?")
    await wait_until(lambda: fake.thread(channel, ts) == [answer], what="the final answer")
    await slack.settled(2)
    [refused] = fake.made("chat.startStream")
    assert refused.error == "feature_not_enabled"
    [message] = fake.posted(channel, ts)
    assert PLACEHOLDER not in [message.text, *message.edits], "the status line already shows the work"
    assert message.edits, "the answer was not previewed while it was written"
    assert fake.status_of(channel, ts) == [THINKING, ""]
    # the workspace's refusal is remembered: the next answer goes straight to the edits
    fake_llm.queue(Reply("again, edited in"))
    other = _id("C")
    later = await slack.mention(other, "once more")
    await wait_until(lambda: fake.thread(other, later) == ["again, edited in"], what="the second answer")
    await slack.settled(2)
    assert len(fake.made("chat.startStream")) == 1, "a refused workspace was asked to stream again"


async def test_a_six_minute_answer_rolls_over_into_a_new_message_before_slack_ends_it(
    simulated: tuple[_Ticking, Settings], service: ConversationService, fake_slack: FakeSlack,
    fake_llm: FakeOpenAI,
) -> None:
    clock, settings = simulated
    answer = _story(400)  # 100 chunks: about 15 simulated minutes of writing
    fake_llm.queue(Reply(answer, chunk_delay=0.01))
    async with serve(settings, service, fake_slack, clock=clock) as slack:
        channel = _id("C")
        ts = await slack.mention(channel, "a very long story")
        await slack.settled(2)  # between two messages of one answer, none is streaming
        pieces = fake_slack.thread(channel, ts)
    assert clock.now > 6 * 60
    messages = fake_slack.posted(channel, ts)
    assert len(messages) >= 3, "the stream was not rolled over"
    assert "".join(pieces) == answer, "text was lost or doubled at a rollover"
    assert all(m.closed is not None and m.closed - m.opened <= STREAM_LIFETIME for m in messages)
    refused = [c for c in fake_slack.calls if c.error is not None]
    assert refused == [], f"Slack refused {refused[0].method}: {refused[0].error}" if refused else ""
    assert fake_slack.made("chat.update") == []


async def test_a_rate_limited_stream_start_is_retried(slack: Harness) -> None:
    slack.fake.rate_limit("chat.startStream", 1)
    channel = _id("C")
    ts = await slack.mention(channel, "patience")
    assert await slack.answers(channel, ts) == ["heard: patience"]
    assert [c.status for c in slack.fake.made("chat.startStream")] == [429, 200]


async def test_a_direct_messages_top_level_keeps_the_placeholder(slack: Harness) -> None:
    """Slack streams only into threads, and a status line needs one too."""
    dm = _id("D")
    await slack.say(dm, "hello")
    assert await slack.answers(dm, None) == ["heard: hello"]
    assert slack.fake.made("chat.startStream") == [] and slack.fake.statuses == []
    [message] = slack.fake.posted(dm, None)
    assert message.edits == [PLACEHOLDER]


# -- the status line -------------------------------------------------------------------


async def test_the_status_says_what_runs_and_is_cleared_at_the_end(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    fake_llm.queue(ToolCall("web_search", {"query": "backtrack release"}), Reply("It shipped in May."))
    ts = await slack.mention(channel, "when did backtrack ship?")
    assert await slack.answers(channel, ts) == ["It shipped in May."]
    await slack.settled(2)
    assert slack.fake.status_of(channel, ts) == [THINKING, SEARCHING, THINKING, ""]
    setting = [c.method for c in slack.fake.calls if c.method.startswith(("chat.", "assistant."))]
    assert setting.index("chat.startStream") > setting.index("assistant.threads.setStatus")


async def test_text_written_before_a_tool_call_gives_way_to_the_answer(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    """A streamed message cannot take text back: the preamble is replaced once the answer is done."""
    channel = _id("C")
    fake_llm.queue(ToolCall("web_search", {"query": "release"}, text="Let me look that up."),
                   Reply("It shipped in May.", chunk_delay=0.05))
    ts = await slack.mention(channel, "when did it ship?")
    await slack.settled(2)
    [message] = slack.fake.posted(channel, ts)
    assert message.text == "It shipped in May." and message.edits == ["Let me look that up."]
    assert slack.fake.status_of(channel, ts) == [THINKING, SEARCHING, THINKING, ""]


async def test_without_a_status_line_the_stream_opens_at_once(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    fake = slack.fake
    fake.refuse_status = True
    fake_llm.hold = asyncio.Event()
    channel = _id("C")
    ts = await slack.mention(channel, "are you there?")
    await wait_until(lambda: fake.made("chat.startStream"), what="a stream opened before any text")
    assert fake.streaming() and fake.thread(channel, ts) == [""]
    fake_llm.hold.set()
    assert await slack.answers(channel, ts) == ["heard: are you there?"]


# -- agent threads ---------------------------------------------------------------------


async def test_a_new_agent_thread_is_greeted_with_prompts_and_titled_by_its_question(
    make_settings: Callable[..., Settings], service: ConversationService, fake_slack: FakeSlack,
) -> None:
    settings = make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_slack.api_url,
        SLACK_GREETING="Welcome <!channel> & friends", SLACK_SUGGESTED_PROMPTS="Plan my day; ;Summarize a doc",
    )
    async with serve(settings, service, fake_slack) as slack:
        dm, thread_ts = _id("D"), fake_slack.next_ts()
        started = {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": slack.user, "channel_id": dm, "thread_ts": thread_ts,
                "context": {"channel_id": _id("C"), "team_id": fake_slack.team, "enterprise_id": None},
            },
            "event_ts": f"{time.time():.6f}",
        }
        assert await slack.deliver(slack.envelope(started)) == 200
        await wait_until(lambda: (dm, thread_ts) in fake_slack.prompts, what="suggested prompts")
        assert fake_slack.prompts[(dm, thread_ts)] == [
            {"title": "Plan my day", "message": "Plan my day"},
            {"title": "Summarize a doc", "message": "Summarize a doc"},
        ]
        assert fake_slack.thread(dm, thread_ts) == ["Welcome &lt;!channel&gt; &amp; friends"]

        await slack.say(dm, "what is   on my\ncalendar today?", thread_ts=thread_ts)
        assert (await slack.answers(dm, thread_ts, 2))[-1] == "heard: what is   on my\ncalendar today?"
        await wait_until(lambda: (dm, thread_ts) in fake_slack.titles, what="the thread's title")
        assert fake_slack.titles[(dm, thread_ts)] == "what is on my calendar today?"
        await slack.say(dm, "and tomorrow?", thread_ts=thread_ts)
        await slack.answers(dm, thread_ts, 3)
        await slack.settled(2)
        assert len(fake_slack.made("assistant.threads.setTitle")) == 1, "a later question renamed it"
        assert fake_slack.made("chat.startStream"), "answers in an agent thread were not streamed"


async def test_a_context_change_is_acknowledged_and_a_stranger_is_not_greeted(
    make_settings: Callable[..., Settings], service: ConversationService, fake_slack: FakeSlack,
) -> None:
    member = _id("U")
    settings = make_settings(SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET,
                             SLACK_API_URL=fake_slack.api_url, SLACK_ALLOWED_USERS=member)
    async with serve(settings, service, fake_slack) as slack:
        dm, thread_ts = _id("D"), fake_slack.next_ts()
        thread = {"user_id": slack.user, "channel_id": dm, "thread_ts": thread_ts,
                  "context": {"channel_id": _id("C"), "team_id": fake_slack.team}}
        for kind in ("assistant_thread_started", "assistant_thread_context_changed"):
            event = {"type": kind, "assistant_thread": thread, "event_ts": f"{time.time():.6f}"}
            assert await slack.deliver(slack.envelope(event)) == 200
        slack.user = thread["user_id"] = member
        event = {"type": "assistant_thread_started", "assistant_thread": thread, "event_ts": "1.2"}
        assert await slack.deliver(slack.envelope(event)) == 200
        await wait_until(lambda: (dm, thread_ts) in fake_slack.prompts, what="the member's prompts")
    calls = [c.method for c in fake_slack.calls if c.method != "auth.test"]  # Bolt's own sign-in
    assert calls == ["chat.postMessage", "assistant.threads.setSuggestedPrompts"]


async def test_more_than_four_suggested_prompts_are_refused_at_start(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(SettingsError, match=r"SLACK_SUGGESTED_PROMPTS.*at most 4 suggested prompts"):
        make_settings(SLACK_SUGGESTED_PROMPTS="a; b; c; d; e")


@pytest.fixture
def simulated(make_settings: Callable[..., Settings], fake_slack: FakeSlack) -> tuple[_Ticking, Settings]:
    """A bot and a fake Slack on one clock that ticks 4 s per reading: minutes pass in no time."""
    clock = _Ticking(step=4.0)
    fake_slack.clock = clock
    settings = make_settings(SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET,
                             SLACK_API_URL=fake_slack.api_url)
    return clock, settings


class _Ticking:
    """A clock that moves ``step`` seconds each time anyone reads it."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def test_a_rollover_inside_a_code_block_closes_and_reopens_the_fence(
    simulated: tuple[_Ticking, Settings], service: ConversationService, fake_slack: FakeSlack,
    fake_llm: FakeOpenAI,
) -> None:
    clock, settings = simulated
    lines = [f"total = total + {i}  # step {i}" for i in range(60)]
    fake_llm.queue(Reply("Here:\n```python\n" + "\n".join(lines) + "\n```\nDone.", chunk_delay=0.01))
    async with serve(settings, service, fake_slack, clock=clock) as slack:
        channel = _id("C")
        ts = await slack.mention(channel, "write a long loop")
        await slack.settled(2)
    pieces = fake_slack.thread(channel, ts)
    assert len(pieces) >= 3, "the stream was not rolled over"
    assert all(p.count("```") % 2 == 0 for p in pieces), f"a message left a code block open: {pieces}"
    assert all(p.startswith("```python\n") for p in pieces[1:-1]), f"a continued block lost its language {pieces}"
    shown = "\n".join(pieces)
    assert all(line in shown for line in lines) and pieces[-1].endswith("Done.")
    assert [c for c in fake_slack.calls if c.error is not None] == []


def test_the_manifest_enables_the_agent_view_and_its_events() -> None:
    manifest = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
    agent = manifest["features"]["agent_view"]
    assert len(agent["agent_description"]) <= 300 and 1 <= len(agent["suggested_prompts"]) <= 4
    assert "assistant:write" in manifest["oauth_config"]["scopes"]["bot"]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"assistant_thread_started", "assistant_thread_context_changed", "message.im"} <= set(events)


async def test_the_fake_refuses_what_slack_refuses(fake_slack: FakeSlack) -> None:
    """The fake's checks are what make the streaming tests mean something."""
    client = AsyncWebClient(token="xoxb-test-token", base_url=fake_slack.api_url)
    channel, thread = _id("C"), fake_slack.next_ts()

    async def error(call: Awaitable[object]) -> str:
        with pytest.raises(SlackApiError) as refused:
            await call
        return str(refused.value.response["error"])

    assert await error(client.chat_startStream(channel=channel, thread_ts="")) == "invalid_arguments"
    assert await error(client.chat_startStream(channel=channel, thread_ts=thread)) == "invalid_arguments"
    assert await error(client.chat_appendStream(channel=channel, ts="1.000001", markdown_text="x")) == (
        "message_not_found")
    started = await client.chat_startStream(channel=channel, thread_ts=thread, recipient_team_id="T1",
                                            recipient_user_id="U1", markdown_text="a")
    ts = str(started["ts"])
    assert await error(client.chat_appendStream(channel=channel, ts=ts, markdown_text="x" * 12_001)) == (
        "msg_too_long")
    await client.chat_stopStream(channel=channel, ts=ts, markdown_text="b")
    assert await error(client.chat_appendStream(channel=channel, ts=ts, markdown_text="c")) == (
        "message_not_in_streaming_state")
    assert fake_slack.thread(channel, thread) == ["ab"]
    assert await error(client.assistant_threads_setSuggestedPrompts(channel_id=channel, thread_ts=thread,
                                                                    prompts=[])) == "invalid_arguments"
    fake_slack.refuse_streaming = fake_slack.refuse_status = True
    assert await error(client.chat_startStream(channel=channel, thread_ts=thread, recipient_team_id="T1",
                                               recipient_user_id="U1")) == "feature_not_enabled"
    assert await error(client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread,
                                                          status="is thinking…")) == "missing_scope"


async def test_the_turn_after_an_approval_shows_its_tool_in_the_status_line(
    hitl: Harness, fake_llm: FakeOpenAI, fake_webhook: Any
) -> None:
    """The decided turn runs the gated tool: the thread says so while it runs, then clears."""
    channel = _id("C")
    ts, request = await ask_to_post(hitl, fake_llm, channel)
    await hitl.settled(2)  # the request's own turn has cleared its status line
    before = len(hitl.fake.statuses)
    await hitl.click(request, "Approve")
    assert (await hitl.answers(channel, ts, 2))[-1] == "Posted it."

    def shown_now() -> list[str]:
        return [status for c, t, status in hitl.fake.statuses[before:] if (c, t) == (channel, ts)]

    # the line is cleared just after the answer is delivered: wait for it rather than race it
    await wait_until(lambda: shown_now()[-1:] == [""], what="the status line cleared")
    shown = shown_now()
    assert shown[0] == THINKING and "is posting to the webhook…" in shown and shown[-1] == ""
    assert len(fake_webhook.posts) == 1
