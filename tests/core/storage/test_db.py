"""Migrations on a fresh database: applied once, idempotent, safe when processes start together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest
from psycopg import sql

from core.settings import Settings
from core.storage.checkpointer import PooledPostgresSaver
from core.storage.db import open_pool
from core.storage.migrations import MIGRATIONS, apply_migrations


@pytest.fixture
async def fresh_database(pg_url: str) -> AsyncIterator[str]:
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(pg_url, dbname=name)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def test_concurrent_starts_migrate_once(
    fresh_database: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(DATABASE_URL=fresh_database)
    pools = [await open_pool(settings, fresh_database) for _ in range(3)]
    try:
        applied = await asyncio.wait_for(
            asyncio.gather(*(apply_migrations(p, PooledPostgresSaver(p).setup) for p in pools)), 60
        )
        assert sorted(applied) == [0, 0, len(MIGRATIONS)]
        assert await apply_migrations(pools[0]) == 0  # idempotent
        async with pools[0].connection() as conn:
            rows = await (await conn.execute("SELECT version FROM backtrack_migrations ORDER BY 1")).fetchall()
            tables = await (await conn.execute(
                "SELECT count(*) AS n FROM information_schema.tables WHERE table_name IN "
                "('conversations', 'turns', 'checkpoints', 'checkpoint_writes', 'approvals')")).fetchone()
        assert [r["version"] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
        assert tables is not None and tables["n"] == 5
    finally:
        for pool in pools:
            await pool.close()
