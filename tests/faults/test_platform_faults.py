"""Fault matrix, the platforms: Slack answering 500 once, then working again.

The real slack-sdk client against the fake Slack (tests/fakes/slack_server.py); the
answer must reach the thread once, and the conversation must hold one turn, not two.
"""

from __future__ import annotations

import pytest

from tests.bots.test_slack import Harness, _id, fake_slack, slack, slack_settings

__all__ = ["fake_slack", "slack", "slack_settings"]  # the Slack scenario tests' own fixtures


@pytest.mark.parametrize("method", ["chat.postMessage", "chat.update"])
async def test_slack_500_then_success_delivers_the_answer_once(slack: Harness, method: str) -> None:
    slack.fake.fail(method, 1)
    channel = _id("C")
    ts = await slack.mention(channel, "flaky")
    assert await slack.answers(channel, ts) == ["heard: flaky"]
    assert [c.status for c in slack.fake.made(method)][:2] == [500, 200]
    await slack.say(channel, "again", thread_ts=ts)
    answers = await slack.answers(channel, ts, 2)
    assert answers == ["heard: flaky", "heard: flaky | again"]  # one turn stored, not two
