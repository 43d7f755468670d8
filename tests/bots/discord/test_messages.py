"""The Discord adapter end to end: the real discord.py client against a fake Discord.

The fake speaks REST and the gateway websocket on 127.0.0.1; the bot reaches it through
DISCORD_API_BASE_URL and DISCORD_GATEWAY_URL, answers through the real conversation
service on the test PostgreSQL, and the fake model behind it echoes what it was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bots.chunking import split_message
from bots.discord import conversation_key, run
from core.conversations.service import ConversationService
from core.conversations.wording import SORRY
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from tests.bots.discord.harness import Discord, ask, eventually, running, said
from tests.bugs import BUG, break_verb, internal_errors, logged_bug
from tests.conftest import FakeWebhook
from tests.fakes.openai_server import Fail, FakeOpenAI, Reply, ToolCall

# -- conversations -------------------------------------------------------------------


async def test_mention_is_answered_as_a_reply_in_the_channel(bot: Discord) -> None:
    asked = await ask(bot, bot.general, "hello there")
    answer = await said(bot.fake, bot.general, "heard: hello there")
    assert answer["message_reference"]["message_id"] == str(asked)
    assert bot.fake.calls_to("POST", rf"/channels/{bot.general}/typing"), "no typing indicator"
    assert len(bot.fake.bot_messages(bot.general)) == 1


async def test_follow_up_by_mention_or_reply_keeps_the_context(bot: Discord) -> None:
    await ask(bot, bot.general, "q1")
    first = await said(bot.fake, bot.general, "heard: q1")
    await bot.fake.say(bot.general, "q2", author=bot.ada, reply_to=int(first["id"]))  # no ping
    await said(bot.fake, bot.general, "heard: q1 | q2")
    await ask(bot, bot.general, "q3")
    await said(bot.fake, bot.general, "heard: q1 | q2 | q3")


async def test_two_channels_are_two_conversations(bot: Discord) -> None:
    await asyncio.gather(ask(bot, bot.general, "alpha"), ask(bot, bot.random, "beta"))
    await said(bot.fake, bot.general, "heard: alpha")
    await said(bot.fake, bot.random, "heard: beta")
    await ask(bot, bot.general, "again")
    await said(bot.fake, bot.general, "heard: alpha | again")


async def test_a_thread_is_its_own_conversation(bot: Discord, service: ConversationService) -> None:
    await ask(bot, bot.general, "parent talk")
    await said(bot.fake, bot.general, "heard: parent talk")
    await ask(bot, bot.thread, "thread talk")
    await said(bot.fake, bot.thread, "heard: thread talk")
    await ask(bot, bot.general, "more")
    await said(bot.fake, bot.general, "heard: parent talk | more")
    turns = await service.history(conversation_key(bot.fake.guild_id, bot.thread))
    assert [t.question for t in turns] == ["thread talk"]


async def test_direct_messages_need_no_mention(bot: Discord, service: ConversationService) -> None:
    await bot.fake.say(bot.dm, "hi in private", author=bot.ada)
    await said(bot.fake, bot.dm, "heard: hi in private")
    turns = await service.history(ThreadKey.discord(None, bot.dm))
    assert [(t.question, t.user) for t in turns] == [("hi in private", bot.ada["id"])]
    _, text = await _command(bot, bot.dm, "history")
    assert text.startswith("1. hi in private")


async def test_open_channel_answers_every_message(bot: Discord) -> None:
    await bot.fake.say(bot.lounge, "no mention needed", author=bot.ada)
    await said(bot.fake, bot.lounge, "heard: no mention needed")


async def test_bots_and_unaddressed_messages_are_ignored(bot: Discord, fake_llm: FakeOpenAI) -> None:
    other_bot = bot.fake.user("otherbot", bot=True)
    await bot.fake.say(bot.general, "bot chatter", author=other_bot, mention_bot=True)
    await bot.fake.say(bot.general, "people chatter", author=bot.ada)
    await ask(bot, bot.general, "now you")
    await said(bot.fake, bot.general, "heard: now you")
    assert len(fake_llm.requests) == 1
    assert len(bot.fake.calls_to("POST", rf"/channels/{bot.general}/messages")) == 1


async def test_allow_lists_keep_others_out(
    world: Discord, discord_settings: Callable[..., Settings], service: ConversationService
) -> None:
    eve = world.fake.user("eve")
    settings = discord_settings(DISCORD_ALLOWED_USERS=world.ada["id"])
    async with running(settings, service):
        await world.fake.say(world.general, "let me in", author=eve, mention_bot=True)
        token = await world.fake.slash(world.general, "history", user=eve)
        callback = await eventually(
            lambda: world.fake.calls_to("POST", rf"/interactions/\d+/{token}/callback"),
            "the refusal",
        )
        assert callback[0].body["type"] == 4
        assert callback[0].body["data"]["content"] == "You are not allowed to use backtrack here"
        await ask(world, world.general, "me too")
        await said(world.fake, world.general, "heard: me too")
        assert len(world.fake.bot_messages(world.general)) == 1


async def test_role_allow_list_admits_members_with_the_role(
    world: Discord, discord_settings: Callable[..., Settings], service: ConversationService
) -> None:
    fake = world.fake
    async with running(discord_settings(DISCORD_ALLOWED_ROLES=str(fake.role_id)), service):
        await fake.say(world.general, "no role", author=world.ada, mention_bot=True)
        await fake.say(world.general, "with role", author=world.ada, mention_bot=True, roles=[fake.role_id])
        await said(fake, world.general, "heard: with role")
        assert len(fake.bot_messages(world.general)) == 1


# -- slash commands ------------------------------------------------------------------


async def _command(w: Discord, channel: int, name: str, **options: int | bool | str) -> tuple[Any, str]:
    """Run a slash command; returns the callback body and the follow-up text."""
    token = await w.fake.slash(channel, name, options, user=w.ada)
    followup = await eventually(
        lambda: next((f for f in w.fake.followups if f["token"] == token), None),
        f"the /{name} follow-up",
    )
    callback = w.fake.calls_to("POST", rf"/interactions/\d+/{token}/callback")
    assert len(callback) == 1
    return callback[0].body, followup["content"]


async def test_history_command_shows_this_channels_turns(bot: Discord) -> None:
    await ask(bot, bot.general, "first")
    await said(bot.fake, bot.general, "heard: first")
    await ask(bot, bot.general, "second")
    await said(bot.fake, bot.general, "heard: first | second")
    await ask(bot, bot.random, "elsewhere")
    await said(bot.fake, bot.random, "heard: elsewhere")

    callback, text = await _command(bot, bot.general, "history", limit=5)
    assert callback["type"] == 5  # deferred, then a follow-up
    assert callback["data"]["flags"] & 64, "history should only show to the asker"
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("1. first") and lines[1].startswith("2. second")
    assert "heard: first | second" in lines[1]


async def test_rewind_command_moves_the_conversation_back(bot: Discord) -> None:
    await ask(bot, bot.general, "keep this")
    await said(bot.fake, bot.general, "heard: keep this")
    await ask(bot, bot.general, "drop this")
    await said(bot.fake, bot.general, "heard: keep this | drop this")

    callback, text = await _command(bot, bot.general, "rewind", steps=1)
    assert callback["type"] == 5
    assert not callback.get("data"), "a rewind changes the channel's conversation: show it"
    assert text.startswith("Rewound 1 turn.")
    assert "drop this" in text.splitlines()[1]
    assert text.splitlines()[-1].startswith("It now ends with: 1. keep this")

    await ask(bot, bot.general, "after")
    await said(bot.fake, bot.general, "heard: keep this | after")


async def test_retry_edit_and_branch_post_the_new_version_to_the_channel(bot: Discord) -> None:
    await ask(bot, bot.general, "one")
    await said(bot.fake, bot.general, "heard: one")
    await ask(bot, bot.general, "two")
    await said(bot.fake, bot.general, "heard: one | two")

    callback, text = await _command(bot, bot.general, "retry")
    assert not callback.get("data"), "a new version changes the channel's conversation: show it"
    assert text.startswith("heard: one | two") and "Version 2 of 2 of turn 2" in text
    _, text = await _command(bot, bot.general, "edit", turn=1, text="ONE")
    assert text.startswith("heard: ONE") and "Version 2 of 2 of turn 1" in text
    callback, text = await _command(bot, bot.general, "branch")
    assert callback["data"]["flags"] & 64, "the list of versions is for the asker"
    assert text.splitlines()[0] == "Turn 1 has 2 versions (/branch N switches):"
    _, text = await _command(bot, bot.general, "branch", version=1)
    assert text.startswith("Switched to version 1 of 2 of turn 1")
    await ask(bot, bot.general, "three")
    await said(bot.fake, bot.general, "heard: one | two | three")


async def test_rewind_too_far_says_why(bot: Discord) -> None:
    await ask(bot, bot.thread, "only one")
    await said(bot.fake, bot.thread, "heard: only one")
    _, text = await _command(bot, bot.thread, "rewind", steps=3)
    assert text.startswith("Cannot rewind 3 turns")


# -- platform rules --------------------------------------------------------------------


def _long_answer() -> str:
    prose = "This paragraph explains the code that follows in some detail. " * 8
    code = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(90))
    return f"{prose}\n\n{prose}\n\n```python\ndef main():\n{code}\n```\n\n{prose}\n\nDone."


async def test_long_answer_is_split_under_the_limit_with_code_blocks_intact(
    bot: Discord, fake_llm: FakeOpenAI
) -> None:
    answer = _long_answer()
    assert 4500 < len(answer) < 6000
    fake_llm.queue(Reply(answer))
    asked = await ask(bot, bot.general, "show me the code")
    expected = split_message(answer, 2000)
    await eventually(
        lambda: [m["content"] for m in bot.fake.bot_messages(bot.general)] == expected,
        "the answer in pieces",
    )
    pieces = bot.fake.bot_messages(bot.general)
    assert len(pieces) >= 3
    posts = bot.fake.calls_to("POST", rf"/channels/{bot.general}/messages")
    assert len(posts) == len(pieces), "a streamed reply should be edited, not posted again"
    assert pieces[0]["message_reference"]["message_id"] == str(asked)
    for piece in pieces:
        assert len(piece["content"]) <= 2000
        assert len(re.findall(r"^```", piece["content"], re.MULTILINE)) % 2 == 0
    joined = "\n".join(p["content"] for p in pieces)
    assert all(f"value_{i} = compute({i})" in joined for i in range(90))


async def test_model_failure_is_reported_and_the_conversation_goes_on(
    bot: Discord, fake_llm: FakeOpenAI
) -> None:
    await ask(bot, bot.general, "first")
    await said(bot.fake, bot.general, "heard: first")
    fake_llm.queue(Fail(500))
    await ask(bot, bot.general, "doomed")
    await said(bot.fake, bot.general, "The assistant failed to answer; please try again.")
    await ask(bot, bot.general, "try again")
    await said(bot.fake, bot.general, "heard: first | try again")


async def test_rate_limited_post_is_retried(bot: Discord) -> None:
    bot.fake.rate_limit_once("POST", rf"/channels/{bot.general}/messages")
    await ask(bot, bot.general, "despite limits")
    await said(bot.fake, bot.general, "heard: despite limits")
    posts = bot.fake.calls_to("POST", rf"/channels/{bot.general}/messages")
    assert [c.status for c in posts] == [429, 200]


async def test_sharded_client_answers_in_its_guild(
    world: Discord, discord_settings: Callable[..., Settings], service: ConversationService
) -> None:
    shard = (world.fake.guild_id >> 22) % 2
    settings = discord_settings(DISCORD_SHARD_COUNT=2, DISCORD_SHARD_IDS=str(shard))
    async with running(settings, service):
        assert world.fake.identified[-1]["shard"] == [shard, 2]
        await ask(world, world.general, "sharded")
        await said(world.fake, world.general, "heard: sharded")


async def test_commands_sync_to_the_dev_guild_and_forget_works(
    world: Discord, discord_settings: Callable[..., Settings], service: ConversationService
) -> None:
    # A base URL without a path gets Discord's /api/v10, as a REST proxy's address would.
    settings = discord_settings(DISCORD_DEV_GUILD_ID=world.fake.guild_id, DISCORD_API_BASE_URL=world.fake.url)
    async with running(settings, service):
        names = {c["name"] for c in world.fake.commands[str(world.fake.guild_id)]}
        assert names == {"history", "rewind", "retry", "edit", "branch", "forget", "new", "team", "persona",
                         "model", "tools", "memory", "usage", "help", "Rewind to here"}
        await ask(world, world.general, "remember me")
        await said(world.fake, world.general, "heard: remember me")
        _, text = await _command(world, world.general, "forget")
        assert text.startswith("Forgot this conversation")
        await ask(world, world.general, "new start")
        await said(world.fake, world.general, "heard: new start")


# -- approvals ------------------------------------------------------------------------


@pytest.fixture
def hitl_settings(
    discord_settings: Callable[..., Settings], fake_webhook: FakeWebhook
) -> Callable[..., Settings]:
    """Settings with the approval-gated webhook tool switched on."""
    return lambda **overrides: discord_settings(BACKTRACK_WEBHOOK_URL=fake_webhook.url, **overrides)


@asynccontextmanager
async def bot_process(settings: Settings) -> AsyncIterator[ConversationService]:
    """One run of the bot: its own service and client, as ``backtrack discord`` starts them."""
    async with open_service(settings) as service, running(settings, service):
        yield service


async def request_approval(
    w: Discord, fake_llm: FakeOpenAI, message: str, answer: str = "Posted it."
) -> dict[str, Any]:
    """Ada asks for a post; the model calls the gated tool. Returns the bot's request."""
    fake_llm.queue(ToolCall("post_to_webhook", {"message": message}), Reply(answer))
    await ask(w, w.general, f"announce: {message}")
    return await shown_request(w, message)


