"""Memory that follows the branch: what one conversation taught is known in the others of
that person, until a rewind takes the teaching turn away; switching back restores it.

The fake model calls ``remember`` / ``forget`` when told to; what it was sent shows what the
agent knew (the system prompt's "What you know about" block).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.conversations.service import ConversationService
from core.errors import InvalidInput
from core.keys import ThreadKey
from core.types import Command
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


def _known(fake_llm: FakeOpenAI) -> str:
    """What the last model call knew about the asker."""
    system = str(fake_llm.requests[-1]["messages"][0]["content"])
    return system.split("What you know about", 1)[1] if "What you know about" in system else ""


def _threads(unique: Callable[[str], str]) -> tuple[ThreadKey, ThreadKey, ThreadKey]:
    team = "T" + unique("").replace("-", "").upper()
    return (ThreadKey.slack(team, "C1", "1700000000.000100"), ThreadKey.slack(team, "C2", "1700000000.000200"),
            ThreadKey.slack("T" + unique("").replace("-", "").upper(), "C1", "1700000000.000100"))


async def _teach(
    service: ConversationService, fake_llm: FakeOpenAI, key: ThreadKey, said: str, topic: str, fact: str
) -> None:
    """U1 says ``said`` in ``key`` and the model remembers ``topic``: ``fact`` for them."""
    fake_llm.queue(ToolCall("remember", {"topic": topic, "fact": fact}), Reply("Ok."))
    await service.ask(key, said, user="U1")


async def test_a_memory_follows_the_branch_of_the_turn_that_wrote_it(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    a, b, elsewhere = _threads(unique)
    await service.ask(a, "hello", user="U1")
    await _teach(service, fake_llm, a, "remember that I am on the payments team", "team", "payments")
    await service.ask(b, "what team am I on?", user="U1", speaker="Ada")
    assert _known(fake_llm) == " Ada:\n- team: payments"  # thread B of the same workspace knows

    await service.ask(b, "who am I?", user="U2")  # another person never sees it
    assert _known(fake_llm) == ""
    await service.ask(elsewhere, "who am I?", user="U1")  # nor the same id in another workspace
    assert _known(fake_llm) == ""
    await service.ask(ThreadKey.discord(1, 2), "who am I?", user="U1")  # nor on another platform
    assert _known(fake_llm) == ""

    [_, taught] = await service.history(a)
    await service.rewind(a, 1, user="U1")  # to before "remember"
    await service.ask(b, "and now?", user="U1")
    assert _known(fake_llm) == ""
    assert "I remember nothing about you" in await service.run(b, Command("memory"), "U1")

    await service.switch(a, taught.checkpoint_id, user="U1")  # forward again: it comes back
    await service.ask(b, "and now?", user="U1")
    assert "- team: payments" in _known(fake_llm)
    listing = await service.run(b, Command("memory"), "U1")
    assert f"1. team: payments (from {a}, turn 2)" in listing


async def test_the_newer_live_write_wins_and_forget_is_for_everyone(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    a, b, _ = _threads(unique)
    await _teach(service, fake_llm, a, "I use metric", "units", "metric")
    await _teach(service, fake_llm, b, "actually imperial", "units", "imperial")
    await service.ask(a, "which units?", user="U1")
    assert _known(fake_llm).endswith("- units: imperial")  # two conversations: the newer write wins

    await service.rewind(b, 1, user="U1")  # the newer one rewound away: the older comes back
    await service.ask(a, "which units now?", user="U1")
    assert _known(fake_llm).endswith("- units: metric")

    fake_llm.queue(ToolCall("forget", {"topic": "units"}), Reply("Forgotten."))
    await service.ask(b, "forget my units", user="U1")
    await service.ask(a, "which units?", user="U1")
    assert _known(fake_llm) == ""

    await _teach(service, fake_llm, a, "I am on payments", "team", "payments")
    assert "1. team: payments" in await service.run(a, Command("memory"), "U1")
    with pytest.raises(InvalidInput):
        await service.run(a, Command("memory", "forget 9"), "U1")
    assert (await service.run(a, Command("memory", "forget 1"), "U1")).startswith("Forgot 'team'")
    await service.rewind(a, 1, user="U1")  # a forget by command is not undone by a rewind
    assert "I remember nothing" in await service.run(a, Command("memory"), "U1")
    await _teach(service, fake_llm, a, "I have a cat", "pet", "a cat")
    assert "records deleted" in await service.run(a, Command("memory", "forget all"), "U1")
    assert "I remember nothing" in await service.run(a, Command("memory"), "U1")


async def test_forgetting_a_conversation_takes_its_memories_and_prune_deletes_their_text(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    a, b, _ = _threads(unique)
    await _teach(service, fake_llm, a, "remember the launch date", "secret", "the launch is in May")
    await service.forget(a)
    await service.ask(b, "what do you know?", user="U1")
    assert _known(fake_llm) == ""  # gone with its conversation at once
    report = await service.prune()
    assert report.memories >= 1
    async with service.pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT count(*) AS n FROM store WHERE value->>'conversation' = %s", (str(a),))).fetchone()
    assert rows is not None and rows["n"] == 0  # and its text is deleted
