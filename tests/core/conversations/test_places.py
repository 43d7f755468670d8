"""Per-place persona and model, and who said what, against PostgreSQL and the fake model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from core.agents.agent import SYSTEM_PROMPT
from core.conversations.service import ConversationService
from core.errors import InvalidInput, InvalidKey, NotPermitted
from core.keys import ThreadKey
from core.metrics import LLM_SECONDS
from core.runtime import open_service
from core.settings import Settings
from core.types import Command
from tests.fakes.openai_server import FakeOpenAI, user_texts

ADMIN = "UADMIN1"


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10].upper()


def system_prompt(request: dict[str, Any]) -> str:
    [system] = [m["content"] for m in request["messages"] if m["role"] == "system"]
    return str(system)


@pytest.fixture
async def admin_service(make_settings: Callable[..., Settings]) -> AsyncIterator[ConversationService]:
    settings = make_settings(BACKTRACK_ADMINS=ADMIN, BACKTRACK_MODELS="gpt-4o-mini,big-model")
    async with open_service(settings) as service:
        yield service


async def test_persona_changes_the_next_turn_only_in_that_place(
    admin_service: ConversationService, fake_llm: FakeOpenAI
) -> None:
    team, channel = _id("T"), _id("C")
    here = ThreadKey.slack(team, channel, "1700000000.000100")
    same_channel = ThreadKey.slack(team, channel, "1700000000.000200")
    elsewhere = ThreadKey.slack(team, _id("C"), "1700000000.000300")
    await admin_service.ask(here, "before", user="U1")
    told = await admin_service.run(here, Command("persona", "You are a pirate. Say arr."), ADMIN)
    assert "applies from the next message" in told
    await admin_service.ask(same_channel, "after", user="U1")
    await admin_service.ask(elsewhere, "other channel", user="U1")
    prompts = [system_prompt(r) for r in fake_llm.requests]
    assert prompts == [SYSTEM_PROMPT, "You are a pirate. Say arr.", SYSTEM_PROMPT]

    shown = await admin_service.run(same_channel, Command("persona"), "U1")
    assert "You are a pirate. Say arr." in shown and f"by {ADMIN}" in shown
    await admin_service.run(here, Command("persona", "reset"), ADMIN)
    await admin_service.ask(here, "again", user="U1")
    assert system_prompt(fake_llm.requests[-1]) == SYSTEM_PROMPT
    assert "built-in persona" in await admin_service.run(here, Command("persona"), "U1")


async def test_a_non_admin_is_refused_and_nothing_changes(
    admin_service: ConversationService, make_settings: Callable[..., Settings], fake_llm: FakeOpenAI
) -> None:
    key = ThreadKey.slack(_id("T"), _id("C"), None)
    for command in (Command("persona", "be rude"), Command("model", "big-model"), Command("persona", "reset")):
        with pytest.raises(NotPermitted, match="only the bot's admins"):
            await admin_service.run(key, command, "USTRANGER")
    await admin_service.ask(key, "hello", user="USTRANGER")
    assert system_prompt(fake_llm.requests[-1]) == SYSTEM_PROMPT
    assert fake_llm.requests[-1]["model"] == "gpt-4o-mini"

    async with open_service(make_settings()) as nobody:  # no BACKTRACK_ADMINS at all
        with pytest.raises(NotPermitted, match="BACKTRACK_ADMINS"):
            await nobody.run(key, Command("persona", "be rude"), ADMIN)
        # the console is the operator's own terminal
        console = ThreadKey.console(_id("c"))
        assert "Saved" in await nobody.run(console, Command("persona", "Be brief."), "console")


async def test_model_is_picked_from_the_allow_list(
    admin_service: ConversationService, fake_llm: FakeOpenAI
) -> None:
    key = ThreadKey.slack(_id("T"), _id("C"), None)
    shown = await admin_service.run(key, Command("model"), "U1")
    assert "Model: gpt-4o-mini (the default)" in shown and "Allowed: gpt-4o-mini, big-model" in shown
    with pytest.raises(InvalidInput, match="not allowed"):
        await admin_service.run(key, Command("model", "gpt-5-ultra"), ADMIN)
    before = LLM_SECONDS.labels(model="big-model")._sum.get()
    await admin_service.run(key, Command("model", "big-model"), ADMIN)
    await admin_service.ask(key, "hi", user="U1")
    assert fake_llm.requests[-1]["model"] == "big-model"
    assert LLM_SECONDS.labels(model="big-model")._sum.get() > before, "metrics name the model used"
    await admin_service.ask(ThreadKey.slack(_id("T"), _id("C"), None), "elsewhere", user="U1")
    assert fake_llm.requests[-1]["model"] == "gpt-4o-mini"


async def test_a_discord_channel_falls_back_to_its_guild(
    service: ConversationService, fake_llm: FakeOpenAI
) -> None:
    guild = int(uuid.uuid4().int % 10**17)
    channel, other = ThreadKey.discord(guild, 111), ThreadKey.discord(guild, 222)
    await service.change_place(f"discord:{guild}", "ops", persona="Guild voice.")
    await service.change_place(f"discord:{guild}:111", "ops", persona="Channel voice.")
    await service.ask(channel, "one", user="1")
    await service.ask(other, "two", user="1")
    assert [system_prompt(r) for r in fake_llm.requests] == ["Channel voice.", "Guild voice."]
    await service.change_place(f"discord:{guild}:111", "ops", persona=None)
    await service.ask(channel.nth(1), "after /new", user="1")  # every generation is the same place
    assert system_prompt(fake_llm.requests[-1]) == "Guild voice."
    own, choice = await service.place(f"discord:{guild}:111")
    assert own is not None and own.persona is None and own.updated_by == "ops"
    assert choice.persona == "Guild voice." and choice.persona_from is not None
    assert choice.persona_from.place == f"discord:{guild}"


@pytest.mark.parametrize("place", ["slack:T1", "discord:abc", "slack:T1:C1:123.4", "", "nowhere"])
async def test_a_malformed_place_is_refused(service: ConversationService, place: str) -> None:
    with pytest.raises(InvalidKey, match="invalid place"):
        await service.change_place(place, "ops", persona="x")


async def test_an_unusable_persona_is_refused(admin_service: ConversationService) -> None:
    key = ThreadKey.slack(_id("T"), _id("C"), None)
    with pytest.raises(InvalidInput, match="too long"):
        await admin_service.run(key, Command("persona", "x" * 5000), ADMIN)
    assert "built-in persona" in await admin_service.run(key, Command("persona"), ADMIN)


# -- who said what ---------------------------------------------------------------------


async def test_speaker_names_arrive_when_several_people_speak(
    service: ConversationService, fake_llm: FakeOpenAI
) -> None:
    key = ThreadKey.slack(_id("T"), _id("C"), "1700000000.000100")
    await service.ask(key, "hello", user="U1", speaker="Ana María")
    assert user_texts(fake_llm.requests[-1]) == ["hello"], "one person: sent as typed"
    await service.ask(key, "hi both", user="U2", speaker="Bob")
    assert user_texts(fake_llm.requests[-1]) == ["Ana María: hello", "Bob: hi both"]
    assert all("name" not in m for m in fake_llm.requests[-1]["messages"])
    turns = await service.history(key)
    assert [(t.user, t.question) for t in turns] == [("U1", "hello"), ("U2", "hi both")]


async def test_the_platform_id_stands_in_for_a_missing_name(
    service: ConversationService, fake_llm: FakeOpenAI
) -> None:
    key = ThreadKey.api(_id("a"))
    await service.ask(key, "first", user="alice")
    await service.ask(key, "second", user="bob")
    assert user_texts(fake_llm.requests[-1]) == ["alice: first", "bob: second"]
