"""The one connection pool, the embedded PostgreSQL, and the project's migrations.

The pool is shared by LangGraph's checkpointer and our own tables, so it is configured
the way ``AsyncPostgresSaver`` requires (autocommit, ``dict_row``) and checks each
connection on checkout, so a restarted server costs a reconnect rather than an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from core.errors import StorageUnavailable

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "MIGRATIONS",
    "STORAGE_ERRORS",
    "Pool",
    "apply_migrations",
    "database_url",
    "open_pool",
    "storage_errors",
]

_log = logging.getLogger(__name__)

Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]

# Ordered: the index + 1 is the version. Never edit a shipped entry; append a new one.
MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE conversations (
        key            text PRIMARY KEY,
        platform       text NOT NULL,
        place          text NOT NULL,
        title          text NOT NULL DEFAULT '',
        created_at     timestamptz NOT NULL DEFAULT now(),
        last_active_at timestamptz NOT NULL DEFAULT now(),
        last_user      text,
        head_turn_id   bigint,
        root_checkpoint_id text
    );
    CREATE INDEX conversations_place_active ON conversations (place, last_active_at DESC);
    CREATE INDEX conversations_active ON conversations (last_active_at);

    CREATE TABLE turns (
        id                bigserial PRIMARY KEY,
        conversation_key  text NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
        parent_id         bigint REFERENCES turns (id) ON DELETE CASCADE,
        seq               integer NOT NULL,
        checkpoint_id     text NOT NULL,
        user_id           text,
        question          text NOT NULL,
        answer            text NOT NULL,
        created_at        timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX turns_conversation ON turns (conversation_key, id);
    CREATE UNIQUE INDEX turns_checkpoint ON turns (conversation_key, checkpoint_id);
    ALTER TABLE conversations ADD FOREIGN KEY (head_turn_id) REFERENCES turns (id)
        ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

    CREATE TABLE rewinds (
        id                bigserial PRIMARY KEY,
        conversation_key  text NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
        from_turn_id      bigint REFERENCES turns (id) ON DELETE CASCADE,
        to_turn_id        bigint REFERENCES turns (id) ON DELETE CASCADE,
        user_id           text,
        created_at        timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE processed_events (
        event_id   text PRIMARY KEY,
        seen_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX processed_events_seen ON processed_events (seen_at);
    """,
    """
    CREATE TABLE inflight_turns (
        conversation_key text PRIMARY KEY,
        question         text NOT NULL,
        user_id          text,
        started_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX turns_user ON turns (conversation_key, user_id);
    """,
    """
    CREATE TABLE approvals (
        id                bigserial PRIMARY KEY,
        conversation_key  text NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
        checkpoint_id     text NOT NULL,
        head_turn_id      bigint REFERENCES turns (id) ON DELETE CASCADE,
        question          text NOT NULL,
        tool              text NOT NULL,
        args              jsonb NOT NULL,
        requested_by      text,
        status            text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
        decided_by        text,
        created_at        timestamptz NOT NULL DEFAULT now(),
        decided_at        timestamptz
    );
    CREATE UNIQUE INDEX approvals_one_pending ON approvals (conversation_key) WHERE status = 'pending';
    """,
    """
    ALTER TABLE processed_events ADD COLUMN result text;
    """,
    """
    CREATE TABLE feedback (
        turn_id     bigint NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        user_id     text NOT NULL,
        value       text NOT NULL CHECK (value IN ('up', 'down')),
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (turn_id, user_id)
    );
    CREATE TABLE generations (
        base_key    text PRIMARY KEY,
        generation  integer NOT NULL CHECK (generation >= 1),
        user_id     text,
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    """,
)

_MIGRATION_LOCK = 0x6261636B  # "back": one advisory lock id for every process that migrates

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS backtrack_migrations (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


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


async def _check_if_idle(conn: psycopg.AsyncConnection[Any]) -> None:
    """Ping a connection on checkout unless it was in use within the last second.

    A connection idle for a while may have been cut (a restarted server, a proxy's idle
    timeout): the ping finds out and the pool hands out another. One that just finished a
    query is alive; pinging it too would add a round trip to every query of a busy bot.
    """
    returned = getattr(conn, "_backtrack_returned", None)
    if returned is None or time.monotonic() - returned > _TRUST_SECONDS:
        await AsyncConnectionPool.check_connection(conn)


async def open_pool(settings: Settings, url: str, *, wait: bool = True) -> Pool:
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "row_factory": dict_row,
        "prepare_threshold": settings.db_prepare_threshold,
    }
    pool: Pool = AsyncConnectionPool(
        url,
        min_size=settings.db_pool_min,
        max_size=max(settings.db_pool_max, settings.db_pool_min),
        kwargs=kwargs,
        check=_check_if_idle,
        reset=_mark_returned,
        max_idle=settings.db_max_idle,
        max_lifetime=settings.db_max_lifetime,
        timeout=settings.db_timeout,
        reconnect_timeout=float("inf"),
        open=False,
        name="backtrack",
    )
    await pool.open(wait=wait, timeout=settings.db_timeout)
    return pool


async def _try_lock(conn: psycopg.AsyncConnection[DictRow]) -> bool:
    row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_MIGRATION_LOCK,))).fetchone()
    return bool(row and row["ok"])


async def apply_migrations(pool: Pool, *extra_setups: Any) -> int:
    """Apply pending migrations; returns how many ran.

    One session-level advisory lock serialises every process that starts at once, and
    also guards ``extra_setups`` (LangGraph's own ``setup()``, which is not safe to run
    concurrently on its own). The waiters poll with ``pg_try_advisory_lock`` rather than
    block in ``pg_advisory_lock``: a blocked statement holds a snapshot, and LangGraph's
    ``CREATE INDEX CONCURRENTLY`` waits for every older snapshot, which would deadlock.
    """
    async with pool.connection() as conn:
        while not await _try_lock(conn):  # noqa: ASYNC110 (polling another process)
            await asyncio.sleep(0.1)
        try:
            await conn.execute(_CREATE_VERSION_TABLE)
            row = await (
                await conn.execute("SELECT coalesce(max(version), 0) AS v FROM backtrack_migrations")
            ).fetchone()
            current = int(row["v"]) if row else 0
            for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO backtrack_migrations (version) VALUES (%s)", (version,)
                    )
                _log.info("applied migration %d", version)
            for setup in extra_setups:
                await setup()
            return len(MIGRATIONS) - current
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


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
