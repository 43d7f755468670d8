"""Bad input to the Discord bot, one row each: the user reads a clear sentence (or, where
that is what they expect, nothing), never a traceback, the bot token never reaches the
log, and the conversation keeps the one turn it had.

Only what Discord itself would deliver is sent: slash options of their registered type
within Discord's integer range (±(2^53 - 1); the commands register no min or max), and
messages of at most 2000 characters. A message over the bot's limit therefore needs a
limit below that: this module runs with ``BACKTRACK_MAX_MESSAGE_CHARS`` at 1500. Buttons
naming an approval or answer that does not exist come from a forged copy of the message
(``FakeDiscord.click``'s ``seen``), as a stale or tampered client would send them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from bots.discord import conversation_key
from bots.discord.feedback import REWIND_HERE
from core.conversations.branches import MAX_HISTORY
from core.conversations.service import ConversationService
from core.settings import Settings
from tests.bots.discord.harness import Discord, ask, eventually, running, said
from tests.fakes.openai_server import FakeOpenAI

LIMIT = 1500
"""BACKTRACK_MAX_MESSAGE_CHARS here: below what Discord lets a user send (2000)."""
DISCORD_MAX_INT = 2**53 - 1
"""The largest integer option Discord sends."""
LONG = "x" * 1977
"""With the bot's 23-character mention in front, 2000 characters: the most Discord takes."""

Via = Literal["message", "open message", "slash", "click", "menu"]
Place = Literal["general", "lounge", "thread"]


@dataclass(frozen=True)
class Row:
    id: str
    via: Via
    sent: str | tuple[str, dict[str, int]]
    """The message text, a slash command and its options, a forged custom_id or the menu's target."""
    told: str | None
    """What the user reads (exactly); None: the bot stays silent."""
    place: Place = "general"
    private: bool = False
    """Only the one who acted sees the answer (an ephemeral reply)."""


@dataclass
class Given:
    """The conversation before the bad input: one answered turn."""

    w: Discord
    channel: int
    question: int
    answer: dict[str, Any]
    generation: str
    checkpoint: str
    """Of the answer, as its 👍/👎 buttons name them."""


NO_ANSWER = "That answer is not a turn of this conversation any more"
NO_APPROVAL = "There is no such approval request in this conversation."
NOT_AN_ANSWER = (
    "Rewind to here works on backtrack's answers: the last message of an answer, the one with the 👍/👎 buttons."
)
FB = "backtrack:fb:{vote}:{gen}:{checkpoint}"

ROWS: list[Row] = [
    # -- messages ---------------------------------------------------------------------
    Row("mention of only NUL and control characters", "message", "\x00\x01\x07\x1b\x7f", "The message is empty"),
    Row("mention of only separator control characters", "message", "\x1c\x1d\x1e\x1f\x0b\x0c",
        "The message is empty"),
    Row("open channel: only NUL characters", "open message", "\x00\x00\x00", None, place="lounge"),
    Row("open channel: only separator control characters", "open message", "\x1c\x1f\x0b", None,
        place="lounge"),
    Row("mention over the length limit", "message", LONG,
        f"The message is too long ({len(LONG):,} characters; the limit is {LIMIT:,})"),
    # -- slash commands ---------------------------------------------------------------
    Row("rewind -1", "slash", ("rewind", {"steps": -1}), "Rewind takes a number of turns of at least 1"),
    Row("rewind 0", "slash", ("rewind", {"steps": 0}), "Rewind takes a number of turns of at least 1"),
    Row("rewind past the start", "slash", ("rewind", {"steps": 2}),
        "Cannot rewind 2 turns: this conversation has 1 on its current branch"),
    Row("rewind the largest integer", "slash", ("rewind", {"steps": DISCORD_MAX_INT}),
        "/rewind takes a number of turns to go back below a million, e.g. /rewind 1"),
    Row("rewind the smallest integer", "slash", ("rewind", {"steps": -DISCORD_MAX_INT}),
        "/rewind takes a number of turns to go back below a million, e.g. /rewind 1"),
    Row("history limit 0", "slash", ("history", {"limit": 0}),
        f"History takes a limit between 1 and {MAX_HISTORY}", private=True),
    Row("history limit -1", "slash", ("history", {"limit": -1}),
        f"History takes a limit between 1 and {MAX_HISTORY}", private=True),
    Row("history limit over the maximum", "slash", ("history", {"limit": MAX_HISTORY + 1}),
        f"History takes a limit between 1 and {MAX_HISTORY}", private=True),
    Row("history limit the largest integer", "slash", ("history", {"limit": DISCORD_MAX_INT}),
        "/history takes a number of turns to show below a million, e.g. /history 10", private=True),
    # -- forged buttons -----------------------------------------------------------------
    Row("approve an approval that does not exist", "click", "backtrack:approve:999999999", NO_APPROVAL,
        private=True),
    Row("reject an approval id past bigint", "click", "backtrack:reject:" + "9" * 80, NO_APPROVAL,
        private=True),
    Row("rate a checkpoint that does not exist", "click",
        FB.format(vote="up", gen="{gen}", checkpoint="00000000-0000-0000-0000-000000000000"), NO_ANSWER,
        private=True),
    Row("rate an answer of a generation that never was", "click",
        FB.format(vote="down", gen=999999, checkpoint="{checkpoint}"), NO_ANSWER, private=True),
    Row("rate an answer of a later generation in a thread", "click",
        FB.format(vote="up", gen=1, checkpoint="{checkpoint}"), NO_ANSWER, place="thread", private=True),
    # -- the message command ------------------------------------------------------------
    Row("rewind to here on the question, not the answer", "menu", "question", NOT_AN_ANSWER, private=True),
    Row("rewind to here on a message the bot never answered", "menu", "chatter", NOT_AN_ANSWER,
        private=True),
]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """The service's settings: a message limit a Discord message can pass."""
    return make_settings(BACKTRACK_MAX_MESSAGE_CHARS=LIMIT)


