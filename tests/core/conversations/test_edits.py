"""Gestures on chat messages: an edit forks once, a formatting edit does nothing, a repeat
completes an answer that was never posted, Try again and previous/next switch versions.

The fake model echoes every user message it was sent, so an answer shows the branch the
model saw.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.conversations.service import ConversationService
from core.errors import RewindOutOfRange
from core.keys import ThreadKey


async def _asked(service: ConversationService, key: ThreadKey, message: str, text: str) -> str:
    """Ask ``text`` as the chat message ``message`` by ada, posted as ``reply-<message>``."""
    answer = await service.ask(key, text, user="ada")
    await service.gestures.answered(key, message, "ada", answer, f"reply-{message}")
    return answer.checkpoint_id


async def test_an_edit_forks_once_and_marks_the_old_reply(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("edit"))
    await _asked(service, key, "m1", "one")
    await _asked(service, key, "m2", "two")
    await _asked(service, key, "m3", "three")

    edited = await service.gestures.edit(key, "m2", "ada", "TWO", "e1")
    assert edited is not None and edited.answer.text == "heard: one | TWO"  # not "three"
    assert edited.superseded == "reply-m2" and edited.source == "m2"
    assert edited.answer.turn is not None and (edited.answer.turn.version, edited.answer.turn.versions) == (2, 2)
    await service.gestures.posted(key, edited, "reply-m2b")

    assert await service.gestures.edit(key, "m2", "ada", "TWO", "e1") is None  # redelivered: once
    assert await service.gestures.edit(key, "m2", "ada", "  TWO ", "e2") is None  # formatting only
    assert await service.gestures.edit(key, "m2", "bob", "not yours", "e3") is None  # not the author
    assert await service.gestures.edit(key, "m9", "ada", "never answered", "e4") is None
    assert [t.question for t in await service.history(key, 10)] == ["one", "TWO"]
    assert len((await service.audit(key)).turns) == 4  # the original branch is kept

    again = await service.gestures.edit(key, "m2", "ada", "2", "e5")  # edited a second time
    assert again is not None and again.superseded == "reply-m2b"  # the answer shown now
    assert again.answer.turn is not None and again.answer.turn.versions == 3


async def test_a_repeat_completes_an_answer_that_was_never_posted(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("crash"))
    await _asked(service, key, "m1", "one")
    first = await service.gestures.edit(key, "m1", "ada", "uno", "e1")
    assert first is not None  # ... and the process died before posting it
    repeat = await service.gestures.edit(key, "m1", "ada", "uno", "e2")
    assert repeat is not None and repeat.answer.checkpoint_id == first.answer.checkpoint_id
    assert repeat.superseded == "reply-m1"  # the old reply is still to be marked
    assert repeat.answer.turn is not None and repeat.answer.turn.versions == 2  # shown as "2/2"
    assert len((await service.audit(key)).turns) == 2  # no second branch

    answer = await service.history(key, 1)
    retried = await service.gestures.retry(key, answer[0].checkpoint_id, "reply-m1b", "ada")
    again = await service.gestures.retry(key, answer[0].checkpoint_id, "reply-m1b", "ada")  # not posted
    assert again.answer.checkpoint_id == retried.answer.checkpoint_id
    await service.gestures.posted(key, again, "reply-m1c")
    third = await service.gestures.retry(key, answer[0].checkpoint_id, "reply-m1b", "ada")  # posted: anew
    assert third.answer.turn is not None and third.answer.turn.versions == 4
    assert third.superseded is None  # Try again keeps the previous answer as it is


async def test_previous_and_next_switch_the_branch_the_next_message_continues(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("switch"))
    await _asked(service, key, "m1", "one")
    original = await _asked(service, key, "m2", "two")
    retried = await service.gestures.retry(key, original, "reply-m2", "ada")
    shown = await service.gestures.version(key, retried.answer.checkpoint_id)
    assert (shown.turn.version, shown.turn.versions, shown.previous, shown.next) == (2, 2, original, None)

    back = await service.gestures.switch(key, original, "bob")
    assert back.turn.answer == "heard: one | two" and back.next == retried.answer.checkpoint_id
    assert (await service.ask(key, "three")).text == "heard: one | two | three"
    assert (await service.audit(key)).rewinds[-1].user == "bob"
    with pytest.raises(RewindOutOfRange):
        await service.gestures.switch(key, "not-a-checkpoint", "bob")
