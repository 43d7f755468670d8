"""``PooledPostgresSaver`` returns what was stored, exactly and independently of the memo.

A graph's state must read back as the stock saver reads it: a channel whose snapshot is
an int, a flag or a dict comes back as that value, and what one reader does to the
messages it got never shows in what the next reader gets.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import Checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import _messages_delta_reducer

from core.agents.agent import SNAPSHOT_EVERY, build_agent
from core.conversations.runner import GraphRunner
from core.keys import ThreadKey
from core.records import PlaceChoice
from core.settings import Settings
from core.storage.checkpointer import PooledPostgresSaver
from core.storage.db import Pool, open_pool
from core.storage.migrations import apply_migrations
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.processes import BacktrackProcess, instances


@pytest.fixture
async def pool(settings: Settings, pg_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(settings, pg_url)
    await apply_migrations(pool, PooledPostgresSaver(pool).setup)
    yield pool
    await pool.close()


def _checkpoint(values: dict[str, Any]) -> Checkpoint:
    return Checkpoint(v=1, id=str(uuid6(clock_seq=-1)), ts="", channel_values=values,
                      channel_versions={k: 1 for k in values}, versions_seen={}, updated_channels=None)


NOT_LISTS = [42, 0, True, False, None, {"a": 1, "b": [2, 3]}, {}, "text", ""]


@pytest.mark.parametrize("value", NOT_LISTS, ids=repr)
async def test_a_snapshot_that_is_not_a_list_reads_back_exactly(pool: Pool, value: Any) -> None:
    saver = PooledPostgresSaver(pool)
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid4()), "checkpoint_ns": ""}}
    first = await saver.aput(config, _checkpoint({"ch": _DeltaSnapshot(value)}), {"step": 0}, {"ch": 1})
    head = await saver.aput(first, _checkpoint({}), {"step": 1}, {})
    for _ in range(2):  # the second read is the one a memo would answer
        stored = await saver.aget_tuple(first)
        assert stored is not None
        seed = stored.checkpoint["channel_values"]["ch"]
        assert type(seed) is _DeltaSnapshot and type(seed.value) is type(value) and seed.value == value
        history = await saver.aget_delta_channel_history(config=head, channels=["ch"])
        seed = history["ch"]["seed"]
        assert type(seed) is _DeltaSnapshot and type(seed.value) is type(value) and seed.value == value


class Counted(TypedDict):
    total: Annotated[int, DeltaChannel(lambda state, writes: sum(writes, state), snapshot_frequency=2)]
    done: Annotated[list[int], operator.add]


async def test_a_graph_with_an_int_delta_channel_keeps_its_count(pool: Pool) -> None:
    builder = StateGraph(Counted)
    builder.add_node("add", lambda state: {"total": 3, "done": [state["total"]]})
    builder.add_edge(START, "add")
    builder.add_edge("add", END)
    graph = builder.compile(checkpointer=PooledPostgresSaver(pool))
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid4())}}
    for _ in range(6):  # past several snapshots, each an int
        await graph.ainvoke({"total": 1, "done": []}, config)
    assert (await graph.aget_state(config)).values == {"total": 24, "done": [1, 5, 9, 13, 17, 21]}


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer, snapshot_frequency=3)]


def _chat_graph(checkpointer: AsyncPostgresSaver) -> Any:
    def answer(state: Chat) -> dict[str, list[AnyMessage]]:
        n = len(state["messages"])
        call = {"name": "search", "args": {"query": f"q{n}", "filters": ["news"]}, "id": f"c{n}"}
        return {"messages": [
            AIMessage("", id=f"t{n}", tool_calls=[call], response_metadata={"model": "m"}),
            ToolMessage(f"found {n}", tool_call_id=f"c{n}", id=f"r{n}"),
            AIMessage(f"answer {n}", id=f"a{n}", additional_kwargs={"refusal": None, "tags": ["x"]}),
        ]}

    builder = StateGraph(Chat)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer)


def _tamper(messages: Sequence[AnyMessage]) -> None:
    """Everything a reader could do to what it got, short of setting attributes on purpose."""
    for m in messages:
        m.content = "edited"
        m.id = "edited"
        m.additional_kwargs["edited"] = True
        m.response_metadata.clear()
        if isinstance(m, AIMessage):
            for call in m.tool_calls:
                call["args"]["query"] = "edited"
                call["args"]["filters"].append("edited")
    list(messages).clear()


@pytest.mark.parametrize("reader", ["aget_state", "aget_state_history"])
async def test_what_a_reader_does_to_its_messages_never_reaches_the_next_reader(
    pool: Pool, reader: str
) -> None:
    stock, ours = _chat_graph(AsyncPostgresSaver(pool)), _chat_graph(PooledPostgresSaver(pool))
    read: dict[str, Callable[[Any, RunnableConfig], Any]] = {
        "aget_state": lambda g, c: _state(g, c),
        "aget_state_history": lambda g, c: _history(g, c),
    }
    results = []
    for graph in (stock, ours):
        config: RunnableConfig = {"configurable": {"thread_id": str(uuid4())}}
        for turn in range(5):
            await graph.ainvoke({"messages": [HumanMessage(f"question {turn}", id=f"h{turn}")]}, config)
        before = await read[reader](graph, config)
        _tamper(before)
        after = await read[reader](graph, config)
        assert [m.content for m in after].count("edited") == 0
        results.append(after)
    assert results[0] == results[1]
    state = await _state(ours, config)
    call = state[-3]
    assert isinstance(call, AIMessage) and call.tool_calls[0]["args"] == {"query": "q17", "filters": ["news"]}
    assert len(state) == 20 and state[-1].content == "answer 17"


async def _state(graph: Any, config: RunnableConfig) -> list[AnyMessage]:
    messages: list[AnyMessage] = (await graph.aget_state(config)).values["messages"]
    return messages


async def _history(graph: Any, config: RunnableConfig) -> list[AnyMessage]:
    return [m async for s in graph.aget_state_history(config) for m in s.values.get("messages", [])]


# -- the turn-end cache ------------------------------------------------------------------


async def test_each_turn_starts_from_the_kept_state_and_it_is_what_the_database_rebuilds(
    pool: Pool, settings: Settings, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    """Past a snapshot, with tool turns and a fork: every kept read equals a cold read."""
    kept, cold = PooledPostgresSaver(pool), PooledPostgresSaver(pool)
    runner = GraphRunner(build_agent(settings, kept))
    cold_graph = build_agent(settings, cold)
    key = ThreadKey.api(unique("kept"))
    ends = [await runner.root(key)]
    turns = SNAPSHOT_EVERY // 2 + 5  # about two message updates a turn: one snapshot on the way
    for turn in range(turns):
        if turn % 7 == 3:
            fake_llm.queue(ToolCall("current_datetime", {}), Reply(f"answer {turn}"))
        start = ends[-3] if turn == turns - 1 else ends[-1]  # the last turn forks from an older end
        result = await runner.ask(key, start, f"q{turn}", None, {}, None, PlaceChoice(settings.model))
        ends.append(result.checkpoint_id)
        config: RunnableConfig = {"configurable": {"thread_id": str(key), "checkpoint_id": result.checkpoint_id}}
        warm, stored = await runner._graph.aget_state(config), await cold_graph.aget_state(config)
        assert warm.values == stored.values and warm.metadata == stored.metadata
        assert warm.parent_config == stored.parent_config and warm.next == stored.next == ()
    # every turn's end was kept and read twice (the next turn, the check) except the
    # first turn's start (the root) and the snapshot turn's end (a snapshot is read back)
    assert 2 * turns - 4 <= kept.kept_hits < 2 * turns
    assert cold.kept_hits == 0


async def test_two_processes_alternating_on_one_conversation_never_answer_from_a_stale_state(
    pg_url: str, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    env = {"DATABASE_URL": pg_url, "OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": "k"}
    thread = unique("alternate")
    async with instances(env, tmp_path) as (a, b):
        async def ask(proc: BacktrackProcess, question: str) -> str:
            status, body = await proc.post("/api/graph", {"query": question, "thread_id": thread})
            assert status == 200, body
            return str(body["answer"])

        assert await ask(a, "q1") == "heard: q1"
        assert await ask(b, "q2") == "heard: q1 | q2"  # a keeps the end of q1; b moved on
        assert await ask(a, "q3") == "heard: q1 | q2 | q3"  # a's kept q1 end is not the head
        assert await ask(b, "q4") == "heard: q1 | q2 | q3 | q4"
        status, _ = await b.post("/api/graph/rewind", {"thread_id": thread, "steps_back": 1})
        assert status == 200
        assert await ask(a, "q5") == "heard: q1 | q2 | q3 | q5"  # from a's kept end of q3
        assert await ask(b, "q6") == "heard: q1 | q2 | q3 | q5 | q6"
        assert await ask(a, "q7") == "heard: q1 | q2 | q3 | q5 | q6 | q7"