async def shown_request(w: Discord, message: str) -> dict[str, Any]:
    """The bot's request to post ``message``, with its buttons, as it first appeared (the
    fake goes on applying edits to its own copy)."""
    shown = await eventually(
        lambda: next(
            (m for m in w.fake.bot_messages(w.general) if m.get("components") and message in m["content"]),
            None,
        ),
        f"the request to post {message!r}",
    )
    return copy.deepcopy(shown)


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["label"]: b for row in message.get("components", []) for b in row["components"]}


async def click(w: Discord, message: dict[str, Any], label: str, user: dict[str, Any] | None = None,
                seen: dict[str, Any] | None = None) -> str:
    custom_id = buttons(seen or message)[label]["custom_id"]
    return await w.fake.click(int(message["id"]), custom_id, user=user or w.ada, seen=seen)


async def told_only(w: Discord, token: str) -> str:
    """What the clicker alone was told (an ephemeral follow-up to their click)."""
    followup = await eventually(
        lambda: next((f for f in w.fake.followups if f["token"] == token), None), "the answer to the click"
    )
    assert followup.get("flags", 0) & 64, "only the clicker should see this"
    return str(followup["content"])


async def test_approve_button_runs_the_tool_and_records_who_approved(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    fake = world.fake
    async with bot_process(hitl_settings()):
        request = await request_approval(world, fake_llm, "deploy at 5pm")
        assert request["content"] == (
            'The assistant wants to run `post_to_webhook` with {"message": "deploy at 5pm"}. Approve or reject?'
        )
        shown = buttons(request)
        assert shown.keys() == {"Approve", "Reject"}
        assert (shown["Approve"]["style"], shown["Reject"]["style"]) == (3, 4)  # success, danger
        assert re.fullmatch(r"backtrack:approve:\d+", shown["Approve"]["custom_id"])
        assert fake_webhook.posts == []

        token = await click(world, request, "Approve")
        answer = await said(fake, world.general, "Posted it.")
        assert answer["message_reference"]["message_id"] == request["id"]
        assert fake_webhook.posts == [{"text": "deploy at 5pm", "content": "deploy at 5pm"}]
        decided = fake.messages[int(request["id"])]
        assert decided["content"] == f"{request['content']}\n\n✅ Approved by <@{world.ada['id']}>"
        assert decided["components"] == []
        callback = fake.calls_to("POST", rf"/interactions/\d+/{token}/callback")
        assert [c.body["type"] for c in callback] == [6], "the click should be acknowledged silently"

        _, history = await _command(world, world.general, "history")
        assert history.startswith("1. announce: deploy at 5pm") and "Posted it." in history


async def test_reject_button_runs_nothing_and_the_model_answers(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    async with bot_process(hitl_settings()):
        request = await request_approval(world, fake_llm, "spam everyone", "Understood, I did not post it.")
        await click(world, request, "Reject")
        await said(world.fake, world.general, "Understood, I did not post it.")
        decided = world.fake.messages[int(request["id"])]
        assert decided["content"].endswith(f"❌ Rejected by <@{world.ada['id']}>")
        assert decided["components"] == []
        tool_results = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
        assert "rejected this action" in tool_results[-1]["content"]
    assert fake_webhook.posts == []


async def test_a_turn_that_pauses_again_shows_new_buttons(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    async with bot_process(hitl_settings()):
        fake_llm.queue(
            ToolCall("post_to_webhook", {"message": "part one"}),
            ToolCall("post_to_webhook", {"message": "part two"}),
            Reply("Both posted."),
        )
        await ask(world, world.general, "announce it in two parts")
        first = await shown_request(world, "part one")
        await click(world, first, "Approve")
        second = await shown_request(world, "part two")
        assert second["message_reference"]["message_id"] == first["id"]
        assert buttons(second)["Approve"]["custom_id"] != buttons(first)["Approve"]["custom_id"]
        await click(world, second, "Approve")
        await said(world.fake, world.general, "Both posted.")
    assert [p["text"] for p in fake_webhook.posts] == ["part one", "part two"]


async def test_a_button_still_works_after_the_bot_restarts(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    settings = hitl_settings()
    async with bot_process(settings):
        request = await request_approval(world, fake_llm, "after the restart")
    async with bot_process(settings):  # nothing carried over but the database
        await click(world, request, "Approve")
        await said(world.fake, world.general, "Posted it.")
    assert [p["text"] for p in fake_webhook.posts] == ["after the restart"]


async def test_only_the_asker_or_listed_approvers_may_decide(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    fake, eve, boss = world.fake, world.fake.user("eve"), world.fake.user("boss")
    refused = "You are not allowed to approve or reject this request."
    async with bot_process(hitl_settings()):
        request = await request_approval(world, fake_llm, "one")
        assert await told_only(world, await click(world, request, "Approve", eve)) == refused
        assert fake.messages[int(request["id"])]["components"], "a refused click changes nothing"
        await click(world, request, "Approve", world.ada)
        await said(fake, world.general, "Posted it.")
    async with bot_process(hitl_settings(BACKTRACK_APPROVERS=boss["id"])):
        request = await request_approval(world, fake_llm, "two", "Posted that too.")
        assert await told_only(world, await click(world, request, "Approve", world.ada)) == refused
        await click(world, request, "Approve", boss)
        await said(fake, world.general, "Posted that too.")
        assert fake.messages[int(request["id"])]["content"].endswith(f"Approved by <@{boss['id']}>")
    assert [p["text"] for p in fake_webhook.posts] == ["one", "two"]


async def test_a_double_click_runs_the_tool_once_and_says_who_decided(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    async with bot_process(hitl_settings()):
        request = await request_approval(world, fake_llm, "only once")
        # Both clicks hit the buttons before they disappear.
        tokens = [await click(world, request, "Approve", seen=request) for _ in range(2)]
        await said(world.fake, world.general, "Posted it.")
        notices = await eventually(
            lambda: [f for f in world.fake.followups if f["token"] in tokens], "the answer to the second click"
        )
        assert len(notices) == 1 and notices[0]["flags"] & 64
        assert notices[0]["content"] == f"That request was already approved by {world.ada['id']}."
    assert [p["text"] for p in fake_webhook.posts] == ["only once"]
    assert [m["content"] for m in world.fake.bot_messages(world.general)].count("Posted it.") == 1


async def test_a_click_on_a_request_cancelled_by_rewind_is_stale(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    async with bot_process(hitl_settings()):
        await ask(world, world.general, "first")
        await said(world.fake, world.general, "heard: first")
        request = await request_approval(world, fake_llm, "too late")
        _, text = await _command(world, world.general, "rewind")
        assert text.startswith("Rewound 1 turn.")
        fake_llm.script.clear()  # the answer scripted for after the tool never comes
        notice = await told_only(world, await click(world, request, "Approve"))
        assert notice == f"That request was already cancelled by {world.ada['id']}."
        assert world.fake.messages[int(request["id"])]["content"] == request["content"]
    assert fake_webhook.posts == []


async def test_a_new_message_while_a_request_waits_gets_the_pending_notice(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    async with bot_process(hitl_settings()):
        request = await request_approval(world, fake_llm, "still here")
        asked = await ask(world, world.general, "are you there?")
        notice = await eventually(
            lambda: next((m for m in world.fake.bot_messages(world.general) if "still waiting" in m["content"]), None),
            "the pending notice",
        )
        assert notice["message_reference"]["message_id"] == str(asked)
        assert notice["content"].endswith("approve or reject it first, then ask again.")
        await click(world, request, "Approve")
        await said(world.fake, world.general, "Posted it.")
    assert [p["text"] for p in fake_webhook.posts] == ["still here"]
    assert not any("are you there?" in str(r["messages"]) for r in fake_llm.requests)


# -- start-up --------------------------------------------------------------------------


async def test_refused_message_content_intent_says_what_to_enable(
    world: Discord,
    discord_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    world.fake.close_gateway_with = 4014
    code = await run(discord_settings(), argparse.Namespace())
    assert code == 1
    err = capsys.readouterr().err
    assert "Message Content Intent" in err and "Developer Portal" in err
    assert len(err.strip().splitlines()) == 1


async def test_wrong_token_says_where_to_get_one(
    world: Discord,
    discord_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await run(discord_settings(DISCORD_BOT_TOKEN="not-the-token"), argparse.Namespace())
    assert code == 1
    assert "DISCORD_BOT_TOKEN" in capsys.readouterr().err


# -- the outermost boundary ------------------------------------------------------------


async def test_an_unexpected_failure_is_logged_counted_and_answered_with_the_apology(
    bot: Discord, service: ConversationService, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = internal_errors()
    break_verb(monkeypatch, service, "ask")
    await ask(bot, bot.general, "crash, please")
    await said(bot.fake, bot.general, SORRY)
    assert internal_errors() == before + 1 and logged_bug(caplog)

    break_verb(monkeypatch, service, "run")
    _, text = await _command(bot, bot.general, "history")
    assert text == SORRY and internal_errors() == before + 2
    assert not any(BUG in m["content"] for m in bot.fake.bot_messages(bot.general))


async def test_an_unexpected_failure_on_a_click_tells_the_clicker_the_apology(
    world: Discord, hitl_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    before = internal_errors()
    async with bot_process(hitl_settings()) as service:
        request = await request_approval(world, fake_llm, "never")
        break_verb(monkeypatch, service, "resolve")
        assert await told_only(world, await click(world, request, "Approve")) == SORRY
        assert world.fake.messages[int(request["id"])]["components"], "nothing was decided"
        monkeypatch.undo()  # the request survived the bug: it can still be decided
        await click(world, request, "Reject")
        await said(world.fake, world.general, "Posted it.")  # the model's queued answer
    assert internal_errors() == before + 1 and logged_bug(caplog) and fake_webhook.posts == []
