"""Time travel by gesture on Discord: editing an answered message, Try again, and previous/next.

The real discord.py client runs against ``FakeDiscord``, which sends MESSAGE_UPDATE as
Discord does (the whole message, or only what changed) and refuses what Discord refuses.
The fake model echoes every user message it was sent ("heard: one | two"), so an answer
shows which branch of the conversation the model saw.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bots.discord import conversation_key
from core.conversations.service import ConversationService
from core.conversations.wording import SUPERSEDED
from core.settings import Settings
from tests.bots.discord.harness import Discord, ask, eventually, private, running, said
from tests.fakes.openai_server import FakeOpenAI, Reply

PREVIOUS, NEXT = "\u2039", "\u203a"


def _rows(message: dict[str, Any]) -> list[list[str]]:
    """A message's buttons as a person sees them, row by row; "(off)" marks a disabled one."""
    return [
        [(b.get("label") or b["emoji"]["name"]) + (" (off)" if b.get("disabled") else "") for b in row["components"]]
        for row in message.get("components", [])
    ]


def _button(message: dict[str, Any], face: str) -> str:
    """The custom_id of the button reading ``face`` (its label, or its emoji without one)."""
    return str(next(b["custom_id"] for row in message["components"] for b in row["components"]
                    if (b.get("label") or b["emoji"]["name"]) == face))


async def _edit(w: Discord, message_id: int, text: str) -> dict[str, Any]:
    """Ada edits her message to the bot; returns the MESSAGE_UPDATE the bot was sent."""
    return await w.fake.edit(message_id, f"<@{w.fake.bot['id']}> {text}")


def _contents(w: Discord, channel: int) -> list[str]:
    return [m["content"] for m in w.fake.bot_messages(channel)]


async def test_an_edit_answers_the_new_text_and_marks_the_old_answer(bot: Discord) -> None:
    await ask(bot, bot.general, "one")
    await said(bot.fake, bot.general, "heard: one")
    second = await ask(bot, bot.general, "two")
    old = await said(bot.fake, bot.general, "heard: one | two")
    await ask(bot, bot.general, "three")
    await said(bot.fake, bot.general, "heard: one | two | three")

    await _edit(bot, second, "TWO")
    new = await said(bot.fake, bot.general, "heard: one | TWO")  # forked there: no "three"
    assert new["message_reference"]["message_id"] == str(second), "the new answer replies to the edit"
    assert _rows(new) == [["👍", "👎", "Try again"], [PREVIOUS, "2/2 (off)", f"{NEXT} (off)"]]
    link = f"https://discord.com/channels/{bot.fake.guild_id}/{bot.general}/{new['id']}"
    marked = await eventually(
        lambda: old if old["content"] == f"{SUPERSEDED} \u2014 {link}" else None,
        lambda: f"the old answer to be marked; it reads {old['content']!r}",
    )
    assert marked["components"] == [], "the old answer's buttons are gone"
    assert int(old["id"]) in bot.fake.messages, "marked, not deleted"

    await ask(bot, bot.general, "four")
    await said(bot.fake, bot.general, "heard: one | TWO | four")


async def test_previews_same_text_and_edits_by_others_change_nothing(bot: Discord) -> None:
    asked = await ask(bot, bot.general, "one")
    answer = await said(bot.fake, bot.general, "heard: one")
    await bot.fake.unfurl(asked, partial=True)  # no content, no author: discord.py cannot parse it
    await bot.fake.unfurl(asked, partial=False)  # the whole message, but not edited
    await _edit(bot, asked, "one")
    await _edit(bot, asked, "  one ")  # formatting only
    held = bot.fake.messages[asked]
    for author in (bot.fake.user("eve"), bot.fake.user("helper", bot=True)):  # not the author; a bot
        update = copy.deepcopy(held) | {"author": author, "content": "mine now", "edited_timestamp": _now()}
        await bot.fake.dispatch("MESSAGE_UPDATE", update)

    await ask(bot, bot.general, "two")  # still connected, still on the one branch
    await said(bot.fake, bot.general, "heard: one | two")
    assert _contents(bot, bot.general) == ["heard: one", "heard: one | two"]
    assert _rows(answer) == [["👍", "👎", "Try again"]]


async def test_the_same_edit_delivered_twice_forks_once(bot: Discord, service: ConversationService) -> None:
    asked = await ask(bot, bot.general, "one")
    await said(bot.fake, bot.general, "heard: one")
    update = await _edit(bot, asked, "uno")
    await bot.fake.dispatch("MESSAGE_UPDATE", update)  # as a resumed gateway replays it
    await said(bot.fake, bot.general, "heard: uno")
    await ask(bot, bot.general, "two")
    await said(bot.fake, bot.general, "heard: uno | two")

    assert _contents(bot, bot.general)[1:] == ["heard: uno", "heard: uno | two"]
    audit = await service.audit(conversation_key(bot.fake.guild_id, bot.general))
    assert [t.turn.question for t in audit.turns] == ["one", "uno", "two"]


