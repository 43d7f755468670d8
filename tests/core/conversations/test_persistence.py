"""Persistence: the delta-stored message channel rebuilds exactly the live branch.

Every turn starts from the head turn's checkpoint, so every turn reloads the state from
PostgreSQL; what the fake model is sent is therefore what storage reconstructed. These
tests cover the cases where delta channels went wrong upstream (forks replaying an
abandoned branch, langgraph#8443 and #8551), plus restarts, tool turns and snapshots.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from core.agents.agent import SNAPSHOT_EVERY, window_reducer
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from core.storage.checkpointer import MemoSerializer
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall, user_texts


def heard(*questions: str) -> str:
    return "heard: " + " | ".join(questions)


def roles(request: dict[str, Any]) -> list[str]:
    return [m["role"] for m in request["messages"]]


async def test_repeated_rewinds_each_continue_from_the_live_branch(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("again"))
    for q in ("a", "b", "c", "d"):
        await service.ask(key, q)
    await service.rewind(key, 1)
    assert (await service.ask(key, "e")).text == heard("a", "b", "c", "e")
    await service.rewind(key, 2)
    assert (await service.ask(key, "f")).text == heard("a", "b", "f")
    await service.rewind(key, 1)
    await service.rewind(key, 1)
    assert (await service.ask(key, "g")).text == heard("a", "g")
    assert [t.question for t in await service.history(key)] == ["a", "g"]


async def test_rewind_after_a_restart_sends_exactly_the_live_branch(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    settings = make_settings()
    key = ThreadKey.api(unique("restart"))
    async with open_service(settings) as first:
        for q in ("one", "two", "three"):
            await first.ask(key, q)
    async with open_service(settings) as second:
        await second.rewind(key, 1)
        fake_llm.requests.clear()
        assert (await second.ask(key, "four")).text == heard("one", "two", "four")
        sent = fake_llm.requests[-1]
        assert roles(sent) == ["system", "user", "assistant", "user", "assistant", "user"]
        assert [m["content"] for m in sent["messages"] if m["role"] == "assistant"] == [
            heard("one"),
            heard("one", "two"),
        ]
    async with open_service(settings) as third:
        await third.rewind(key, 2)
        assert (await third.ask(key, "five")).text == heard("one", "five")


async def test_rewinding_tool_turns_drops_and_restores_the_tool_messages(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("tools"))
    await service.ask(key, "hello")
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    tool_turn = await service.ask(key, "capital of France?")
    await service.ask(key, "thanks")
    assert roles(fake_llm.requests[-1]) == [
        "system", "user", "assistant", "user", "assistant", "tool", "assistant", "user",
    ]

    await service.rewind(key, 2)
    fake_llm.requests.clear()
    assert (await service.ask(key, "again")).text == heard("hello", "again")
    assert roles(fake_llm.requests[-1]) == ["system", "user", "assistant", "user"]

    # back onto the abandoned branch: the tool call and its result come back with it
    await service.rewind_to(key, tool_turn.checkpoint_id)
    fake_llm.requests.clear()
    await service.ask(key, "and Spain?")
    sent = fake_llm.requests[-1]
    assert roles(sent) == ["system", "user", "assistant", "user", "assistant", "tool",
                           "assistant", "user"]
    assert user_texts(sent) == ["hello", "capital of France?", "and Spain?"]
    tool = next(m for m in sent["messages"] if m["role"] == "tool")
    assert "Paris" in tool["content"]


async def test_forking_twice_from_one_checkpoint_keeps_the_branches_apart(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("fork"))
    await service.ask(key, "a")
    await service.ask(key, "b")
    await service.rewind(key, 1)
    c = await service.ask(key, "c")
    await service.rewind(key, 1)
    d = await service.ask(key, "d")
    assert d.text == heard("a", "d")

    await service.rewind_to(key, c.checkpoint_id)
    assert (await service.ask(key, "e")).text == heard("a", "c", "e")
    await service.rewind_to(key, d.checkpoint_id)
    assert (await service.ask(key, "f")).text == heard("a", "d", "f")


async def test_forking_twice_from_the_start(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("root2"))
    await service.ask(key, "a")
    await service.ask(key, "b")
    await service.rewind(key, 2)
    assert (await service.ask(key, "c")).text == heard("c")
    await service.rewind(key, 1)
    assert (await service.ask(key, "d")).text == heard("d")
    assert (await service.ask(key, "e")).text == heard("d", "e")


async def test_a_conversation_past_several_snapshots_rebuilds_every_message(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    # each plain turn updates the message channel twice, a tool turn four times
    turns = SNAPSHOT_EVERY // 2 + 12
    key = ThreadKey.api(unique("long"))
    questions = [f"q{i}" for i in range(turns)]
    async with open_service(make_settings(BACKTRACK_CONTEXT_TOKENS=100_000)) as service:
        for i, q in enumerate(questions):
            if i == 30:
                fake_llm.queue(ToolCall("web_search", {"query": "capital of Japan"}), Reply("Tokyo."))
            await service.ask(key, q)
        assert user_texts(fake_llm.requests[-1]) == questions
        await service.rewind(key, 3)
        assert (await service.ask(key, "last")).text == heard(*questions[:-3], "last")
        sent = fake_llm.requests[-1]
        assert len(sent["messages"]) == 1 + 2 * (turns - 3) + 2 + 1  # system, turns, tool turn


async def test_the_model_is_sent_exactly_what_trimming_the_whole_conversation_gives(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    budget = 300
    key = ThreadKey.api(unique("window"))
    full: list[AnyMessage] = []
    async with open_service(make_settings(BACKTRACK_CONTEXT_TOKENS=budget)) as service:
        for i in range(25):
            question = (f"question {i} " + "word " * (i % 7 * 6)).strip()
            full.append(HumanMessage(question))
            answer = await service.ask(key, question)
            expected = trim_messages(
                full, max_tokens=budget, token_counter=count_tokens_approximately,
                strategy="last", start_on="human", allow_partial=False,
            )
            assert user_texts(fake_llm.requests[-1]) == [m.text for m in expected if m.type == "human"]
            full.append(AIMessage(answer.text))


def _message(rng: random.Random, n: int) -> AnyMessage:
    text = "x" * rng.randint(1, 400)
    kind = rng.choice(["human", "human", "ai", "tool"])
    if kind == "human":
        return HumanMessage(text, id=f"m{n}")
    if kind == "ai":
        return AIMessage(text, id=f"m{n}")
    return ToolMessage(text, tool_call_id=f"call{n}", id=f"m{n}")


def test_window_reducer_gives_the_same_state_however_writes_are_batched() -> None:
    rng = random.Random(7)
    for _ in range(200):
        reduce = window_reducer(rng.choice([50, 200, 1000]))
        writes = [[_message(rng, n * 10 + k) for k in range(rng.randint(1, 3))] for n in range(30)]
        at_once = reduce([], writes)
        state: list[AnyMessage] = []
        cut = 0
        while cut < len(writes):
            step = rng.randint(1, 5)
            state = reduce(state, writes[cut : cut + step])
            cut += step
        assert [m.id for m in state] == [m.id for m in at_once]


async def test_pruning_abandoned_branches_keeps_the_live_branch_whole(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("prune"))
    async with open_service(make_settings(BACKTRACK_MAX_CHECKPOINTS=10), maintenance=False) as svc:
        for q in ("a", "b", "c", "d", "e"):
            await svc.ask(key, q)
        await svc.rewind(key, 2)
        fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
        await svc.ask(key, "f")
        await svc.rewind(key, 1)
        await svc.ask(key, "g")
        assert (await svc.prune()).checkpoints > 0
        assert (await svc.ask(key, "h")).text == heard("a", "b", "c", "g", "h")
        await svc.rewind(key, 3)
        assert (await svc.ask(key, "i")).text == heard("a", "b", "i")


def test_remembered_message_lists_come_back_as_new_lists() -> None:
    serde = MemoSerializer()
    messages = [HumanMessage("hi", id="h1"), AIMessage("hello", id="a1")]
    for value in (messages, _DeltaSnapshot(messages)):
        stored = serde.dumps_typed(value)
        first = serde.loads_typed(stored)
        listed = first.value if isinstance(first, _DeltaSnapshot) else first
        listed.append(HumanMessage("changed by a reader", id="h2"))
        again = serde.loads_typed(stored)
        relisted = again.value if isinstance(again, _DeltaSnapshot) else again
        assert type(again) is type(value)
        assert [m.id for m in relisted] == ["h1", "a1"]
        assert relisted == messages
