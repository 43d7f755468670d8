"""Feedback buttons, the "Rewind to here" message command and ``/new`` on Discord, end to end.

The real discord.py client runs against ``FakeDiscord``: the message command is an
interaction of type 2 whose data (type 3) names the message by ``target_id``, exactly
as Discord sends it, so discord.py's own ``CommandTree`` routes it to the context menu.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route
from prometheus_client import REGISTRY

from bots.discord import conversation_key
from bots.discord.feedback import REWIND_HERE
from core.conversations.service import ConversationService
from core.runtime import open_service
from core.settings import Settings
from tests.bots.discord.harness import Discord, ask, eventually, private, running, said
from tests.fakes.discord_server import FakeDiscord


@asynccontextmanager
async def _world(
    make_settings: Callable[..., Settings], service: ConversationService | None, only_ada: bool = False,
    ada_is_admin: bool = False, **env: str,
) -> AsyncIterator[Discord]:
    """A fake Discord with the bot connected; with no ``service``, one of these settings."""
    fake = FakeDiscord()
    general = fake.add_place("text", "general")
    world = Discord(
        fake=fake, general=general, random=fake.add_place("text", "random"),
        thread=fake.add_place("thread", "a-thread", parent=general),
        lounge=fake.add_place("text", "lounge"), dm=fake.add_place("dm", "dm"), ada=fake.user("ada"),
    )
    await fake.start()
    endpoints = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    settings = make_settings(
        DISCORD_BOT_TOKEN=fake.token, DISCORD_API_BASE_URL=fake.api_url, DISCORD_GATEWAY_URL=fake.gateway_url,
        DISCORD_ALLOWED_USERS=world.ada["id"] if only_ada else "",
        BACKTRACK_ADMINS=world.ada["id"] if ada_is_admin else "", **env,
    )
    try:
        async with AsyncExitStack() as stack:
            if service is None:
                service = await stack.enter_async_context(open_service(settings))
            await stack.enter_async_context(running(settings, service))
            yield world
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = endpoints
        await fake.stop()


@pytest.fixture
async def bot(make_settings: Callable[..., Settings], service: ConversationService) -> AsyncIterator[Discord]:
    async with _world(make_settings, service) as world:
        yield world


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    """Emoji → custom_id of a message's buttons."""
    return {b["emoji"]["name"]: b["custom_id"] for row in message.get("components", [])
            for b in row["components"] if b.get("emoji")}


def _rated(value: str) -> float:
    return REGISTRY.get_sample_value("backtrack_feedback_total", {"platform": "discord", "value": value}) or 0.0


async def test_answers_carry_feedback_buttons_and_a_double_click_counts_once(
    bot: Discord, service: ConversationService
) -> None:
    await ask(bot, bot.general, "q1")
    answer = await said(bot.fake, bot.general, "heard: q1")
    buttons = _buttons(answer)
    assert set(buttons) == {"👍", "👎", "🔄"}
    before = _rated("down")

    first = await bot.fake.click(int(answer["id"]), buttons["👎"], user=bot.ada)
    assert await private(bot, first) == "Thanks, your feedback is noted."
    again = await bot.fake.click(int(answer["id"]), buttons["👎"], user=bot.ada)
    assert await private(bot, again) == "You had already rated this answer so."
    assert _rated("down") == before + 1

    [turn] = await service.history(conversation_key(bot.fake.guild_id, bot.general))
    assert [(f.user, f.value) for f in turn.feedback] == [(bot.ada["id"], "down")]


async def test_rewind_to_here_from_the_context_menu_forks_at_that_answer(bot: Discord) -> None:
    for n in range(1, 5):
        await ask(bot, bot.general, f"q{n}")
        await said(bot.fake, bot.general, "heard: " + " | ".join(f"q{i}" for i in range(1, n + 1)))
    second = bot.fake.bot_messages(bot.general)[1]
    assert second["content"] == "heard: q1 | q2"

    registered = [c for scope in bot.fake.commands.values() for c in scope if c["name"] == REWIND_HERE]
    assert [c["type"] for c in registered] == [3], "a message command, not a slash command"
    told = await private(bot, await bot.fake.message_command(int(second["id"]), REWIND_HERE, user=bot.ada))
    assert told.startswith("Rewound 2 turns.") and "It now ends with: 2. q2" in told

    await ask(bot, bot.general, "q5")
    await said(bot.fake, bot.general, "heard: q1 | q2 | q5")