async def test_an_edit_by_someone_no_longer_allowed_changes_nothing(
    world: Discord, discord_settings: Callable[..., Settings], service: ConversationService
) -> None:
    async with running(discord_settings(), service):
        asked = await ask(world, world.general, "one")
        await said(world.fake, world.general, "heard: one")
    bob = world.fake.user("bob")
    async with running(discord_settings(DISCORD_ALLOWED_USERS=bob["id"]), service):
        await _edit(world, asked, "ONE")
        await world.fake.say(world.general, "hi", author=bob, mention_bot=True)
        await said(world.fake, world.general, "heard: ada: one | bob: hi")  # the branch with "one"
    assert _contents(world, world.general) == ["heard: one", "heard: ada: one | bob: hi"]


async def _retried(w: Discord, fake_llm: FakeOpenAI, channel: int) -> dict[str, Any]:
    """q1, q2, then Try again on q2's answer (which answers "q2 again"): the new version."""
    await ask(w, channel, "q1")
    await said(w.fake, channel, "heard: q1")
    await ask(w, channel, "q2")
    original = await said(w.fake, channel, "heard: q1 | q2")
    fake_llm.queue(Reply("q2 again"))
    await w.fake.click(int(original["id"]), _button(original, "Try again"), user=w.ada)
    return await said(w.fake, channel, "q2 again")


async def test_previous_and_next_show_a_version_in_place_and_the_conversation_continues_there(
    bot: Discord, fake_llm: FakeOpenAI
) -> None:
    retried = await _retried(bot, fake_llm, bot.general)
    assert _rows(retried)[1] == [PREVIOUS, "2/2 (off)", f"{NEXT} (off)"]
    await ask(bot, bot.general, "q3")
    await said(bot.fake, bot.general, "heard: q1 | q2 | q3")

    token = await bot.fake.click(int(retried["id"]), _button(retried, PREVIOUS), user=bot.ada)
    await eventually(lambda: retried["content"] == "heard: q1 | q2", "version 1 in place of version 2")
    [callback] = bot.fake.calls_to("POST", rf"/interactions/\d+/{token}/callback")
    assert callback.body["type"] == 7, "the clicked message changes; nothing new is posted"
    assert _rows(retried)[1] == [f"{PREVIOUS} (off)", "1/2 (off)", NEXT]
    await ask(bot, bot.general, "q4")
    await said(bot.fake, bot.general, "heard: q1 | q2 | q4")  # version 1's branch: no q3

    await bot.fake.click(int(retried["id"]), _button(retried, NEXT), user=bot.ada)
    await eventually(lambda: retried["content"] == "q2 again", "version 2 again")
    await ask(bot, bot.general, "q5")
    await said(bot.fake, bot.general, "heard: q1 | q2 | q3 | q5")  # where q3 was asked


async def test_try_again_clicked_again_after_a_failed_post_posts_that_answer(
    bot: Discord, fake_llm: FakeOpenAI
) -> None:
    await ask(bot, bot.general, "q1")
    original = await said(bot.fake, bot.general, "heard: q1")
    fake_llm.queue(Reply("q1 again"))
    bot.fake.fail_once("POST", r"/webhooks/\d+/[^/]+", status=400)  # the answer is made, not shown
    failed = await bot.fake.click(int(original["id"]), _button(original, "Try again"), user=bot.ada)
    assert await private(bot, failed) == "Sorry, something went wrong."

    await bot.fake.click(int(original["id"]), _button(original, "Try again"), user=bot.ada)
    shown = await said(bot.fake, bot.general, "q1 again")  # not a third version from the model
    assert _rows(shown)[1] == [PREVIOUS, "2/2 (off)", f"{NEXT} (off)"]


async def test_a_switch_by_an_outsider_or_on_an_old_conversation_changes_nothing(
    world: Discord, discord_settings: Callable[..., Settings], service: ConversationService,
    fake_llm: FakeOpenAI,
) -> None:
    async with running(discord_settings(DISCORD_ALLOWED_USERS=world.ada["id"]), service):
        retried = await _retried(world, fake_llm, world.general)
        before = copy.deepcopy(retried)
        back = _button(retried, PREVIOUS)

        eve = world.fake.user("eve")
        refused = await private(world, await world.fake.click(int(retried["id"]), back, user=eve))
        assert refused == "You are not allowed to use backtrack here"

        token = await world.fake.slash(world.general, "new", user=world.ada)
        await eventually(lambda: any(f["token"] == token for f in world.fake.followups), "/new")
        stale = await private(world, await world.fake.click(int(retried["id"]), back, user=world.ada))
        assert stale.startswith("This answer belongs to an earlier conversation of this channel")

        forgotten = await _retried(world, fake_llm, world.random)
        token = await world.fake.slash(world.random, "forget", user=world.ada)
        await eventually(lambda: any(f["token"] == token for f in world.fake.followups), "/forget")
        gone = await world.fake.click(int(forgotten["id"]), _button(forgotten, PREVIOUS), user=world.ada)
        assert await private(world, gone) == "No turn of this conversation ends at that checkpoint"

    assert retried == before, "the message shows what it showed"
    assert forgotten["content"] == "q2 again"


def _now() -> str:
    return datetime.now(UTC).isoformat()
