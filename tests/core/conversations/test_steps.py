"""The steps of a turn, read from the real Postgres saver: nodes, messages, pauses, subgraphs."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from core.conversations.service import ConversationService
from core.conversations.steps import MAX_STEPS, TurnReader
from core.errors import RewindOutOfRange
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from core.storage.checkpointer import PooledPostgresSaver
from tests.conftest import FakeWebhook
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall


async def test_a_tool_turn_shows_each_step_and_what_the_model_was_sent(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("steps"))
    await service.ask(key, "hello")
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    turn = (await service.ask(key, "capital?")).turn
    assert turn is not None
    result = await service.viewer.steps(key, turn.checkpoint_id)
    assert not result.truncated
    steps = result.steps
    assert [(s.agent, s.node) for s in steps] == [
        ("agent", "input"), ("agent", "agent"), ("agent", "tools"), ("agent", "agent")]
    assert [m.content for m in steps[0].added] == ["capital?"]
    call = steps[1].added[0]
    assert call.type == "ai" and call.tool_calls[0]["name"] == "web_search"
    assert call.tool_calls[0]["args"] == {"query": "capital of France"}
    assert [m.content for m in steps[1].sent] == ["hello", "heard: hello", "capital?"]
    result_message = steps[2].added[0]
    assert result_message.type == "tool" and "Paris" in result_message.content
    assert result_message.tool_call_id == call.tool_calls[0]["id"]
    assert [m.type for m in steps[3].sent] == ["human", "ai", "human", "ai", "tool"]
    assert steps[3].added[0].content == "Paris."
    assert all(s.duration_ms >= 0 for s in steps)
    assert [s.started_at for s in steps] == sorted(s.started_at for s in steps)
    assert steps[-1].checkpoint_id == turn.checkpoint_id


async def test_steps_of_a_turn_leave_out_other_branches(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("branch"))
    first = (await service.ask(key, "one")).turn
    old = (await service.ask(key, "two")).turn
    await service.rewind(key, 1)
    new = (await service.ask(key, "three")).turn
    assert first and old and new
    old_steps = (await service.viewer.steps(key, old.checkpoint_id)).steps
    new_steps = (await service.viewer.steps(key, new.checkpoint_id)).steps
    assert [m.content for s in old_steps for m in s.added] == ["two", "heard: one | two"]
    assert [m.content for s in new_steps for m in s.added] == ["three", "heard: one | three"]
    with pytest.raises(RewindOutOfRange):
        await service.viewer.steps(key, "1f000000-0000-6000-8000-000000000000")


@pytest.fixture
async def hitl(make_settings: Callable[..., Settings], fake_webhook: FakeWebhook) -> AsyncIterator[ConversationService]:
    async with open_service(make_settings(BACKTRACK_WEBHOOK_URL=fake_webhook.url)) as service:
        yield service


async def test_an_approval_pause_and_its_decision_are_steps(
    hitl: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("pause"))
    fake_llm.queue(ToolCall("post_to_webhook", {"message": "hi"}), Reply("Not posted."))
    paused = await hitl.ask(key, "post hi", user="ada")
    assert paused.approval is not None
    waiting = (await hitl.viewer.steps(key, paused.approval.checkpoint_id)).steps
    assert waiting[-1].pause == {"tool": "post_to_webhook", "args": {"message": "hi"}}
    assert waiting[-1].decision is None
    done = await hitl.resolve(key, paused.approval.id, False, user="ada")
    assert done.turn is not None
    steps = (await hitl.viewer.steps(key, done.turn.checkpoint_id)).steps
    assert [s.node for s in steps] == ["input", "agent", "tools", "agent"]
    assert steps[1].pause is not None and steps[1].decision == {"approved": False, "by": "ada"}
    assert "ada rejected this action" in steps[2].added[0].content


class _State(TypedDict):
    log: Annotated[list[str], operator.add]


def _team(saver: PooledPostgresSaver) -> Any:
    """A parent graph whose ``researcher`` node is a 2-node subgraph (its own namespace)."""
    sub = StateGraph(_State)
    sub.add_node("search", lambda s: {"log": ["searched"]})
    sub.add_node("summarise", lambda s: {"log": ["summarised"]})
    sub.add_edge(START, "search")
    sub.add_edge("search", "summarise")
    sub.add_edge("summarise", END)
    parent = StateGraph(_State)
    parent.add_node("plan", lambda s: {"log": ["planned"]})
    parent.add_node("researcher", sub.compile())
    parent.add_edge(START, "plan")
    parent.add_edge("plan", "researcher")
    parent.add_edge("researcher", END)
    return parent.compile(checkpointer=saver)


async def test_subgraph_checkpoints_are_steps_of_their_agent(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    saver = PooledPostgresSaver(service.pool)
    graph = _team(saver)
    thread = unique("team")
    config: Any = {"configurable": {"thread_id": thread}}
    await graph.ainvoke({"log": ["first"]}, config)
    middle = (await graph.aget_state(config)).config["configurable"]["checkpoint_id"]
    await graph.ainvoke({"log": ["second"]}, config)
    end = (await graph.aget_state(config)).config["configurable"]["checkpoint_id"]

    async def no_window(thread_id: str, checkpoint_id: str) -> list[Any]:
        return []

    result = await TurnReader(saver, no_window).steps(thread, middle, end)
    steps = result.steps
    assert [(s.agent, s.node) for s in steps] == [
        ("agent", "input"), ("agent", "plan"),
        ("researcher", "input"), ("researcher", "search"), ("researcher", "summarise"),
        ("agent", "researcher"),
    ]
    assert [s.values["log"] for s in steps[:2]] == [["second"], ["planned"]]
    assert [s.values["log"] for s in steps[3:5]] == [["searched"], ["summarised"]]
    assert not result.truncated


async def test_a_turn_longer_than_the_limit_shows_its_newest_steps_and_says_so(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    saver = PooledPostgresSaver(service.pool)
    loop = StateGraph(_State)
    loop.add_node("tick", lambda s: {"log": ["t"]})
    loop.add_edge(START, "tick")
    loop.add_conditional_edges("tick", lambda s: END if len(s["log"]) > MAX_STEPS + 10 else "tick")
    graph = loop.compile(checkpointer=saver)
    thread = unique("long")
    config: Any = {"configurable": {"thread_id": thread}, "recursion_limit": MAX_STEPS + 50}
    await graph.ainvoke({"log": []}, config)
    end = (await graph.aget_state(config)).config["configurable"]["checkpoint_id"]

    async def no_window(thread_id: str, checkpoint_id: str) -> list[Any]:
        return []

    result = await TurnReader(saver, no_window).steps(thread, None, end)
    assert result.truncated
    assert len(result.steps) == MAX_STEPS
    assert {s.node for s in result.steps} == {"tick"} and result.steps[-1].checkpoint_id == end