async def test_try_again_posts_a_new_version_and_keeps_the_old_answer(
    bot: Discord, service: ConversationService
) -> None:
    await ask(bot, bot.general, "q1")
    await said(bot.fake, bot.general, "heard: q1")
    await ask(bot, bot.general, "q2")
    second = await said(bot.fake, bot.general, "heard: q1 | q2")
    token = await bot.fake.click(int(second["id"]), _buttons(second)["🔄"], user=bot.ada)
    callback = await eventually(
        lambda: bot.fake.calls_to("POST", rf"/interactions/\d+/{token}/callback"), "the deferral")
    assert not (callback[0].body.get("data") or {}).get("flags", 0) & 64, "the new version is the channel's"
    again = await eventually(lambda: next((f for f in bot.fake.followups if f["token"] == token), None),
                             "the new version")
    assert again["content"] == "heard: q1 | q2"
    shown = {b.get("label") or b["emoji"]["name"] for row in again["components"] for b in row["components"]}
    assert {"Try again", "2/2"} <= shown, "the buttons say which version this is"
    assert bot.fake.messages[int(second["id"])]["content"] == "heard: q1 | q2"  # the old answer stays
    key = conversation_key(bot.fake.guild_id, bot.general)
    [_, turn] = await service.history(key)
    assert (turn.version, turn.versions) == (2, 2)

    first = bot.fake.bot_messages(bot.general)[0]  # an earlier answer: its version forks there
    token = await bot.fake.click(int(first["id"]), _buttons(first)["🔄"], user=bot.ada)
    await eventually(lambda: next((f for f in bot.fake.followups if f["token"] == token), None), "a version")
    assert [(t.question, t.version, t.versions) for t in await service.history(key)] == [("q1", 2, 2)]


async def test_rewind_to_here_on_a_message_that_is_no_answer_is_refused(bot: Discord) -> None:
    asked = await ask(bot, bot.general, "q1")
    await said(bot.fake, bot.general, "heard: q1")
    told = await private(bot, await bot.fake.message_command(asked, REWIND_HERE, user=bot.ada))
    assert told.startswith("Rewind to here works on backtrack's answers")
    await ask(bot, bot.general, "q2")
    await said(bot.fake, bot.general, "heard: q1 | q2")


async def test_someone_outside_the_allow_list_can_neither_rate_nor_rewind(
    make_settings: Callable[..., Settings], service: ConversationService
) -> None:
    async with _world(make_settings, service, only_ada=True) as w:
        await ask(w, w.general, "q1")
        await said(w.fake, w.general, "heard: q1")
        await ask(w, w.general, "q2")
        first = await said(w.fake, w.general, "heard: q1")
        await said(w.fake, w.general, "heard: q1 | q2")
        eve = w.fake.user("eve")

        refused = await private(w, await w.fake.message_command(int(first["id"]), REWIND_HERE, user=eve))
        assert refused == "You are not allowed to use backtrack here"
        click = await w.fake.click(int(first["id"]), _buttons(first)["👎"], user=eve)
        assert await private(w, click) == refused
        [turn, _] = await service.history(conversation_key(w.fake.guild_id, w.general))
        assert turn.feedback == (), "nothing stored"
        await ask(w, w.general, "q3")
        await said(w.fake, w.general, "heard: q1 | q2 | q3")


async def test_new_starts_afresh_in_the_channel_and_keeps_the_old_conversation(
    bot: Discord, service: ConversationService
) -> None:
    await ask(bot, bot.general, "q1")
    old = await said(bot.fake, bot.general, "heard: q1")
    token = await bot.fake.slash(bot.general, "new", user=bot.ada)
    followup = await eventually(
        lambda: next((f for f in bot.fake.followups if f["token"] == token), None), "/new")
    assert str(followup["content"]).startswith("Started a new conversation here.")

    await ask(bot, bot.general, "q2")
    await said(bot.fake, bot.general, "heard: q2")
    listed = await service.threads(platform="discord")
    titles = {info.key.parts[-1]: info.title for info in listed if info.key.parts[-1].startswith(str(bot.general))}
    assert titles == {str(bot.general): "q1", f"{bot.general}-1": "q2"}

    click = await bot.fake.click(int(old["id"]), _buttons(old)["👍"], user=bot.ada)
    assert await private(bot, click) == "Thanks, your feedback is noted.", "the old answer still takes feedback"


async def test_history_all_shows_every_branch_with_its_ratings(bot: Discord) -> None:
    await ask(bot, bot.general, "q1")
    answer = await said(bot.fake, bot.general, "heard: q1")
    await private(bot, await bot.fake.click(int(answer["id"]), _buttons(answer)["👍"], user=bot.ada))
    await ask(bot, bot.general, "q2")
    await said(bot.fake, bot.general, "heard: q1 | q2")
    token = await bot.fake.slash(bot.general, "rewind", {}, user=bot.ada)
    await eventually(lambda: any(f["token"] == token for f in bot.fake.followups), "the rewind")

    token = await bot.fake.slash(bot.general, "history", {"all": True}, user=bot.ada)
    audit = await private(bot, token)
    lines = audit.splitlines()
    assert lines[0] == "Every turn on every branch (* = live branch):"
    assert lines[1].startswith("* 1. q1") and "👍1" in lines[1]
    assert lines[2].startswith("  2. q2"), "the rewound turn stays listed, off the live branch"
    assert any(line.startswith("Rewound by ") for line in lines)
