"""Fault matrix, the processes: one of two instances killed while both serve one conversation.

The killed instance held the conversation (its turn was waiting for the model) and the
other had a message queued behind it. PostgreSQL drops the dead process's session, and
its advisory lock with it, so the survivor goes on; the dead turn is not recorded.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.faults.cluster import ask, matrix_env
from tests.processes import BacktrackProcess, instances


@pytest.fixture
async def pair(pg_url: str, fake_llm: FakeOpenAI, tmp_path: Path) -> AsyncIterator[list[BacktrackProcess]]:
    async with instances(matrix_env(pg_url, fake_llm), tmp_path) as procs:
        yield procs


async def test_sigkill_of_one_instance_leaves_the_other_serving_the_conversation(
    pair: list[BacktrackProcess], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    doomed, survivor = pair
    thread = unique("kill1of2")
    for n, proc in enumerate(pair):  # both serve the conversation
        assert (await ask(proc, thread, f"turn {n}"))[0] == 200

    fake_llm.queue(Reply("never delivered", delay=60))
    dying = asyncio.create_task(ask(doomed, thread, "lost with its process"))
    await fake_llm.wait_for_requests(3)  # the doomed instance holds the conversation, mid-turn
    queued = asyncio.create_task(ask(survivor, thread, "queued on the survivor"))
    await asyncio.sleep(0.5)
    assert not queued.done()  # it waits for the conversation, as one writer at a time demands
    doomed.signal(signal.SIGKILL)
    with pytest.raises(aiohttp.ClientError):
        await dying

    async with asyncio.timeout(15):  # the lock died with the session: no "busy" for ever
        status, body = await queued
    assert status == 200, body
    assert body["answer"].endswith("heard: turn 0 | turn 1 | queued on the survivor")
    assert "cut off" in body["answer"]  # the dead instance's question is named once, not answered
    status, body = await ask(survivor, thread, "later")
    assert status == 200 and body["answer"] == "heard: turn 0 | turn 1 | queued on the survivor | later"
    _, history = await survivor.post("/api/graph/history", {"thread_id": thread})
    assert [t["question"] for t in history["turns"]] == ["turn 0", "turn 1", "queued on the survivor", "later"]
