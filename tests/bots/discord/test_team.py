"""Discord in team mode: the reply shows what the team is doing, then becomes the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.runtime import open_service
from core.settings import Settings
from tests.bots.discord.harness import Discord, ask, running, said
from tests.core.agents.test_team import script_delegation
from tests.fakes.openai_server import FakeOpenAI


async def test_the_reply_shows_researching_then_analysing_then_the_answer(
    world: Discord, discord_settings: Callable[..., Settings], fake_llm: FakeOpenAI
) -> None:
    settings = discord_settings(BACKTRACK_AGENT="team")
    async with open_service(settings) as service, running(settings, service):
        script_delegation(fake_llm, answer="Paris, say the researcher and the analyst.")
        await ask(world, world.general, "capital of France, doubled?")
        answer = await said(world.fake, world.general, "Paris, say the researcher and the analyst.")
    calls = world.fake.calls_to("POST", rf"/channels/{world.general}/messages") + world.fake.calls_to(
        "PATCH", rf"/channels/{world.general}/messages/{answer['id']}")
    shown: list[Any] = [c.body.get("content") for c in calls if isinstance(c.body, dict)]
    assert shown[:2] == ["*researching…*", "*analysing…*"]
    assert shown[-1] == "Paris, say the researcher and the analyst."
    assert len(world.fake.bot_messages(world.general)) == 1  # one reply, edited
