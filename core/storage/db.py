"""The one connection pool, the embedded PostgreSQL, and what an outage raises.

The pool is shared by LangGraph's checkpointer and our own tables, so it is configured
the way ``AsyncPostgresSaver`` requires (autocommit, ``dict_row``) and checks each
connection on checkout, so a restarted server costs a reconnect rather than an error.

Coming back after a database outage of any length is this module's job
(docs/reliability.md). psycopg_pool retries a lost connection with a delay that doubles without
bound (1, 2, 4, … 64 s after a minute down), so the longer the outage, the longer the
bot stayed down after it. ``_Pool`` changes three things, through psycopg_pool's own
task objects rather than a pool of our own:

- the delay between reconnection attempts stops growing at ``MAX_RECONNECT_DELAY``;
- a request that finds no connection while attempts are backing off runs one of them
  at once instead of waiting out its schedule;
- the first connection found dead on checkout has the pool check every idle one
  (``check()``), so after a quiet outage a request is not handed the dead ones in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import warnings
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import psycopg
import psycopg_pool
from psycopg.abc import PQGen
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff
from psycopg_pool.pool_async import AddConnection, MaintenanceTask

from core.errors import StorageUnavailable

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "MAX_RECONNECT_DELAY", "STORAGE_ERRORS", "BoundedConnection", "NoAnswer", "Pool", "bounded",
    "connection_class", "connection_kwargs", "database_url", "open_pool", "storage_errors",
]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]

def database_url(settings: Settings) -> str:
    """``DATABASE_URL``, or the URL of an embedded PostgreSQL under the data directory."""
    if settings.database_url:
        return settings.database_url
    data = Path(settings.data_dir).resolve() / "pgdata"
    data.parent.mkdir(parents=True, exist_ok=True)
    _log.info("starting embedded PostgreSQL in %s", data)
    with warnings.catch_warnings():  # "XDG_RUNTIME_DIR is not set" is noise for a server here
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: only the embedded mode needs it

        server = pgserver.get_server(data, cleanup_mode="stop")
    return str(server.get_uri())


_TRUST_SECONDS = 1.0


async def _mark_returned(conn: psycopg.AsyncConnection[Any]) -> None:
    conn._backtrack_returned = time.monotonic()  # type: ignore[attr-defined]


def _trusted(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the connection was in use within the last second (so it is alive)."""
    returned = getattr(conn, "_backtrack_returned", None)
    return returned is not None and time.monotonic() - returned <= _TRUST_SECONDS


async def _check_if_idle(conn: psycopg.AsyncConnection[Any]) -> None:
    """Ping a connection on checkout unless it was in use within the last second.

    A connection idle for a while may have been cut (a restarted server, a proxy's idle
    timeout): the ping finds out and the pool hands out another. One that just finished a
    query is alive; pinging it too would add a round trip to every query of a busy bot.
    """
    if not _trusted(conn):
        await AsyncConnectionPool.check_connection(conn)


class NoAnswer(psycopg.OperationalError):
    """The database did not answer in time; the connection was cut."""


def _cut(conn: psycopg.AsyncConnection[Any]) -> None:
    """End the connection at once, as a dropped network would: the pool then discards it."""
    with contextlib.suppress(OSError, psycopg.OperationalError):  # closed already: nothing to cut
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


class BoundedConnection(psycopg.AsyncConnection[DictRow]):
    """A connection on which no wait for the server lasts longer than ``statement_seconds``.

    A network path that silently drops packets (a failed-over cloud database, a dead NAT, a
    proxy that stopped forwarding) answers nothing and resets nothing, so a statement in
    flight would wait for ever: neither the server's timeouts nor TCP keepalives can end a
    wait whose bytes some middlebox acknowledged. psycopg runs every round trip (a statement,
    a pipeline sync, a fetch) through ``wait``, so bounding it bounds them all; when the bound
    passes the connection is closed and the caller gets ``NoAnswer``, a storage error.
    """

    statement_seconds: ClassVar[float] = 30.0

    async def wait(
        self, gen: PQGen[_T], interval: float = 0.1, timeout: float | None = None  # noqa: ASYNC109 (psycopg's)
    ) -> _T:
        bound = self.statement_seconds if timeout is None else min(timeout, self.statement_seconds)
        try:
            return await super().wait(gen, interval, bound)
        except psycopg.errors._WaitTimeout:  # psycopg's own (internal) timeout error
            if timeout is not None and timeout < self.statement_seconds:
                raise  # a bound psycopg asked for itself (e.g. while cancelling): its business
            self.pgconn.finish()  # mid-protocol: unusable; closed, so the pool discards it
            raise NoAnswer(f"the database did not answer within {bound:g} s") from None


def connection_class(settings: Settings) -> type[BoundedConnection]:
    """The class of every connection the program opens, bounded by BACKTRACK_DB_STATEMENT_TIMEOUT."""
    seconds = settings.db_statement_timeout
    return type("BoundedConnection", (BoundedConnection,), {"statement_seconds": seconds})


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: the caller was told already


