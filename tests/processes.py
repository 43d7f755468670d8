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

__all__ = ["BacktrackProcess", "free_port", "instances"]


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
