"""Traces: one per incoming request, continuing the caller's ``traceparent``, with the turn,
the lock wait, each model call (with its token counts) and each tool call inside, tagged
with the conversation and turn, and no message text. Read with the SDK's in-memory exporter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bots.api import build_app
from core.runtime import open_service
from core.settings import Settings
from tests.fakes.http import serving
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

EXPORTED = InMemorySpanExporter()
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process's tracer provider, set once (OpenTelemetry allows one per process)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTED))
        trace.set_tracer_provider(provider)
    return EXPORTED


@pytest.fixture
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[str]:
    settings = make_settings()
    async with open_service(settings) as service, serving(build_app(settings, service)) as url:
        yield url


def _named(found: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in found if s.name == name]


async def test_a_request_is_one_trace_with_the_turn_its_model_and_tool_calls(
    spans: InMemorySpanExporter, api: str, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    spans.clear()
    thread, secret = unique("traced"), "my password is hunter2"
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    header = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    async with aiohttp.ClientSession() as http, http.post(
        f"{api}/api/graph", json={"query": secret, "thread_id": thread}, headers=header
    ) as r:
        assert r.status == 200
    found = spans.get_finished_spans()
    ours = [s for s in found if s.context is not None and format(s.context.trace_id, "032x") == TRACE_ID]
    names = {s.name for s in ours}
    assert {"POST /api/graph", "backtrack.turn", "backtrack.lock", "tool web_search"} <= names
    assert {n for n in names if n.startswith("chat ")}, names  # the model calls
    [turn] = _named(tuple(ours), "backtrack.turn")
    assert turn.attributes is not None and turn.attributes["backtrack.conversation"] == f"api:{thread}"
    assert turn.attributes.get("backtrack.turn_id")
    calls = [s for s in ours if s.name.startswith("chat ")]
    tokens = [(s.attributes or {}).get("gen_ai.usage.input_tokens") for s in calls]
    assert all(isinstance(n, int) and n > 0 for n in tokens), tokens
    assert all(s.parent is not None for s in ours if s.name != "POST /api/graph")  # one tree
    for s in ours:  # no message text, anywhere
        assert not any(secret in str(v) for v in (s.attributes or {}).values())
