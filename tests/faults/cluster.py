"""Helpers of the fault matrix: real ``backtrack`` processes on a PostgreSQL of the test's own.

The settings are small so the rows stay quick: two seconds to wait for a database
connection, three for a model reply. A row's expectations are what a user would see.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.processes import BacktrackProcess, instances

__all__ = ["DB_TIMEOUT", "LLM_TIMEOUT", "ask", "health", "idle_connections", "matrix_env", "two_instances"]

DB_TIMEOUT = 2.0
LLM_TIMEOUT = 3.0

Database = tuple[str, Callable[[], None], Callable[[], None]]


def matrix_env(url: str, fake_llm: FakeOpenAI, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url, "OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": "k",
        "BACKTRACK_DB_TIMEOUT": str(DB_TIMEOUT), "BACKTRACK_LLM_TIMEOUT": str(LLM_TIMEOUT),
        "BACKTRACK_DB_POOL_MAX": "10", **extra,
    }


@pytest.fixture
async def two_instances(
    own_database: Database, fake_llm: FakeOpenAI, tmp_path: Path
) -> AsyncIterator[list[BacktrackProcess]]:
    try:
        async with instances(matrix_env(own_database[0], fake_llm), tmp_path) as procs:
            yield procs
    finally:
        await asyncio.to_thread(own_database[1])


async def ask(proc: BacktrackProcess, thread: str, query: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(
        f"{proc.url}/api/graph", json={"query": query, "thread_id": thread},
        timeout=aiohttp.ClientTimeout(total=60),
    ) as r:
        return r.status, await r.json()


async def health(proc: BacktrackProcess) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{proc.url}/healthz") as r:
        return r.status


async def idle_connections(proc: BacktrackProcess) -> int:
    """The pool's idle connections, as ``/metrics`` reports them to an operator."""
    async with aiohttp.ClientSession() as session, session.get(f"{proc.url}/metrics") as r:
        text = await r.text()
    found = re.search(r'backtrack_db_pool_connections\{state="idle"\} (\d+)', text)
    assert found, text
    return int(float(found.group(1)))
