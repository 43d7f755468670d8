"""One writer per conversation, double texting, dedupe, retention: against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from core.conversations.service import ConversationService
from core.errors import ConversationBusy, ConversationNotFound, RewindOutOfRange, TurnInterrupted
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


async def test_enqueue_answers_messages_in_order(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("enq"))
    fake_llm.hold = asyncio.Event()
    first = asyncio.create_task(service.ask(key, "m1"))
    await fake_llm.wait_for_requests(1)
    second = asyncio.create_task(service.ask(key, "m2"))
    third = asyncio.create_task(service.ask(key, "m3"))
    await asyncio.sleep(0)
    fake_llm.hold.set()
    answers = [a.text for a in await asyncio.gather(first, second, third)]
    assert answers == ["heard: m1", "heard: m1 | m2", "heard: m1 | m2 | m3"]


async def test_reject_tells_the_user_to_wait_and_keeps_the_running_turn(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("rej"))
    async with open_service(make_settings(BACKTRACK_BUSY_POLICY="reject")) as service:
        fake_llm.hold = asyncio.Event()
        first = asyncio.create_task(service.ask(key, "m1"))
        await fake_llm.wait_for_requests(1)
        with pytest.raises(ConversationBusy, match="still answering"):
            await service.ask(key, "m2")
        fake_llm.hold.set()
        assert (await first).text == "heard: m1"
        assert [t.question for t in await service.history(key)] == ["m1"]
        assert (await service.ask(key, "m3")).text == "heard: m1 | m3"


async def test_interrupt_cancels_the_running_turn_cleanly(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("int"))
    async with open_service(make_settings(BACKTRACK_BUSY_POLICY="interrupt")) as service:
        await service.ask(key, "m0")
        fake_llm.queue(ToolCall("current_datetime"))
        fake_llm.hold = asyncio.Event()
        first = asyncio.create_task(service.ask(key, "m1"))
        await fake_llm.wait_for_requests(2)
        second = asyncio.create_task(service.ask(key, "m2"))
        with pytest.raises(TurnInterrupted, match="newer message"):
            await first
        fake_llm.hold.set()
        assert (await second).text == "heard: m0 | m2"
        assert [t.question for t in await service.history(key)] == ["m0", "m2"]
        sent = fake_llm.requests[-1]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]


async def test_many_conversations_in_parallel_stay_intact_and_isolated(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    keys = [ThreadKey.api(unique(f"par{i}")) for i in range(200)]

    async def talk(n: int, key: ThreadKey) -> None:
        await service.ask(key, f"c{n} first")
        answer = await service.ask(key, f"c{n} second")
        assert answer.text == f"heard: c{n} first | c{n} second"

    await asyncio.gather(*(talk(n, key) for n, key in enumerate(keys)))
    for n, key in enumerate(keys[::20]):
        turns = await service.history(key)
        assert [t.question for t in turns] == [f"c{n * 20} first", f"c{n * 20} second"]


async def test_one_event_is_claimed_once_across_instances(
    make_settings: Callable[..., Settings], unique: Callable[[str], str]
) -> None:
    event, key = unique("event"), ThreadKey.console(unique("c"))
    async with open_service(make_settings()) as one, open_service(make_settings()) as two:
        results = await asyncio.gather(
            *(svc.first_delivery(key, ("event", event)) for svc in (one, two) for _ in range(5))
        )
    assert results.count(True) == 1


async def _rows(service: ConversationService, key: ThreadKey) -> dict[str, int]:
    tables = {
        "checkpoints": "thread_id", "checkpoint_blobs": "thread_id", "checkpoint_writes": "thread_id",
        "conversations": "key", "turns": "conversation_key", "rewinds": "conversation_key",
        "inflight_turns": "conversation_key",
    }
    counts: dict[str, int] = {}
    async with service.pool.connection() as conn:
        for table, column in tables.items():
            row = await (await conn.execute(f"SELECT count(*) AS n FROM {table} WHERE {column} = %s", (str(key),))).fetchone()
            assert row is not None
            counts[table] = row["n"]
    return counts


async def _conversation_with_a_rewind(service: ConversationService, fake_llm: FakeOpenAI, key: ThreadKey) -> None:
    await service.ask(key, "one")
    fake_llm.queue(ToolCall("current_datetime"), Reply("now"))
    await service.ask(key, "two")
    await service.rewind(key, 1)
    await service.ask(key, "three")


async def test_forget_removes_every_row(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key, other = ThreadKey.api(unique("forget")), ThreadKey.api(unique("keep"))
    await _conversation_with_a_rewind(service, fake_llm, key)
    await service.ask(other, "stay")
    before = await _rows(service, key)
    assert before["checkpoints"] > 0 and before["checkpoint_blobs"] > 0 and before["rewinds"] == 1
    await service.forget(key)
    assert set((await _rows(service, key)).values()) == {0}
    with pytest.raises(ConversationNotFound):
        await service.forget(key)
    assert (await service.ask(other, "still here")).text == "heard: stay | still here"


async def test_retention_prunes_idle_conversations_completely(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    idle, active = ThreadKey.api(unique("idle")), ThreadKey.api(unique("active"))
    async with open_service(make_settings(BACKTRACK_RETENTION_DAYS=30)) as service:
        await _conversation_with_a_rewind(service, fake_llm, idle)
        await service.ask(active, "recent")
        async with service.pool.connection() as conn:
            await conn.execute(
                "UPDATE conversations SET last_active_at = now() - interval '31 days' WHERE key = %s", (str(idle),)
            )
        report = await service.prune()
        assert report.conversations >= 1
        assert set((await _rows(service, idle)).values()) == {0}
        assert [t.question for t in await service.history(active)] == ["recent"]


async def test_checkpoint_cap_prunes_abandoned_branches_and_keeps_the_live_one(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("cap"))
    async with open_service(make_settings(BACKTRACK_MAX_CHECKPOINTS=10)) as service:
        for q in ("a", "b", "c", "d"):
            await service.ask(key, q)
        result = await service.rewind(key, 3)
        abandoned = result.removed[0].checkpoint_id
        await service.ask(key, "e")
        await service.ask(key, "f")
        before = await _rows(service, key)
        report = await service.prune()
        after = await _rows(service, key)
        assert report.checkpoints > 0 and after["checkpoints"] < before["checkpoints"]
        assert after["checkpoint_blobs"] < before["checkpoint_blobs"]
        assert [t.question for t in await service.history(key)] == ["a", "e", "f"]
        with pytest.raises(RewindOutOfRange):
            await service.rewind_to(key, abandoned)
        assert (await service.ask(key, "g")).text == "heard: a | e | f | g"
        await service.rewind(key, 4)
        assert (await service.ask(key, "h")).text == "heard: h"


async def test_bad_input_is_refused_or_stored_verbatim(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    from core.errors import InvalidInput

    key = ThreadKey.api(unique("weird"))
    cases: list[tuple[str, Any]] = [
        ("x" * 100_000, InvalidInput),
        ("\x00\x07\x1b[31mred\x7f", "[31mred"),
        ("lone \udcff half", "lone \ufffd half"),
        ("مرحبا بالعالم ‏שלום", "مرحبا بالعالم ‏שלום"),
        ("🎉" * 2000 + "👨‍👩‍👧‍👦", "🎉" * 2000 + "👨‍👩‍👧‍👦"),
        ("'; DROP TABLE turns; --", "'; DROP TABLE turns; --"),
        ("\ufffd\ufffe binary-looking \udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"), None),
    ]
    stored: list[str] = []
    for text, expected in cases:
        if expected is InvalidInput:
            with pytest.raises(InvalidInput, match="too long"):
                await service.ask(key, text)
            continue
        answer = await service.ask(key, text)
        assert answer.turn is not None
        stored.append(answer.turn.question)
        if expected is not None:
            assert answer.turn.question == expected
    assert [t.question for t in await service.history(key)] == stored
    assert (await service.threads(platform="api", limit=1))[0].key == key


async def test_drain_lets_running_turns_finish_and_refuses_new_ones(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    from core.errors import ShuttingDown

    key = ThreadKey.api(unique("drain"))
    async with open_service(make_settings()) as service:
        fake_llm.hold = asyncio.Event()
        running = asyncio.create_task(service.ask(key, "in flight"))
        await fake_llm.wait_for_requests(1)
        draining = asyncio.create_task(service.drain(10))
        await asyncio.sleep(0)
        with pytest.raises(ShuttingDown, match="restarting"):
            await service.ask(ThreadKey.api(unique("late")), "too late")
        assert not draining.done()
        fake_llm.hold.set()
        assert (await running).text == "heard: in flight"
        assert await draining is True
        assert [t.question for t in await service.history(key)] == ["in flight"]
