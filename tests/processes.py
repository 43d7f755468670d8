"""Running ``backtrack`` as a real child process, for restart, kill and scale-out tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["BacktrackProcess", "check_one_writer", "free_port", "instances"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BacktrackProcess:
    """``python -m bots api`` on a free port, with a clean environment the test controls."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BACKTRACK_", "API_"))}
        self.env = {**clean, "BACKTRACK_LLM_MAX_RETRIES": "0", **env}
        self.log = log
        self.args = args or ("api",)
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bots", *self.args, "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent,
            )
        await self.wait_healthy(timeout)

    async def wait_healthy(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"backtrack exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"backtrack did not become healthy: {self.log.read_text()[-2000:]}")

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.post(f"{self.url}{path}", json=body) as r:
            return r.status, await r.json()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@asynccontextmanager
async def instances(env: dict[str, str], logs: Path, count: int = 2) -> AsyncIterator[list[BacktrackProcess]]:
    """``count`` API servers on one database, started together and killed at the end."""
    procs = [BacktrackProcess(env, logs / f"api{i}.log") for i in range(count)]
    try:
        await asyncio.gather(*(p.start() for p in procs))
        yield procs
    finally:
        for p in procs:
            p.kill()


async def check_one_writer(procs: list[BacktrackProcess], thread: str, model_requests: list[Any]) -> None:
    """20 concurrent messages to one conversation, spread over the instances: each answered
    once, 20 turns and none doubled, each turn seeing exactly the turns before it."""
    questions = [f"q{i:02d}" for i in range(20)]
    results = await asyncio.gather(*(
        procs[i % len(procs)].post("/api/graph", {"query": q, "thread_id": thread})
        for i, q in enumerate(questions)
    ))
    assert all(status == 200 for status, _ in results), results
    assert all(body["answer"].endswith(q) for (_, body), q in zip(results, questions, strict=True))
    assert len(model_requests) == 20
    _, history = await procs[-1].post("/api/graph/history", {"thread_id": thread, "limit": 50})
    turns = history["turns"]
    assert sorted(t["question"] for t in turns) == questions
    assert [t["index"] for t in turns] == list(range(1, 21))
    for n, turn in enumerate(turns):  # one linear order: one writer at a time
        assert turn["answer"] == "heard: " + " | ".join(t["question"] for t in turns[: n + 1])