# -- how each kind of input is delivered ----------------------------------------------


def _text(row: Row) -> str:
    assert isinstance(row.sent, str)
    return row.sent


async def _message(g: Given, row: Row) -> int:
    sent = await ask(g.w, g.channel, _text(row))
    assert len(g.w.fake.messages[sent]["content"]) <= 2000, "Discord would refuse this message"
    return sent


async def _open_message(g: Given, row: Row) -> int:
    return await g.w.fake.say(g.channel, _text(row), author=g.w.ada)


async def _slash(g: Given, row: Row) -> str:
    assert isinstance(row.sent, tuple)
    name, options = row.sent
    return await g.w.fake.slash(g.channel, name, options, user=g.w.ada)


async def _click(g: Given, row: Row) -> str:
    """A click on a button the answer does not show: the clicker's copy of it is forged."""
    custom_id = _text(row).format(gen=g.generation, checkpoint=g.checkpoint)
    forged = copy.deepcopy(g.answer)
    button = {"type": 2, "style": 2, "label": "forged", "custom_id": custom_id}
    forged["components"] = [{"type": 1, "components": [button]}]
    return await g.w.fake.click(int(g.answer["id"]), custom_id, user=g.w.ada, seen=forged)


async def _menu(g: Given, row: Row) -> str:
    if row.sent == "question":
        target = g.question
    else:  # people talking among themselves: not addressed, never answered
        target = await g.w.fake.say(g.channel, "just chatting", author=g.w.ada)
    return await g.w.fake.message_command(target, REWIND_HERE, user=g.w.ada)


DELIVER: dict[Via, Callable[[Given, Row], Awaitable[int | str]]] = {
    "message": _message,
    "open message": _open_message,
    "slash": _slash,
    "click": _click,
    "menu": _menu,
}


# -- what the user sees --------------------------------------------------------------


def _reply_to(w: Discord, channel: int, message_id: int) -> dict[str, Any] | None:
    return next(
        (m for m in w.fake.bot_messages(channel)
         if (m.get("message_reference") or {}).get("message_id") == str(message_id)),
        None,
    )


def _interaction_answer(w: Discord, token: str) -> tuple[str, bool] | None:
    """The text an interaction was answered with, and whether only its user saw it."""
    for call in w.fake.calls_to("POST", rf"/interactions/\d+/{token}/callback"):
        if call.body["type"] == 4:
            data = call.body.get("data") or {}
            return str(data.get("content")), bool(data.get("flags", 0) & 64)
    followup = next((f for f in w.fake.followups if f["token"] == token), None)
    if followup is None:
        return None
    return str(followup.get("content")), bool(followup.get("flags", 0) & 64)


async def _told(g: Given, sent: int | str) -> tuple[str, bool]:
    if isinstance(sent, str):
        return await eventually(lambda: _interaction_answer(g.w, sent), "the answer to the interaction")
    reply = await eventually(lambda: _reply_to(g.w, g.channel, sent), "the reply to the message")
    assert not reply.get("components"), "a refusal carries no buttons"
    return str(reply["content"]), False


async def _history(g: Given) -> str:
    """/history, privately: once it answers, an ignored message has been ignored."""
    token = await g.w.fake.slash(g.channel, "history", {}, user=g.w.ada)
    text, _ = await eventually(lambda: _interaction_answer(g.w, token), "/history")
    return text


def _everything_posted(w: Discord) -> list[str]:
    posted = [str(m.get("content")) for m in w.fake.messages.values() if m["author"]["id"] == w.fake.bot["id"]]
    posted += [str(f.get("content")) for f in w.fake.followups]
    posted += [str((c.body.get("data") or {}).get("content")) for c in w.fake.calls_to("POST", r"/interactions/.*")]
    return posted


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
async def test_bad_input_gets_a_clear_answer_and_changes_nothing(
    row: Row,
    world: Discord,
    discord_settings: Callable[..., Settings],
    service: ConversationService,
    fake_llm: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # before the bot logs in: its token must stay out of every record
    channel = {"general": world.general, "lounge": world.lounge, "thread": world.thread}[row.place]
    key = conversation_key(world.fake.guild_id, channel)
    async with running(discord_settings(), service):
        question = await ask(world, channel, "keep me")
        answer = await said(world.fake, channel, "heard: keep me")
        shown = copy.deepcopy(answer)
        [up] = [b["custom_id"] for r in answer["components"] for b in r["components"] if b["emoji"]["name"] == "👍"]
        given = Given(world, channel, question, answer, *up.split(":")[3:])

        sent = await DELIVER[row.via](given, row)
        if row.told is None:
            assert (await _history(given)).startswith("1. keep me")
            assert _reply_to(world, channel, int(sent)) is None, "the bot should stay silent"
        else:
            text, private = await _told(given, sent)
            assert text == row.told
            assert private == row.private, "seen by the wrong people"

        assert world.fake.messages[int(answer["id"])] == shown, "the answer and its buttons stay as they were"

    assert len(fake_llm.requests) == 1, "the model heard only the first question"
    assert not [p for p in _everything_posted(world) if "Traceback" in p]
    assert [t.question for t in await service.history(key)] == ["keep me"]
    token = world.fake.token
    assert token not in caplog.text
    assert not [r for r in caplog.records if token in r.getMessage()]