async def bounded(conn: psycopg.AsyncConnection[Any], work: Awaitable[_T], seconds: float) -> _T:
    """``work`` on ``conn``, or ``OperationalError`` after ``seconds`` and the connection cut.

    Cancelling a psycopg query sends a cancel request and waits up to ten more seconds for
    it, through the very path that hangs. Shutting the socket down instead ends the query
    at once, as a dropped connection would, and the connection is discarded.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        _cut(conn)
        task.add_done_callback(_consume)
        await asyncio.wait({task}, timeout=1.0)  # it ends now; never cancel it (see above)
        raise NoAnswer(f"the database did not answer within {seconds:g} s") from None
    except asyncio.CancelledError:
        task.cancel()
        raise


MAX_RECONNECT_DELAY = 2.0
"""Seconds between two attempts to reconnect, however long the database has been away."""


class _CappedAttempt(AttemptWithBackoff):
    """psycopg_pool's backoff (1 s, doubling, with jitter), stopped at ``MAX_RECONNECT_DELAY``."""

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, MAX_RECONNECT_DELAY)


class _Retry(MaintenanceTask):
    """A backed-off ``AddConnection``, run once: on its schedule or early, whichever is first."""

    def __init__(self, pool: _Pool, task: AddConnection) -> None:
        super().__init__(pool)
        self.task = task
        self.claimed = False

    async def _run(self, pool: AsyncConnectionPool[Any]) -> None:
        if not self.claimed:
            self.claimed = True
            await self.task._run(pool)


class _Pool(AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]):
    """psycopg_pool's pool with a capped reconnection delay and an early retry on demand."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._retries: set[_Retry] = set()
        self._checking: asyncio.Task[None] | None = None

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _CappedAttempt(timeout=self.reconnect_timeout), growing)

    async def schedule_task(self, task: MaintenanceTask, delay: float) -> None:
        if isinstance(task, AddConnection):  # only a failed reconnection is ever scheduled
            retry = _Retry(self, task)
            self._retries.add(retry)
            task = retry
        await super().schedule_task(task, delay)

    def _maybe_grow_pool(self) -> None:
        """Called (under the pool's lock) when a request finds no connection ready."""
        super()._maybe_grow_pool()
        self._retries = {r for r in self._retries if not r.claimed}
        if self._retries:
            retry = self._retries.pop()
            retry.claimed = True
            self.run_task(retry.task)

    async def _check_connection(self, conn: psycopg.AsyncConnection[DictRow]) -> None:
        if _trusted(conn):
            return  # nothing to ask the server, so nothing to bound (a busy pool's every checkout)
        try:  # a hung server must not hang the check
            await bounded(conn, super()._check_connection(conn), self.timeout)
        except Exception:
            if self._checking is None or self._checking.done():
                self._checking = asyncio.create_task(self.check())
                self._checking.add_done_callback(_consume)
            raise


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """What every connection the program opens uses: the pool's, the lock and migration connections'.

    ``connect_timeout`` bounds a connection attempt to a server that does not answer; TCP
    keepalives and ``tcp_user_timeout`` make a connection to a vanished host fail instead
    of waiting for ever. Connected directly, the server gets the same bound for its side
    (``statement_timeout``) and ends a transaction its client left open
    (``idle_in_transaction_session_timeout``), so a vanished client's row locks go too;
    PgBouncer refuses startup options, so behind it they are the role's to set
    (docs/pgbouncer.md).
    """
    timeout = max(1, round(settings.db_timeout))
    statement_ms = round(settings.db_statement_timeout * 1000)
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "row_factory": dict_row,
        "prepare_threshold": settings.db_prepare_threshold,
        "connect_timeout": timeout,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": statement_ms,
    }
    if settings.db_prepare_threshold is not None:  # not behind a transaction pooler
        kwargs["options"] = (
            f"-c statement_timeout={statement_ms} -c idle_in_transaction_session_timeout={2 * statement_ms}"
        )
    return kwargs


async def open_pool(settings: Settings, url: str, *, wait: bool = True) -> Pool:
    pool: Pool = _Pool(
        url,
        min_size=settings.db_pool_min,
        max_size=max(settings.db_pool_max, settings.db_pool_min),
        kwargs=connection_kwargs(settings),
        connection_class=connection_class(settings),
        check=_check_if_idle,
        reset=_mark_returned,
        max_idle=settings.db_max_idle,
        max_lifetime=settings.db_max_lifetime,
        timeout=settings.db_timeout,
        reconnect_timeout=float("inf"),  # never give up; _CappedAttempt keeps the pace
        open=False,
        name="backtrack",
    )
    await pool.open(wait=wait, timeout=settings.db_timeout)
    return pool


STORAGE_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout)
"""What the pool and the server raise when PostgreSQL is unreachable or went away."""


@asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """Turn the driver's outage errors into the one typed error adapters know how to word."""
    try:
        yield
    except STORAGE_ERRORS as exc:
        _log.warning("storage unavailable: %s", type(exc).__name__)
        raise StorageUnavailable() from exc
