"""The Discord scenario harness: the fake Discord (REST and gateway), the real client, and their fixtures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bots.discord import BacktrackClient, build_client
from core.conversations.service import ConversationService
from core.settings import Settings
from tests.fakes.discord_server import FakeDiscord

T = TypeVar("T")
WAIT = 10.0


@dataclass
class Discord:
    fake: FakeDiscord
    general: int
    random: int
    thread: int
    lounge: int
    """An open channel: every message goes to the bot."""
    dm: int
    ada: dict[str, Any]


async def eventually(check: Callable[[], T | None], what: str | Callable[[], str]) -> T:
    """Poll ``check`` until it returns something truthy, for up to ``WAIT`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not (result := check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what if isinstance(what, str) else what()}")
        await asyncio.sleep(0.02)
    return result


async def said(fake: FakeDiscord, channel: int, text: str) -> dict[str, Any]:
    """The bot's message in ``channel`` once it reads exactly ``text``."""
    found = await eventually(
        lambda: next((m for m in fake.bot_messages(channel) if m["content"] == text), None),
        lambda: f"the bot to say {text!r}; it said {[m['content'] for m in fake.bot_messages(channel)]}",
    )
    return found


@pytest.fixture
async def world() -> AsyncIterator[Discord]:
    fake = FakeDiscord()
    general = fake.add_place("text", "general")
    world = Discord(
        fake=fake,
        general=general,
        random=fake.add_place("text", "random"),
        thread=fake.add_place("thread", "a-thread", parent=general),
        lounge=fake.add_place("text", "lounge"),
        dm=fake.add_place("dm", "dm"),
        ada=fake.user("ada"),
    )
    await fake.start()
    endpoints = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY  # the bot repoints both
    yield world
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = endpoints
    await fake.stop()


@pytest.fixture
def discord_settings(make_settings: Callable[..., Settings], world: Discord) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values = {
            "DISCORD_BOT_TOKEN": world.fake.token,
            "DISCORD_API_BASE_URL": world.fake.api_url,
            "DISCORD_GATEWAY_URL": world.fake.gateway_url,
            "DISCORD_OPEN_CHANNELS": str(world.lounge),
        }
        return make_settings(**(values | overrides))

    return make


@asynccontextmanager
async def running(settings: Settings, service: ConversationService) -> AsyncIterator[BacktrackClient]:
    client = build_client(settings, service, guild_ready_timeout=0.05)
    assert settings.discord_bot_token is not None
    task = asyncio.create_task(client.start(settings.discord_bot_token.get_secret_value()))
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        await asyncio.wait({task, ready}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # the client stopped early: show why
        assert client.is_ready(), "the bot did not connect to the fake gateway"
        yield client
    finally:
        ready.cancel()
        await client.close()
        await task


@pytest.fixture
async def bot(
    world: Discord, discord_settings: Callable[..., Settings], service: ConversationService
) -> AsyncIterator[Discord]:
    async with running(discord_settings(), service):
        yield world


async def ask(w: Discord, channel: int, text: str, **kwargs: Any) -> int:
    return await w.fake.say(channel, text, author=w.ada, mention_bot=True, **kwargs)


async def private(w: Discord, token: str) -> str:
    """What only the clicker saw: an ephemeral response or follow-up to the interaction."""

    def answer() -> str | None:
        for call in w.fake.calls_to("POST", rf"/interactions/\d+/{token}/callback"):
            data = call.body.get("data") or {}
            if call.body["type"] == 4:
                assert data.get("flags", 0) & 64, "only the clicker should see this"
                return str(data["content"])
        followup = next((f for f in w.fake.followups if f["token"] == token), None)
        if followup is not None:
            assert followup.get("flags", 0) & 64, "only the clicker should see this"
            return str(followup["content"])
        return None

    return await eventually(answer, "the private answer")
