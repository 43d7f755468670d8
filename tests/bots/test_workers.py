"""``backtrack api --workers N``: several processes on one port behave as one server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bots.workers import _STARTUP_SECONDS
from tests import ROOT
from tests.fakes.openai_server import FakeOpenAI
from tests.processes import BacktrackProcess, check_one_writer, free_port


@pytest.fixture
def env(pg_url: str, fake_llm: FakeOpenAI) -> dict[str, str]:
    return {"DATABASE_URL": pg_url, "OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": "k"}


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _workers(supervisor: BacktrackProcess) -> list[int]:
    assert supervisor.proc is not None
    return _children(supervisor.proc.pid)


def _alive(pid: int) -> bool:
    """Running: a process that exited but was not reaped yet (a zombie) does not count."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    for _ in range(int(timeout * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_two_workers_share_the_port_and_one_conversation_has_one_writer(
    env: dict[str, str], fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    supervisor = BacktrackProcess(env, tmp_path / "workers.log", "api", "--workers", "2")
    await supervisor.start()
    try:
        await _until(lambda: len(_workers(supervisor)) == 2)
        await check_one_writer([supervisor], unique("workers"), fake_llm.requests)
        workers = _workers(supervisor)
        supervisor.signal(signal.SIGTERM)
        assert await supervisor.wait_exit() == 0
        assert not any(_alive(pid) for pid in workers)
    finally:
        supervisor.kill()


async def test_a_worker_that_dies_is_replaced_and_the_server_keeps_answering(
    env: dict[str, str], fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    supervisor = BacktrackProcess(env, tmp_path / "replace.log", "api", "--workers", "2")
    await supervisor.start()
    try:
        await _until(lambda: len(_workers(supervisor)) == 2)
        await asyncio.sleep(_STARTUP_SECONDS)  # past start-up: a crash now is replaced, not fatal
        victim = _workers(supervisor)[0]
        os.kill(victim, signal.SIGKILL)
        await _until(lambda: len(_workers(supervisor)) == 2 and victim not in _workers(supervisor))
        await supervisor.wait_healthy(30)
        thread = unique("replaced")
        for n in range(4):  # new connections land on either worker, the new one included
            status, body = await supervisor.post("/api/graph", {"query": f"q{n}", "thread_id": thread})
            assert status == 200, body
        assert "starting a new one" in supervisor.log.read_text()
    finally:
        supervisor.kill()


def test_workers_that_cannot_start_stop_the_group_with_a_clear_exit(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:  # a listener without SO_REUSEPORT: the workers cannot bind
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bots", "api", "--workers", "2", "--port", str(port)],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=240,
            cwd=ROOT,
        )
    assert done.returncode == 1
    assert "on start; stopping" in done.stderr
    assert "address already in use" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "0", "--port", "8080"], "--workers takes a number from 1 to 64"),
    (["--workers", "2", "--port", "0"], "--workers needs a fixed --port"),
])
def test_bad_worker_arguments_are_refused_with_a_sentence(
    env: dict[str, str], args: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bots", "api", *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr


async def test_workers_stop_when_their_supervisor_is_killed(
    env: dict[str, str], tmp_path: Path
) -> None:
    supervisor = BacktrackProcess(env, tmp_path / "orphans.log", "api", "--workers", "2")
    await supervisor.start()
    try:
        await _until(lambda: len(_workers(supervisor)) == 2)
        workers = _workers(supervisor)
        supervisor.kill()  # SIGKILL: it cannot pass anything on
        await _until(lambda: not any(_alive(pid) for pid in workers), timeout=60)
    finally:
        supervisor.kill()


async def test_workers_orphaned_while_starting_stop_too(env: dict[str, str], tmp_path: Path) -> None:
    """The supervisor dies before its workers are up: they must not look for it too late."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", "api", "--workers", "2", "--port", str(port),
        env={**os.environ, **env}, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _until(lambda: len(_children(proc.pid)) == 2)
        workers = _children(proc.pid)
        proc.kill()
        await proc.wait()
        await _until(lambda: not any(_alive(pid) for pid in workers), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
