"""Metrics as an operator sees them: scraped from ``/metrics`` after real turns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bots.api import build_app
from core.conversations.service import ConversationService
from core.errors import AgentFailed, InvalidInput
from core.keys import ThreadKey
from core.metrics import observe_turn
from core.runtime import open_service
from core.settings import Settings
from tests.fakes.http import serving
from tests.fakes.openai_server import Fail, FakeOpenAI, Reply, ToolCall

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def ask(self, thread: str, query: str) -> tuple[int, Any]:
        body = {"thread_id": thread, "query": query}
        async with self.session.post(self.url + "/api/graph", json=body) as response:
            return response.status, await response.json()

    async def scrape(self) -> Samples:
        async with self.session.get(self.url + "/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def api(settings: Settings, service: ConversationService) -> AsyncIterator[Api]:
    async with serving(build_app(settings, service)) as url, aiohttp.ClientSession() as session:
        yield Api(session, url)


async def until(check: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


# -- end to end ----------------------------


async def test_a_tool_using_turn_moves_the_turn_model_and_tool_metrics(
    api: Api, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    before = await api.scrape()
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    status, body = await api.ask(unique("m"), "What is the capital of France?")
    assert status == 200 and body["answer"] == "Paris."
    after = await api.scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("backtrack_turns_total", platform="api", outcome="ok") == 1
    assert moved("backtrack_turn_seconds_count", platform="api") == 1
    llm_calls = sum(
        v - value(before, n, **dict(labels))
        for (n, labels), v in after.items()
        if n == "backtrack_llm_seconds_count"
    )
    assert llm_calls == 2  # asked for the tool, then answered
    assert moved("backtrack_tool_seconds_count", tool="web_search") == 1


# -- what works without the wiring -----------------------------------------------------


async def test_pool_connections_are_reported_after_a_turn(api: Api, unique: Callable[[str], str]) -> None:
    status, _ = await api.ask(unique("pool"), "hello")
    assert status == 200
    samples = await api.scrape()
    in_use = value(samples, "backtrack_db_pool_connections", state="in_use")
    idle = value(samples, "backtrack_db_pool_connections", state="idle")
    assert ("backtrack_db_pool_connections", frozenset({("state", "waiting")})) in samples
    assert in_use + idle >= 1  # the pool keeps its minimum of one connection open
    assert value(samples, "backtrack_db_pool_connections", state="waiting") == 0


async def test_a_message_waiting_for_a_busy_conversation_is_counted_as_queued(
    api: Api, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    thread = unique("busy")
    fake_llm.hold = asyncio.Event()
    first = asyncio.create_task(api.ask(thread, "first"))
    await until(lambda: _true(len(fake_llm.requests) == 1), "the first turn to reach the model")
    second = asyncio.create_task(api.ask(thread, "second"))

    async def queued(n: int) -> bool:
        return value(await api.scrape(), "backtrack_queued_messages") == n

    await until(lambda: queued(1), "the second message to be queued")
    fake_llm.hold.set()
    assert (await first)[0] == 200 and (await second)[0] == 200
    assert await queued(0)


async def _true(result: bool) -> bool:
    return result


# -- the pieces, used the way the service will use them --------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_observe_turn_counts_each_outcome_of_real_turns(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    platform = unique("p")
    key = ThreadKey.api(unique("o"))
    async with observe_turn(platform):
        await service.ask(key, "fine")
    with pytest.raises(InvalidInput):
        async with observe_turn(platform):
            await service.ask(key, "   ")
    fake_llm.queue(Fail(500))
    with pytest.raises(AgentFailed):
        async with observe_turn(platform):
            await service.ask(key, "the model is down")

    async def cancelled_turn() -> None:
        async with observe_turn(platform):
            await service.ask(key, "never answered")

    fake_llm.hold = asyncio.Event()
    task = asyncio.create_task(cancelled_turn())
    await until(lambda: _true(len(fake_llm.requests) == 3), "the held turn to reach the model")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    fake_llm.hold.set()  # let the fake server finish the abandoned request

    for outcome in ("ok", "invalid_input", "agent_failed", "cancelled"):
        assert sample("backtrack_turns_total", platform=platform, outcome=outcome) == 1, outcome
    assert sample("backtrack_turn_seconds_count", platform=platform) == 4
    assert sample("backtrack_errors_total", kind="agent_failed") >= 1


async def test_model_and_tool_calls_of_a_turn_are_timed_and_tool_errors_counted(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    model = unique("model")
    fake_llm.queue(
        ToolCall("web_search", {"query": "capital of France"}),
        ToolCall("web_search", {"wrong": "arguments"}),
        Reply("Paris."),
    )
    runs_before = sample("backtrack_tool_seconds_count", tool="web_search")
    errors_before = sample("backtrack_tool_errors_total", tool="web_search")
    async with open_service(make_settings(BACKTRACK_MODEL=model)) as service:
        answer = await service.ask(ThreadKey.api(unique("cb")), "capital?")
    assert answer.text == "Paris."
    assert sample("backtrack_llm_seconds_count", model=model) == 3
    assert sample("backtrack_tool_seconds_count", tool="web_search") - runs_before == 2
    assert sample("backtrack_tool_errors_total", tool="web_search") - errors_before == 1
