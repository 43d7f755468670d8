"""``/help``: the same grouped list everywhere, each entry with an example."""

from __future__ import annotations

from collections.abc import Callable

from core.conversations.commands import COMMANDS
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.types import Command

GROUPS = ("Ask:", "Look back:", "Branch:", "Team:", "Tools:", "Memory:", "Settings:")


async def test_help_lists_every_group_with_an_example_and_commands_that_exist(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    text = await service.run(ThreadKey.api(unique("help")), Command("help"), "ada")
    heads = [line for line in text.splitlines() if not line.startswith(" ")]
    assert tuple(heads) == GROUPS
    entries = [line for line in text.splitlines() if line.startswith("  ")]
    assert all(" \u2014 " in line for line in entries)  # each one says what it does, or shows it
    named = {w.strip(":,.")[1:] for line in entries for w in line.split() if w.startswith("/")}
    named = {n for n in named if n.isalpha()}
    assert named and named <= set(COMMANDS), named - set(COMMANDS)  # every one it names exists
