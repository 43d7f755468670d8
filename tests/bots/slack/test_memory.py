"""Memory in Slack: taught in one thread, known in another; ``!memory`` answers privately."""

from __future__ import annotations

from tests.bots.slack.harness import Harness, _id
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.fakes.slack_server import wait_until


async def test_taught_in_one_thread_known_in_another_and_listed_only_to_its_person(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel = _id("C")
    fake_llm.queue(ToolCall("remember", {"topic": "team", "fact": "payments"}), Reply("Noted."))
    first = await slack.mention(channel, "remember that I am on the payments team")
    await slack.answers(channel, first)
    other = await slack.mention(channel, "which team am I on?")
    await slack.answers(channel, other)
    assert "- team: payments" in str(fake_llm.requests[-1]["messages"][0]["content"])

    await slack.say(channel, "!memory", thread_ts=other)
    await wait_until(lambda: slack.fake.ephemerals, what="the private /memory answer")
    [(where, who, text)] = slack.fake.ephemerals
    assert (where, who) == (channel, slack.user) and "1. team: payments" in text
    assert not any("payments" in t for t in slack.fake.thread(channel, other)[1:])  # nothing public
