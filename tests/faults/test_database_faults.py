"""Fault matrix, the database misbehaving: killed mid-turn, and a connection that hangs.

``SIGKILL`` of every PostgreSQL process is a crash: the restart runs crash recovery. A
hang is a TCP proxy (tests/fakes/tcp_proxy.py) that stops forwarding without resetting
anything, which no server-side timeout can notice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

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


async def test_a_hanging_database_connection_fails_the_turn_in_bounded_time_then_recovers(
    pg_url: str, proxy: HangingProxy, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    params = psycopg.conninfo.conninfo_to_dict(pg_url)
    url = psycopg.conninfo.make_conninfo(pg_url, host="127.0.0.1", port=proxy.port)
    assert params.get("host") != "127.0.0.1"
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
