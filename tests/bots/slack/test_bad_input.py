"""Bad input to the Slack bot, one table: a clear sentence or silence, and nothing changed.

Anyone can post to the endpoint and people mistype, so each row checks, in a thread with
one answered turn, that the user reads one clear sentence (or nothing, where Slack would
never send the request or it is not for the bot), that no traceback or secret leaks, and
that the thread still has just that turn.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Literal, NamedTuple

import pytest

from bots.slack.app import EVENTS_PATH
from bots.slack.feedback import FEEDBACK
from bots.slack.replies import APPROVE
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.settings import Settings
from tests.bots.slack.harness import SECRET, Harness, _id, fixture, sign
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import Posted, wait_until

Kind = Literal["mention", "say", "slash", "approve", "feedback", "event", "raw", "unsigned"]
"""How a row's input arrives; ``_send`` delivers each."""


class Row(NamedTuple):
    id: str
    kind: Kind
    payload: Any
    told: str | None
    """The one sentence the user reads; None: the bot stays silent."""
    status: int = 200


NO_TURN = "0:1f000000-0000-6000-8000-000000000000:up"
"""A feedback value naming a checkpoint that no turn ends at."""

# (the command's text after its name, the sentence it answers): typed as a slash command
# and as ``!command`` in the thread, which must read the same.
COMMANDS: list[tuple[str, str]] = [
    ("rewind -1", "Rewind takes a number of turns of at least 1"),
    ("rewind 0", "Rewind takes a number of turns of at least 1"),
    ("rewind 2", "Cannot rewind 2 turns: this conversation has 1 on its current branch"),
    ("rewind " + "9" * 40, "/rewind takes a number of turns to go back below a million, e.g. /rewind 1"),
    ("rewind lots", "/rewind takes a number of turns to go back, e.g. /rewind 1"),
    ("history -3", "History takes a limit between 1 and 200"),
    ("history 999999", "History takes a limit between 1 and 200"),
    ("history " + "9" * 40, "/history takes a number of turns to show below a million, e.g. /history 10"),
    ("team maybe", "/team takes on or off, e.g. /team on (or nothing, to show the mode)"),
    ("approve", "Nothing here is waiting for approval."),
]

ROWS: list[Row] = [
    # messages in the thread
    Row("only-control-chars", "mention", "\x00\x00\x01\x07\x1b\x7f", "The message is empty"),
    Row("over-max-length", "say", "x" * 16_001,
        "The message is too long (16,001 characters; the limit is 16,000)"),
    *(Row(f"slash /{text[:20]}", "slash", text, told) for text, told in COMMANDS),
    *(Row(f"thread !{text[:20]}", "say", f"!{text}", told) for text, told in COMMANDS),
    # slash commands Slack never sends: /backtrack is not registered (each command is its own)
    Row("unregistered-slash-command", "slash", "backtrack history", None, 404),
    # buttons whose value the bot never made
    Row("approve-unknown-approval", "approve", "987654321",
        "There is no such approval request in this conversation."),
    Row("approve-40-digit-approval", "approve", "9" * 40,
        "There is no such approval request in this conversation."),
    Row("approve-non-numeric", "approve", "1; DROP TABLE approvals", None),
    Row("feedback-unknown-checkpoint", "feedback", NO_TURN,
        "That answer is not a turn of this conversation any more"),
    Row("feedback-malformed-value", "feedback", "0:../../etc:up", None),
    Row("feedback-no-vote", "feedback", NO_TURN.removesuffix(":up"), None),
    # events Slack never sends, or that are not the bot's to answer
    Row("event-text-not-a-string", "event", {"text": {"x": 1}}, None),
    Row("event-without-channel", "event", {"channel": None}, None),
    # the transport
    Row("bad-signature", "unsigned", "<@{bot}> rewind everything", None, 401),
    Row("malformed-json-signed", "raw", ("application/json", '{"type": "event_callback", "event": {', True),
        None, 400),
    Row("malformed-payload-signed", "raw", ("application/x-www-form-urlencoded", "payload={not json", True),
        None, 400),
    Row("malformed-json-unsigned", "raw", ("application/json", '{"type": "event_callback", "event": {', False),
        None, 401),
]


def _secrets(settings: Settings) -> list[str]:
    assert settings.slack_signing_secret is not None and settings.slack_bot_token is not None
    return [settings.slack_signing_secret.get_secret_value(), settings.slack_bot_token.get_secret_value()]


