"""Editing a message to fork, Try again, and previous/next, end to end through slack-bolt.

Edits arrive as Slack sends them: ``message_changed`` events with ``message`` and
``previous_message``; clicks as signed ``block_actions``. The fake model echoes every user
message it was sent ("heard: one | two"), so an answer shows which branch the model saw.
"""

from __future__ import annotations

from collections.abc import Callable

from core.conversations.service import ConversationService
from core.conversations.wording import SUPERSEDED
from core.settings import Settings
from tests.bots.slack.harness import SECRET, Harness, _id, serve
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_server import FakeSlack, Posted, wait_until


def _labels(posted: Posted) -> list[str]:
    return [b["text"]["text"] for b in posted.buttons()]


async def _thread(slack: Harness, *questions: str) -> tuple[str, str, list[str]]:
    """A channel thread where ``questions`` were asked in turn: (channel, thread ts, their ts)."""
    channel = _id("C")
    first = await slack.mention(channel, questions[0])
    asked = [first]
    for n, question in enumerate(questions[1:], 1):
        await slack.answers(channel, first, n)
        asked.append(await slack.say(channel, question, thread_ts=first))
    await slack.answers(channel, first, len(questions))
    return channel, first, asked


async def test_editing_an_answered_message_forks_and_marks_the_old_answer(slack: Harness) -> None:
    channel, thread, asked = await _thread(slack, "one", "two", "three")
    old = slack.fake.posted(channel, thread)[1]
    assert old.text == "heard: one | two" and _labels(old) == ["🔄 Try again"]  # no other version yet

    handled = slack.bot.handled if slack.bot else 0
    await slack.deliver(slack.envelope(slack.edit(channel, asked[1], "two", "TWO", thread_ts=thread)))
    await slack.settled(handled + 1)
    new = slack.fake.posted(channel, thread)[-1]
    assert new.text == "heard: one | TWO"  # the model saw the edited text, not "three"
    assert _labels(new) == ["\u2039", "2/2", "🔄 Try again"] and new.feedback() is not None
    permalink = f"https://fake.slack.com/archives/{channel}/p{new.ts.replace('.', '')}"
    assert old.text == f"{SUPERSEDED} \u2014 <{permalink}|the new answer>" and old.buttons() == []

    await slack.say(channel, "four", thread_ts=thread)  # the conversation goes on from the edit
    assert (await slack.answers(channel, thread, 5))[-1] == "heard: one | TWO | four"


async def test_unfurls_same_text_strangers_bots_and_redeliveries_fork_nothing(slack: Harness) -> None:
    channel, thread, asked = await _thread(slack, "one", "two")
    edits = [
        slack.edit(channel, asked[1], "two", "two", thread_ts=thread),  # formatting: the same text
        slack.edit(channel, asked[1], "two", "two", thread_ts=thread, edited=False),  # an unfurl
        slack.edit(channel, asked[1], "two", "2?", thread_ts=thread, user=_id("U")),  # not the author's
        slack.edit(channel, _id("9"), "never", "answered", thread_ts=thread),  # not a message we answered
    ]
    bot = slack.edit(channel, slack.fake.posted(channel, thread)[0].ts, "heard: one", "x", thread_ts=thread)
    bot["message"].update(bot_id=slack.fake.bot_id, user=slack.fake.bot_user)  # our own streamed edit
    real = slack.edit(channel, asked[1], "two", "TWO", thread_ts=thread)
    handled = slack.bot.handled if slack.bot else 0
    for event in [*edits, bot, real, real]:  # the last one twice: Slack retrying the delivery
        await slack.deliver(slack.envelope(event))
    await slack.settled(handled + 6)  # bolt drops the bot's own event before any listener
    texts = await slack.answers(channel, thread, 3)
    assert texts[0] == "heard: one" and texts[1].startswith(SUPERSEDED) and texts[2:] == ["heard: one | TWO"]
    assert slack.fake.thread(channel, thread).count("heard: one | TWO") == 1


async def test_try_again_then_previous_switches_in_place_and_the_next_message_follows(
    slack: Harness, fake_llm: FakeOpenAI
) -> None:
    channel, thread, _ = await _thread(slack, "one", "two")
    first = slack.fake.posted(channel, thread)[1]
    fake_llm.queue(Reply("another two"))
    await slack.click(first, "🔄 Try again")
    await slack.answers(channel, thread, 3)
    retried = slack.fake.posted(channel, thread)[-1]
    assert retried.text == "another two" and _labels(retried) == ["\u2039", "2/2", "🔄 Try again"]
    assert first.text == "heard: one | two"  # Try again keeps the previous answer

    told = await slack.told(await slack.click(retried, "2/2"))
    assert told.splitlines()[0] == "Turn 2 has 2 versions (/branch N switches):"

    await slack.click(retried, "\u2039")
    await wait_until(lambda: retried.text == "heard: one | two", what="version 1 shown in place")
    assert _labels(retried) == ["1/2", "\u203a", "🔄 Try again"]
    await slack.say(channel, "three", thread_ts=thread)
    assert (await slack.answers(channel, thread, 4))[-1] == "heard: one | two | three"


async def test_a_click_by_a_stranger_or_on_a_forgotten_conversation_changes_nothing(
    make_settings: Callable[..., Settings], service: ConversationService
) -> None:
    allowed, fake = _id("U"), FakeSlack(team=_id("T"), bot_user=_id("U"), bot_id=_id("B"))
    await fake.start()
    settings = make_settings(SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET=SECRET,
                             SLACK_API_URL=fake.api_url, SLACK_ALLOWED_USERS=allowed)
    try:
        async with serve(settings, service, fake) as slack:
            slack.user = allowed
            channel, thread, asked = await _thread(slack, "one")
            answer = slack.fake.posted(channel, thread)[0]
            refused = await slack.told(await slack.click(answer, "🔄 Try again", user=_id("U")))
            assert refused == "Backtrack is not enabled for you in this channel"

            await slack.say(channel, "!forget", thread_ts=thread)
            await slack.answers(channel, thread, 2)
            told = await slack.told(await slack.click(answer, "🔄 Try again"))
            assert told.startswith("There is no conversation")
            handled = slack.bot.handled if slack.bot else 0
            await slack.deliver(slack.envelope(slack.edit(channel, asked[0], "one", "uno", thread_ts=thread)))
            await slack.settled(handled + 1)
            assert len(slack.fake.posted(channel, thread)) == 2  # nothing new was posted
    finally:
        await fake.stop()
