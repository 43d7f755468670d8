"""``backtrack api --workers N``: N server processes on one port, one database, one supervisor.

One Python process runs its event loop on one core, so a busy API is CPU-bound long before
PostgreSQL is (docs/performance.md). The workers are ordinary ``backtrack api``
processes that bind the same port with ``SO_REUSEPORT``, so the kernel spreads new
connections over them and no process forwards bytes for another. Nothing is shared
between them but the database: the conversation locks and the delivery dedupe already
make several processes one writer per conversation (the same code as several machines).

The supervisor only starts, replaces and stops them. It resolves the database first, so
with no ``DATABASE_URL`` the embedded PostgreSQL is started once, by the supervisor, and
every worker gets its URL. A worker that dies is replaced; one that dies within
``_STARTUP_SECONDS`` of starting (a bad setting, a port in use), or more than
``_RESTARTS`` replacements within ``_RESTART_WINDOW`` seconds (a start-up slower than
that on a loaded machine), stops the whole group, since a replacement would fail the same
way. SIGTERM/SIGINT are passed to every worker, each drains its running turns
(``BACKTRACK_SHUTDOWN_GRACE``), and the supervisor exits when they have.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from contextlib import suppress
from typing import TYPE_CHECKING

from bots.serving import stop_signals
from core.errors import SettingsError
from core.runtime import resolve_database

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["supervise", "watch_supervisor"]

_log = logging.getLogger(__name__)

_STARTUP_SECONDS = 5.0
_RESTARTS = 3
_RESTART_WINDOW = 60.0
MAX_WORKERS = 64


class _Worker:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self._command = command
        self._env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.started = 0.0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(*self._command, env=self._env)
        self.started = time.monotonic()
        _log.info("worker %d started", self.proc.pid)

    async def exited(self) -> _Worker:
        assert self.proc is not None
        await self.proc.wait()
        return self

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with suppress(ProcessLookupError):
                self.proc.send_signal(sig)


async def supervise(settings: Settings, host: str, port: int, workers: int) -> int:
    """Run ``workers`` API processes on ``host:port`` until a signal stops them; their exit code."""
    if not 1 < workers <= MAX_WORKERS:
        raise SettingsError(f"--workers takes a number from 1 to {MAX_WORKERS}")
    if port == 0:
        raise SettingsError("--workers needs a fixed --port: with port 0 every worker would pick its own")
    url = await resolve_database(settings)  # the embedded server, if any, is ours
    env = {**os.environ, "DATABASE_URL": url}
    command = [sys.executable, "-m", "bots", "api", "--host", host, "--port", str(port),
               "--supervisor", str(os.getpid())]
    group = [_Worker(command, env) for _ in range(workers)]
    for worker in group:
        await worker.start()
    _log.info("%d workers serving http://%s:%d", workers, host, port)
    code = 0
    restarts: list[float] = []
    async with stop_signals() as stop:
        stopping = asyncio.create_task(stop.wait())
        watching = {asyncio.create_task(w.exited()) for w in group}
        while not code and not stop.is_set():
            done, _ = await asyncio.wait({stopping, *watching}, return_when=asyncio.FIRST_COMPLETED)
            for task in watching & done:
                watching.discard(task)
                worker = task.result()
                assert worker.proc is not None
                pid, returncode = worker.proc.pid, worker.proc.returncode
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < _RESTART_WINDOW] + [now]
                if now - worker.started < _STARTUP_SECONDS or len(restarts) > _RESTARTS:
                    _log.error("worker %d exited with %s on start; stopping", pid, returncode)
                    code = 1
                    continue
                _log.warning("worker %d exited with %s; starting a new one", pid, returncode)
                await worker.start()
                watching.add(asyncio.create_task(worker.exited()))
        for worker in group:
            worker.signal(signal.SIGTERM)
        if watching:
            await asyncio.wait(watching, timeout=settings.shutdown_grace + 5)
            for worker in group:
                worker.signal(signal.SIGKILL)
            await asyncio.wait(watching)
        stopping.cancel()
    return code


async def watch_supervisor(supervisor: int) -> None:
    """In a worker: stop (as on SIGTERM, draining) once the supervisor ``supervisor`` is gone.

    A supervisor killed with SIGKILL cannot stop its workers; orphaned, a worker is
    re-parented, and that is what it notices, within a second. The pid comes from the
    supervisor itself, so a worker orphaned before it could look still notices.
    """
    while True:
        if os.getppid() != supervisor:
            break
        await asyncio.sleep(1.0)
    _log.warning("the supervisor (%d) is gone; stopping", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)
