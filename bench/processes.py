"""Scale-out: turns per second over HTTP with 1, 2 and 4 ``backtrack api`` processes on one database.

Each process count gets a fresh database and a real ``backtrack api --workers N`` (plain
``backtrack api`` for 1), driven over HTTP by this process: ``conversations`` clients at
once, ``turns`` questions each, every answer checked for its status. The processes run the
offline demo model (no key in their environment), so the model costs next to nothing and
the figure is the stack's: HTTP, the service, the locks and LangGraph on PostgreSQL. The
load generator and PostgreSQL run on the same machine, so on 2 cores the processes share
them with both (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.storage import create_database, drop_database

__all__ = ["Scaled", "scale_out"]

_ROOT = Path(__file__).resolve().parent.parent
Scaled = dict[int, float]
"""Process count → turns per second."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _healthy(url: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"backtrack api exited with {proc.returncode}")
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("backtrack api did not become healthy")


async def _load(url: str, prefix: str, conversations: int, turns: int) -> float:
    failures: list[int] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)  # each request a new connection:
    async with aiohttp.ClientSession(connector=connector) as session:  # the kernel spreads them

        async def talk(n: int) -> None:
            for turn in range(turns):
                body = {"query": f"what is the capital of France? ({turn})", "thread_id": f"{prefix}-{n}"}
                async with session.post(f"{url}/api/graph", json=body) as response:
                    await response.read()
                    if response.status != 200:
                        failures.append(response.status)

        started = time.perf_counter()
        await asyncio.gather(*(talk(n) for n in range(conversations)))
        seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed: {sorted(set(failures))}")
    return conversations * turns / seconds


async def _one(admin_url: str, processes: int, conversations: int, turns: int) -> float:
    url = await create_database(admin_url, f"bench_procs{processes}")
    port = _free_port()
    workers = ["--workers", str(processes)] if processes > 1 else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BACKTRACK_", "API_"))}
    env |= {
        "DATABASE_URL": url,
        "BACKTRACK_LOG_LEVEL": "WARNING",
        "BACKTRACK_DATA_DIR": tempfile.gettempdir(),
        "BACKTRACK_DB_POOL_MAX": str(conversations // processes + 5),  # a share of max_connections each
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", "api", "--port", str(port), *workers,
        env=env, cwd=_ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    server = f"http://127.0.0.1:{port}"
    try:
        await _healthy(server, proc)
        await _load(server, "warm", processes * 2, 2)  # every worker connected and migrated
        return await _load(server, "run", conversations, turns)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
        await drop_database(admin_url, url)


async def scale_out(admin_url: str, counts: tuple[int, ...], conversations: int, turns: int) -> Scaled:
    return {n: await _one(admin_url, n, conversations, turns) for n in counts}
