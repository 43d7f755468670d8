"""Fault matrix, the database: stopped for 5 s and 60 s with full pools, and a 300 s one simulated.

Each outage is *quiet* after its first seconds: a few requests hit it (and get the
storage message), then nothing, which is where psycopg_pool's unbounded reconnection
backoff used to keep a bot down long after the database came back. Recovery is timed
from the moment PostgreSQL accepts connections again to the first answer, on each of two
instances sharing the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from core.errors import StorageUnavailable
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from tests.faults.cluster import DB_TIMEOUT, ask, health, idle_connections
from tests.processes import BacktrackProcess

RECOVERY_SECONDS = 5.0

Database = tuple[str, Callable[[], None], Callable[[], None]]


async def _restart(database: Database) -> tuple[float, asyncio.Task[None]]:
    """Start PostgreSQL again; returns when it first accepts a connection, and that moment."""
    url, _, start = database
    starting = asyncio.create_task(asyncio.to_thread(start))
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, connect_timeout=1)
        except psycopg.OperationalError:  # refused, or "the database system is starting up"
            await asyncio.sleep(0.02)
            continue
        back = time.monotonic()
        await conn.close()
        return back, starting


async def _fill_pools(instances: list[BacktrackProcess]) -> list[str]:
    """100 concurrent questions over 50 conversations, so each pool holds many connections."""
    threads = [f"outage-{n}" for n in range(50)]
    results = await asyncio.gather(*(
        ask(instances[i % 2], threads[i % 50], f"before {i}") for i in range(100)
    ))
    assert all(status == 200 for status, _ in results), results
    for proc in instances:
        assert await idle_connections(proc) >= 3  # more than the pool's minimum of one
    return threads


async def _outage(instances: list[BacktrackProcess], database: Database, seconds: float) -> None:
    stop = database[1]
    threads = await _fill_pools(instances)
    await asyncio.to_thread(stop)
    stopped = time.monotonic()
    for proc in instances:  # what a user sees during the outage: a clear answer, quickly
        began = time.monotonic()
        status, body = await ask(proc, threads[0], "during")
        assert status == 503 and body["error"]["code"] == "storage_unavailable", body
        assert "try again" in body["error"]["message"]
        assert time.monotonic() - began < DB_TIMEOUT + 2
        assert await health(proc) == 503
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - stopped)))  # quiet from here on
    back, starting = await _restart(database)

    async def first_answer(proc: BacktrackProcess, thread: str) -> float:
        status, body = await ask(proc, thread, "after")  # the very first request must succeed
        assert status == 200, body
        return time.monotonic() - back

    recovered = await asyncio.gather(*(first_answer(p, threads[n + 1]) for n, p in enumerate(instances)))
    for proc in instances:
        assert await health(proc) == 200
    healthy = time.monotonic() - back
    await starting
    print(f"outage of {seconds:.0f} s: first answers {recovered} s, healthz 200 after {healthy:.2f} s")
    assert max(recovered) <= RECOVERY_SECONDS and healthy <= RECOVERY_SECONDS

    # nothing lost or doubled: every conversation has its two turns from before, then "after"
    for n, thread in enumerate(threads[:3]):
        _, history = await ask_history(instances[0], thread)
        questions = [t["question"] for t in history["turns"]]
        expected = sorted([f"before {n}", f"before {n + 50}"])
        assert sorted(questions[:2]) == expected and questions[2:] == (["after"] if n else [])


async def ask_history(proc: BacktrackProcess, thread: str) -> tuple[int, dict[str, Any]]:
    return await proc.post("/api/graph/history", {"thread_id": thread, "limit": 50})


async def test_database_stopped_5_s_with_full_pools_answers_again_within_5_s(
    two_instances: list[BacktrackProcess], own_database: Database
) -> None:
    await _outage(two_instances, own_database, 5)


async def test_database_stopped_60_s_with_full_pools_answers_again_within_5_s(
    two_instances: list[BacktrackProcess], own_database: Database
) -> None:
    await _outage(two_instances, own_database, 60)


async def test_a_300_s_outage_simulated_still_recovers_within_5_s(
    own_database: Database, make_settings: Callable[..., Settings]
) -> None:
    """Five minutes down, simulated: each backed-off attempt is given the delay it would have.

    After 300 s of failures psycopg_pool's own schedule (1, 2, 4, … s) has reached a delay of
    256 s. The test sets that on every pending reconnection attempt, waits for each to fail
    once more (so the next delay is computed from it), then brings the database back and
    expects the pool to reconnect by itself, with no request, and the next turn to be
    answered, both within 5 s.
    """
    url, stop, _ = own_database
    settings = make_settings(DATABASE_URL=url, BACKTRACK_DB_TIMEOUT=DB_TIMEOUT, BACKTRACK_DB_POOL_MAX=10)
    key = ThreadKey.api("simulated")
    async with open_service(settings, maintenance=False) as service:
        pool = service.pool
        await asyncio.gather(*(service.ask(ThreadKey.api(f"fill-{n}"), "fill") for n in range(30)))
        await service.ask(key, "before")
        assert pool.get_stats()["pool_available"] >= 3
        await asyncio.to_thread(stop)
        with pytest.raises(StorageUnavailable):
            await service.ask(key, "during")
        async with asyncio.timeout(10):
            while not pool._retries:  # type: ignore[attr-defined]  # until the pool retries
                assert not await service.healthy()
        await asyncio.sleep(1)
        for retry in list(pool._retries):  # type: ignore[attr-defined]
            retry.task.attempt.delay = 256.0
        await asyncio.sleep(2.5)  # every attempt fails once more: the next delay is set from 256 s
        def reconnected() -> int:
            stats = pool.get_stats()
            return stats.get("connections_num", 0) - stats.get("connections_errors", 0)

        before = reconnected()
        back, starting = await _restart(own_database)
        async with asyncio.timeout(RECOVERY_SECONDS):
            while reconnected() == before:  # quiet: nobody asks, the pool reconnects by itself
                await asyncio.sleep(0.05)
        refilled = time.monotonic() - back
        assert (await service.ask(key, "after")).text == "heard: before | after"
        answered = time.monotonic() - back
        print(f"simulated 300 s outage: pool reconnected after {refilled:.2f} s, answered after {answered:.2f} s")
        assert answered <= RECOVERY_SECONDS
        await starting
    stop()
