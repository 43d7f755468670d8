"""Versions of a turn: an edit or a retry forks a new version, and switching picks another one.

The fake model echoes every user message it was sent, so each answer shows exactly which
branch the model saw: an edited turn must not see what came after the original, and a
switch back must continue from the original branch's newest turn.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.conversations.service import ConversationService
from core.errors import InvalidInput, RewindOutOfRange
from core.keys import ThreadKey
from core.types import Command


async def _questions(service: ConversationService, key: ThreadKey) -> list[tuple[str, int, int]]:
    return [(t.question, t.version, t.versions) for t in await service.history(key, 20)]


async def test_an_edit_forks_a_new_version_and_a_switch_goes_back(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("edit"))
    for q in ("one", "two", "three"):
        await service.ask(key, q)
    second = (await service.history(key, 3))[1]

    edited = await service.replay(key, second.checkpoint_id, user="ada", text="TWO")
    assert edited.text == "heard: one | TWO"  # the model saw the branch as it was before "two"
    assert await _questions(service, key) == [("one", 1, 1), ("TWO", 2, 2)]
    versions = await service.versions(key, second.checkpoint_id)
    assert [(t.question, t.answer) for t in versions] == [
        ("two", "heard: one | two"), ("TWO", "heard: one | TWO")]

    switched = await service.switch(key, second.checkpoint_id, user="bob")
    assert switched.head is not None and switched.head.question == "three"  # the newest end of that branch
    assert await _questions(service, key) == [("one", 1, 1), ("two", 1, 2), ("three", 1, 1)]
    assert (await service.ask(key, "four")).text == "heard: one | two | three | four"

    audit = await service.audit(key)
    assert [r.user for r in audit.rewinds] == ["ada", "bob"]  # both head moves, oldest first
    assert len(audit.turns) == 5  # nothing deleted: the edited version is kept too


async def test_retry_and_branch_commands(service: ConversationService, unique: Callable[[str], str]) -> None:
    key = ThreadKey.api(unique("retry"))
    await service.ask(key, "one")
    await service.ask(key, "two")
    again = await service.run(key, Command("retry"), "ada")
    assert again.startswith("heard: one | two") and "Version 2 of 2 of turn 2" in again
    listed = await service.run(key, Command("branch"), "ada")
    assert listed.splitlines()[0] == "Turn 2 has 2 versions (/branch N switches):"
    assert listed.splitlines()[2].startswith("* ")  # the retried version is the live one
    assert (await service.run(key, Command("branch", "1"), "ada")).startswith("Switched to version 1 of 2")
    history = await service.run(key, Command("history"), "ada")
    assert history.splitlines()[1].endswith("\u20391/2\u203a")
    edited = await service.run(key, Command("edit", "1 ONE"), "ada")
    assert edited.startswith("heard: ONE") and "Version 2 of 2 of turn 1" in edited


@pytest.mark.parametrize(("command", "refusal"), [
    (Command("edit", "0 text"), RewindOutOfRange),
    (Command("edit", "3 text"), RewindOutOfRange),
    (Command("edit", "1"), InvalidInput),
    (Command("edit", "one text"), InvalidInput),
    (Command("edit", "1 \x00\x01"), InvalidInput),
    (Command("retry", "now"), InvalidInput),
    (Command("branch"), InvalidInput),
    (Command("branch", "2"), InvalidInput),
])
async def test_bad_version_commands_change_nothing(
    service: ConversationService, unique: Callable[[str], str], command: Command, refusal: type[Exception]
) -> None:
    key = ThreadKey.api(unique("bad"))
    await service.ask(key, "one")
    with pytest.raises(refusal):
        await service.run(key, command, "ada")
    assert await _questions(service, key) == [("one", 1, 1)]
    assert len((await service.audit(key)).turns) == 1


async def test_versions_belong_to_one_conversation(service: ConversationService, unique: Callable[[str], str]) -> None:
    mine, theirs = ThreadKey.api(unique("mine")), ThreadKey.api(unique("theirs"))
    await service.ask(mine, "one")
    await service.ask(theirs, "one")
    await service.run(theirs, Command("retry"), "bob")
    assert await _questions(service, mine) == [("one", 1, 1)]  # another conversation's retry is not a version here
    other = (await service.history(theirs, 1))[0]
    with pytest.raises(RewindOutOfRange):
        await service.switch(mine, other.checkpoint_id)
