"""Fault matrix, the model: a stream cut half-way, and a model that never answers.

One real ``backtrack api`` process on the suite's PostgreSQL and the fake model. What the
user sees is the API's answer; what is stored is read back through ``history``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.faults.cluster import LLM_TIMEOUT, ask, matrix_env
from tests.processes import BacktrackProcess

HALF_ANSWER = "The first part of a long answer, streamed in pieces. " * 6


@pytest.fixture
async def instance(pg_url: str, fake_llm: FakeOpenAI, tmp_path: Path) -> AsyncIterator[BacktrackProcess]:
    proc = BacktrackProcess(matrix_env(pg_url, fake_llm), tmp_path / "api.log")
    try:
        await proc.start()
        yield proc
    finally:
        proc.kill()


async def _questions(proc: BacktrackProcess, thread: str) -> list[str]:
    _, history = await proc.post("/api/graph/history", {"thread_id": thread})
    return [t["question"] for t in history["turns"]]


async def test_a_stream_cut_half_way_is_reported_and_nothing_of_it_is_stored(
    instance: BacktrackProcess, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    thread = unique("cut")
    assert (await ask(instance, thread, "first"))[0] == 200
    fake_llm.queue(Reply(HALF_ANSWER, cut_after=3))
    status, body = await ask(instance, thread, "cut off")
    assert status == 502 and body["error"]["code"] == "agent_failed", body
    assert "failed to answer" in body["error"]["message"] and "Traceback" not in str(body)
    assert await _questions(instance, thread) == ["first"]

    status, body = await ask(instance, thread, "next")
    assert status == 200 and body["answer"] == "heard: first | next"
    sent = fake_llm.requests[-1]["messages"]
    assert not any(HALF_ANSWER[:40] in str(m.get("content")) for m in sent)  # the half answer is gone
    assert await _questions(instance, thread) == ["first", "next"]


async def test_a_model_that_never_answers_ends_the_turn_at_the_llm_timeout(
    instance: BacktrackProcess, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    thread = unique("hang")
    assert (await ask(instance, thread, "first"))[0] == 200
    fake_llm.queue(Reply("too late", delay=120))
    began = time.monotonic()
    status, body = await ask(instance, thread, "no answer")
    took = time.monotonic() - began
    assert status == 502 and body["error"]["code"] == "agent_failed", body
    print(f"model hang: the turn ended after {took:.2f} s (BACKTRACK_LLM_TIMEOUT={LLM_TIMEOUT:g})")
    assert LLM_TIMEOUT - 0.5 <= took <= LLM_TIMEOUT + 5, took
    assert await _questions(instance, thread) == ["first"]
    # the conversation is free again: the next question is answered, not refused as busy
    status, body = await ask(instance, thread, "again")
    assert status == 200 and body["answer"] == "heard: first | again"
