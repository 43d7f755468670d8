"""Fault matrix, the platforms: Slack or Discord answering 500 once, then working again.

The real slack-sdk and discord.py clients against the fakes in tests/fakes/; the answer
must reach the user once, and the conversation must hold one turn, not two.
"""

from __future__ import annotations

import pytest

from core.conversations.service import ConversationService
from tests.bots.discord.harness import Discord, ask, bot, discord_settings, said, world
from tests.bots.slack.harness import Harness, _id, fake_slack, slack, slack_settings

# the scenario tests' own fixtures, shared rather than copied
__all__ = ["bot", "discord_settings", "fake_slack", "slack", "slack_settings", "world"]


@pytest.mark.parametrize(
    ("method", "streaming"),
    [("chat.postMessage", False), ("chat.update", False), ("chat.startStream", True), ("chat.stopStream", True)],
)
async def test_slack_500_then_success_delivers_the_answer_once(
    slack: Harness, method: str, streaming: bool
) -> None:
    """Both ways an answer reaches a thread: streamed natively, and the placeholder's edits."""
    slack.fake.refuse_streaming = slack.fake.refuse_status = not streaming
    slack.fake.fail(method, 1)
    channel = _id("C")
    ts = await slack.mention(channel, "flaky")
    assert await slack.answers(channel, ts) == ["heard: flaky"]
    assert [c.status for c in slack.fake.made(method)][:2] == [500, 200]
    await slack.say(channel, "again", thread_ts=ts)
    answers = await slack.answers(channel, ts, 2)
    assert answers == ["heard: flaky", "heard: flaky | again"]  # one turn stored, not two


async def test_discord_500_on_send_then_success_delivers_the_answer_once(
    bot: Discord, service: ConversationService
) -> None:
    posts = rf"/channels/{bot.general}/messages"
    bot.fake.fail_once("POST", posts)
    await ask(bot, bot.general, "despite a 500")
    await said(bot.fake, bot.general, "heard: despite a 500")
    assert [c.status for c in bot.fake.calls_to("POST", posts)] == [500, 200]
    assert [m["content"] for m in bot.fake.bot_messages(bot.general)] == ["heard: despite a 500"]
    [conversation] = await service.threads(platform="discord", limit=1)
    assert [t.question for t in await service.history(conversation.key)] == ["despite a 500"]
