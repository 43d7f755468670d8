"""Fault matrix, the database misbehaving: killed mid-turn, and a network path that goes silent.

``SIGKILL`` of every PostgreSQL process is a crash: the restart runs crash recovery. A
silent path is a TCP proxy (tests/fakes/tcp_proxy.py) that stops forwarding without
resetting anything, which no server-side timeout can notice: an idle connection's next
check, a statement already in flight, the lock connection and the migration connection
must each give up within their documented bound (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

from core.keys import ThreadKey
from core.settings import Settings
from core.storage.db import NoAnswer, open_pool
from core.storage.locks import ConversationLocks
from tests import ROOT
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.fakes.tcp_proxy import HangingProxy
from tests.faults.cluster import DB_TIMEOUT, ask, health, matrix_env
from tests.processes import BacktrackProcess

Database = tuple[str, Callable[[], None], Callable[[], None]]


def _kill_postgres(url: str) -> None:
    """SIGKILL the postmaster and every backend, as a crash of the database host would."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    postmaster = int((Path(row[0]) / "postmaster.pid").read_text().split()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    pids = (postmaster, *map(int, children))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids):  # gone (or a zombie) before anyone restarts it
        assert time.monotonic() < deadline, "PostgreSQL survived SIGKILL"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_postgres_killed_mid_turn_records_nothing_half_way_and_says_so_once(
    own_database: Database, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    url, stop, start = own_database
    proc = BacktrackProcess(matrix_env(url, fake_llm), tmp_path / "api.log")
    await proc.start()
    try:
        assert (await ask(proc, "crash", "before"))[0] == 200
        fake_llm.queue(ToolCall("current_datetime"), Reply("answer after the crash", delay=1))
        doomed = asyncio.create_task(ask(proc, "crash", "in flight"))
        await fake_llm.wait_for_requests(3)  # the tool ran and its checkpoint is written
        await asyncio.to_thread(_kill_postgres, url)
        status, body = await doomed
        assert status == 503 and body["error"]["code"] == "storage_unavailable", body
        await asyncio.to_thread(stop)  # only forgets pgserver's handle: the server is dead
        await asyncio.to_thread(start)  # crash recovery

        status, body = await ask(proc, "crash", "after")
        assert status == 200, body
        assert body["answer"].startswith("(Your earlier message “in flight” was cut off")
        assert body["answer"].endswith("heard: before | after")
        status, body = await ask(proc, "crash", "later")
        assert body["answer"] == "heard: before | after | later"  # the notice comes once
        _, history = await proc.post("/api/graph/history", {"thread_id": "crash"})
        assert [t["question"] for t in history["turns"]] == ["before", "after", "later"]
    finally:
        proc.kill()
        await asyncio.to_thread(stop)


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[HangingProxy]:
    params = psycopg.conninfo.conninfo_to_dict(pg_url)
    socket = Path(str(params["host"])) / f".s.PGSQL.{params.get('port') or 5432}"
    hanging = HangingProxy(socket)
    await hanging.start()
    yield hanging
    await hanging.stop()


def _through(pg_url: str, proxy: HangingProxy) -> str:
    """The session's database, reached through the proxy."""
    assert psycopg.conninfo.conninfo_to_dict(pg_url).get("host") != "127.0.0.1"
    return psycopg.conninfo.make_conninfo(pg_url, host="127.0.0.1", port=proxy.port)


async def test_a_hanging_database_connection_fails_the_turn_in_bounded_time_then_recovers(
    pg_url: str, proxy: HangingProxy, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    url = _through(pg_url, proxy)
    proc = BacktrackProcess(matrix_env(url, fake_llm), tmp_path / "api.log")
    await proc.start()
    thread = unique("hang")
    try:
        assert (await ask(proc, thread, "before"))[0] == 200
        proxy.pause()
        await asyncio.sleep(1.5)  # the connections go idle, as between two messages
        began = time.monotonic()
        status, body = await asyncio.wait_for(ask(proc, thread, "during"), 4 * DB_TIMEOUT)
        took = time.monotonic() - began
        assert status == 503 and body["error"]["code"] == "storage_unavailable", body
        print(f"hanging connection: storage message after {took:.2f} s")
        assert took <= 2 * DB_TIMEOUT + 1, took
        proxy.resume()
        resumed = time.monotonic()
        async with asyncio.timeout(10):
            while (result := await ask(proc, thread, "after"))[0] != 200:
                await asyncio.sleep(0.2)
        print(f"hanging connection: answered {time.monotonic() - resumed:.2f} s after the proxy resumed")
        assert result[1]["answer"] == "heard: before | after"
        assert await health(proc) == 200
    finally:
        proc.kill()


STATEMENT = 2.0
"""BACKTRACK_DB_STATEMENT_TIMEOUT in these tests: the bound of one round trip."""


async def test_a_statement_in_flight_when_the_path_goes_silent_fails_the_turn_then_recovers(
    pg_url: str, proxy: HangingProxy, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    env = matrix_env(_through(pg_url, proxy), fake_llm, BACKTRACK_DB_STATEMENT_TIMEOUT=str(STATEMENT))
    proc = BacktrackProcess(env, tmp_path / "api.log")
    await proc.start()
    thread = unique("silent")
    try:
        assert (await ask(proc, thread, "before"))[0] == 200
        fake_llm.queue(Reply("never stored", delay=0.5))
        during = asyncio.create_task(ask(proc, thread, "during"))
        await fake_llm.wait_for_requests(2)  # the turn holds its lock and is marked in flight
        proxy.pause()  # what the turn writes next (its checkpoint) is sent and never answered
        paused = time.monotonic()
        status, body = await asyncio.wait_for(during, 30)
        took = time.monotonic() - paused
        print(f"statement in flight: storage message {took:.2f} s after the path went silent")
        assert status == 503 and body["error"]["code"] == "storage_unavailable", body
        assert took <= 0.5 + STATEMENT + 2 * DB_TIMEOUT + 1, took  # + clearing the mark, releasing the lock
        proxy.resume()
        resumed = time.monotonic()
        async with asyncio.timeout(15):  # the lock the dead turn held goes with its connection
            while (result := await ask(proc, thread, "after"))[0] != 200:
                await asyncio.sleep(0.2)
        print(f"statement in flight: answered {time.monotonic() - resumed:.2f} s after the path came back")
        assert result[1]["answer"].endswith("heard: before | after"), result
        _, history = await proc.post("/api/graph/history", {"thread_id": thread})
        assert [t["question"] for t in history["turns"]] == ["before", "after"]  # 0 lost, 0 doubled
    finally:
        proc.kill()


async def test_the_pool_lock_and_migration_connections_each_bound_a_swallowed_statement(
    pg_url: str, proxy: HangingProxy, make_settings: Callable[..., Settings], unique: Callable[[str], str]
) -> None:
    url = _through(pg_url, proxy)
    settings = make_settings(DATABASE_URL=url, BACKTRACK_DB_STATEMENT_TIMEOUT="1", BACKTRACK_DB_TIMEOUT="1")
    pool = await open_pool(settings, url)
    try:
        # a pooled connection, mid-statement
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
            proxy.pause()
            began = time.monotonic()
            with pytest.raises(NoAnswer):
                await conn.execute("SELECT 1")
            assert time.monotonic() - began < 2.0
        # the migration connection is one of the same class (core/storage/migrations.py)
        proxy.resume()
        direct = await pool.connection_class.connect(url, **pool.kwargs)  # type: ignore[arg-type]
        proxy.pause()
        began = time.monotonic()
        with pytest.raises(NoAnswer):
            await direct.execute("SELECT pg_try_advisory_lock(1)")
        assert time.monotonic() - began < 2.0
        await direct.close()
        # the lock connection: releasing a lock over a silent path gives up and drops it
        proxy.resume()
        key = ThreadKey.api(unique("lock"))
        locks = ConversationLocks(pool, timeout=1.0, connect_timeout=1.0)
        began = time.monotonic()
        async with locks.hold(key):
            proxy.pause()
        assert time.monotonic() - began < 3.0
        proxy.resume()
        elsewhere = ConversationLocks(pool, timeout=5.0, connect_timeout=5.0, conninfo=pg_url)
        async with elsewhere.hold(key):  # released with the dropped connection's session
            pass
        await locks.close()
        await elsewhere.close()
        async with pool.connection() as conn:  # and the pool is whole again
            assert await (await conn.execute("SELECT 1 AS one")).fetchone() == {"one": 1}
    finally:
        proxy.resume()
        await pool.close()


async def test_migrate_over_a_silent_path_fails_in_bounded_time_with_a_sentence(
    pg_url: str, proxy: HangingProxy, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": _through(pg_url, proxy), "BACKTRACK_DB_TIMEOUT": "1",
           "BACKTRACK_DB_STATEMENT_TIMEOUT": "1", "PATH": "/usr/bin:/bin"}
    proxy.pause()
    began = time.monotonic()
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", "migrate", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(done.communicate(), 30)
    took = time.monotonic() - began
    print(f"migrate over a silent path: gave up after {took:.2f} s")
    assert done.returncode != 0 and took < 15, (took, err.decode())
    assert "Storage is unavailable" in err.decode() and "Traceback" not in err.decode(), err.decode()
    proxy.resume()
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", "migrate", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(done.communicate(), 60)
    assert done.returncode == 0 and b"database is up to date" in out
