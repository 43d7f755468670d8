"""Discord: who said what (display names from the payload), /persona, /model and /usage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from core.agents.agent import SYSTEM_PROMPT
from core.settings import Settings
from tests.bots.discord.harness import Discord, eventually, said
from tests.bots.discord.test_feedback import _world
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
async def bot(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[Discord, dict[str, Any]]]:
    """Ada is an admin; returned with a person who is not."""
    async with _world(make_settings, None, ada_is_admin=True, BACKTRACK_MODELS="gpt-4o-mini,big-model") as w:
        yield w, w.fake.user("bob")


async def command(w: Discord, user: dict[str, Any], command: str, **options: str) -> tuple[str, bool]:
    """Run a slash command as ``user``; its follow-up text and whether only they saw it."""
    token = await w.fake.slash(w.general, command, options, user=user)
    followup = await eventually(
        lambda: next((f for f in w.fake.followups if f["token"] == token), None), f"the /{command} follow-up"
    )
    return str(followup["content"]), bool(followup.get("flags", 0) & 64)


def system_prompts(fake_llm: FakeOpenAI) -> list[str]:
    return [next(m["content"] for m in r["messages"] if m["role"] == "system") for r in fake_llm.requests]


async def test_display_names_tell_the_people_of_a_channel_apart(
    bot: tuple[Discord, dict[str, Any]], fake_llm: FakeOpenAI
) -> None:
    w, _ = bot
    ana, bob = w.fake.user("ana"), w.fake.user("bob")
    ana["global_name"] = "Ana María"
    await w.fake.say(w.general, "hello", author=ana, mention_bot=True)
    await said(w.fake, w.general, "heard: hello")
    await w.fake.say(w.general, "hi Ana", author=bob, mention_bot=True)
    await said(w.fake, w.general, "heard: Ana María: hello | bob: hi Ana")
    assert all("name" not in m for r in fake_llm.requests for m in r["messages"])


async def test_persona_by_an_admin_applies_to_the_channel_and_others_are_refused(
    bot: tuple[Discord, dict[str, Any]], fake_llm: FakeOpenAI
) -> None:
    w, bob = bot
    refused, private = await command(w, bob, "persona", text="Be a pirate.")
    assert refused == "Only the bot's admins may change the persona here"
    told, private = await command(w, w.ada, "persona", text="Be a pirate.")
    assert told.startswith("Saved") and not private, "the channel sees a changed persona"
    await w.fake.say(w.general, "one", author=w.ada, mention_bot=True)
    await said(w.fake, w.general, "heard: one")
    await w.fake.say(w.random, "two", author=w.ada, mention_bot=True)
    await said(w.fake, w.random, "heard: two")
    assert system_prompts(fake_llm) == ["Be a pirate.", SYSTEM_PROMPT]
    shown, private = await command(w, bob, "persona")
    assert "Be a pirate." in shown and private


async def test_model_and_usage_commands(bot: tuple[Discord, dict[str, Any]], fake_llm: FakeOpenAI) -> None:
    w, _ = bot
    told, _ = await command(w, w.ada, "model", name="big-model")
    assert "Model: big-model" in told
    await w.fake.say(w.general, "count me", author=w.ada, mention_bot=True)
    await said(w.fake, w.general, "heard: count me")
    assert fake_llm.requests[-1]["model"] == "big-model"
    [(prompt, completion)] = fake_llm.reported
    text, private = await command(w, w.ada, "usage")
    assert f"You: today {prompt + completion:,} ({prompt:,} in, {completion:,} out)" in text and private
