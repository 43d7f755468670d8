"""Token usage: recorded per turn from what the model reported, /usage, and the daily caps."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from core.conversations.service import ConversationService
from core.errors import UsageCapReached
from core.keys import ThreadKey
from core.metrics import TOKENS
from core.runtime import open_service
from core.settings import Settings
from core.types import Command
from tests.conftest import FakeWebhook
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:10].upper()


def reported(fake: FakeOpenAI) -> tuple[int, int]:
    return sum(p for p, _ in fake.reported), sum(c for _, c in fake.reported)


def figures(prompt: int, completion: int) -> str:
    return f"{prompt + completion:,} ({prompt:,} in, {completion:,} out)"


async def test_usage_equals_what_the_model_reported(
    service: ConversationService, fake_llm: FakeOpenAI
) -> None:
    team, channel, me, them = _id("T"), _id("C"), _id("U"), _id("U")
    mine = ThreadKey.slack(team, channel, "1700000000.000100")
    input_before = TOKENS.labels(platform="slack", model="gpt-4o-mini", kind="input")._value.get()
    await service.ask(mine, "hello", user=me)
    fake_llm.queue(ToolCall("current_datetime"), Reply("It is now."))
    await service.ask(mine, "what time is it?", user=me)  # two model calls in one turn
    mine_in, mine_out = reported(fake_llm)
    assert len(fake_llm.reported) == 3 and mine_in > 0

    fake_llm.reported.clear()
    await service.ask(ThreadKey.slack(team, channel, "1700000000.000200"), "me too", user=them)
    theirs_in, theirs_out = reported(fake_llm)

    text = await service.run(mine, Command("usage"), me)
    assert f"You: today {figures(mine_in, mine_out)}, this month {figures(mine_in, mine_out)}" in text
    both = figures(mine_in + theirs_in, mine_out + theirs_out)
    assert f"This place: today {both}, this month {both}" in text
    assert "Daily caps" not in text
    got = TOKENS.labels(platform="slack", model="gpt-4o-mini", kind="input")._value.get() - input_before
    assert got == mine_in + theirs_in

    async with service.pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT input_tokens, output_tokens FROM turns WHERE conversation_key = %s ORDER BY id",
            (str(mine),),
        )).fetchall()
    assert sum(r["input_tokens"] for r in rows) == mine_in
    assert sum(r["output_tokens"] for r in rows) == mine_out


async def test_a_user_cap_refuses_the_next_question_but_history_and_rewind_work(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI
) -> None:
    settings = make_settings(BACKTRACK_DAILY_TOKENS_PER_USER=1)
    key = ThreadKey.slack(_id("T"), _id("C"), "1700000000.000100")
    ada, bob = _id("U"), _id("U")  # a person's cap counts all their places: fresh people
    async with open_service(settings) as service:
        await service.ask(key, "first", user=ada)
        await service.ask(key, "second", user=bob)  # another person still may
        asked = len(fake_llm.requests)
        with pytest.raises(UsageCapReached, match=r"today's 1 tokens.*midnight UTC"):
            await service.ask(key, "third", user=ada)
        assert len(fake_llm.requests) == asked, "a refused question never reaches the model"
        assert [t.question for t in await service.history(key)] == ["first", "second"]
        await service.rewind(key, 1, user=ada)
        assert [t.question for t in await service.history(key)] == ["first"]
        assert "Daily caps: 1 per person." in await service.run(key, Command("usage"), ada)


async def test_a_place_cap_refuses_everyone_there_only(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI
) -> None:
    settings = make_settings(BACKTRACK_DAILY_TOKENS_PER_PLACE=1)
    team = _id("T")
    full, other = ThreadKey.slack(team, _id("C"), None), ThreadKey.slack(team, _id("C"), None)
    async with open_service(settings) as service:
        await service.ask(full, "first", user="U1")
        with pytest.raises(UsageCapReached, match="this place"):
            await service.ask(full, "second", user="U2")
        assert (await service.ask(other, "elsewhere", user="U2")).text == "heard: elsewhere"


async def test_a_turn_paused_for_approval_counts_both_parts(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook
) -> None:
    settings = make_settings(BACKTRACK_WEBHOOK_URL=fake_webhook.url)
    key, ada = ThreadKey.slack(_id("T"), _id("C"), None), _id("U")
    async with open_service(settings) as service:
        fake_llm.queue(ToolCall("post_to_webhook", {"message": "deploy"}), Reply("Posted."))
        answer = await service.ask(key, "post it", user=ada)
        assert answer.approval is not None
        paused = reported(fake_llm)
        await service.resolve(key, answer.approval.id, True, user=ada)
        total = reported(fake_llm)
        assert total[0] > paused[0] and len(fake_llm.reported) == 2
        assert f"You: today {figures(*total)}" in await service.run(key, Command("usage"), ada)