async def _post(slack: Harness, raw: str, content_type: str, secret: str = SECRET) -> tuple[int, str]:
    """POST ``raw`` as Slack would, signed with ``secret``; the status and the body answered."""
    assert slack.session is not None
    stamp = int(time.time())
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(stamp),
               "X-Slack-Signature": sign(raw, stamp, secret)}
    async with slack.session.post(slack.url + EVENTS_PATH, data=raw, headers=headers) as response:
        return response.status, await response.text()


def _button(answer: Posted, action_id: str, value: str) -> Posted:
    """The bot's answer as a forged payload would show it: one button carrying ``value``."""
    element = {"type": "button", "action_id": action_id, "value": value, "style": "primary",
               "text": {"type": "plain_text", "text": "Click"}}
    block = {"type": "actions", "block_id": "forged", "elements": [element]}
    return Posted(answer.channel, answer.ts, answer.thread_ts, answer.text, blocks=[block])


async def _send(slack: Harness, row: Row, channel: str, ts: str, answer: Posted) -> tuple[int, str | None, str]:
    """Deliver the row's input: the HTTP status, the response_url it carried (if any), the body answered."""
    fake = slack.fake
    if row.kind == "mention":
        await slack.mention(channel, row.payload, thread_ts=ts)
        return 200, None, ""
    if row.kind == "say":
        await slack.say(channel, row.payload, thread_ts=ts)
        return 200, None, ""
    if row.kind == "slash":
        name, _, text = str(row.payload).partition(" ")
        form = fixture("slash_command")
        response_url = fake.response_url()
        form.update(team_id=fake.team, channel_id=channel, user_id=slack.user, command=f"/{name}",
                    text=text, response_url=response_url)
        return await slack.post_form(form), response_url, ""
    if row.kind in ("approve", "feedback"):
        forged = _button(answer, APPROVE if row.kind == "approve" else FEEDBACK, row.payload)
        return 200, await slack.click(forged, "Click"), ""
    if row.kind == "event":
        event = slack.message(channel, "hello", thread_ts=ts)
        event.update(row.payload)
        return await slack.deliver(slack.envelope(event)), None, ""
    if row.kind == "raw":
        content_type, raw, signed = row.payload
        status, body = await _post(slack, raw, content_type, SECRET if signed else "not-the-secret")
        return status, None, body
    assert row.kind == "unsigned"
    event = slack.message(channel, row.payload.format(bot=fake.bot_user), thread_ts=ts, kind="app_mention")
    status, body = await _post(slack, json.dumps(slack.envelope(event)), "application/json", "not-the-secret")
    return status, None, body


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in ROWS])
async def test_bad_input_gets_a_clear_sentence_or_silence_and_changes_nothing(
    slack: Harness, service: ConversationService, slack_settings: Settings, fake_llm: FakeOpenAI,
    caplog: pytest.LogCaptureFixture, row: Row,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, bot = slack.fake, slack.bot
    assert bot is not None
    channel = _id("C")
    ts = await slack.mention(channel, "keep me")
    assert await slack.answers(channel, ts) == ["heard: keep me"]
    await slack.settled(2)
    [answer] = fake.posted(channel, ts)
    key = ThreadKey.slack(fake.team, channel, ts)
    asked, handled = len(fake_llm.requests), bot.handled

    status, response_url, body = await _send(slack, row, channel, ts, answer)
    assert status == row.status, body

    in_thread = row.kind in ("mention", "say")
    if row.told is not None and in_thread:
        assert (await slack.answers(channel, ts, 2))[-1] == row.told
    elif row.told is not None:
        assert response_url is not None
        await wait_until(lambda: fake.responded(response_url), what="the private answer")
        [reply] = fake.responded(response_url)
        assert reply["response_type"] == "ephemeral" and reply["text"] == row.told
    if status == 200:  # a listener ran: wait for it to end before checking for silence
        deliveries = 2 if row.kind == "mention" else 1
        await slack.settled(handled + deliveries)
    else:
        assert bot.handled == handled, "a request Bolt refused reached a listener"

    assert [m.text for m in fake.messages] == ["heard: keep me", *([row.told] if in_thread else [])]
    private = [r["text"] for replies in fake.responses.values() for r in replies]
    assert private == ([row.told] if row.told is not None and not in_thread else [])
    seen = json.dumps([c.params for c in fake.calls]) + json.dumps(fake.responses) + body
    assert "Traceback" not in seen and 'File "' not in seen
    assert len(fake_llm.requests) == asked, "bad input reached the model"
    assert [t.question for t in await service.history(key)] == ["keep me"]
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert not [s for s in _secrets(slack_settings) if s in logged], "a secret was logged"
