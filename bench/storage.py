"""Databases for the benchmark, and what they hold, measured by PostgreSQL itself.

Each system gets its own fresh database on the same server, so ``total`` is exactly
what one conversation left behind: every table, its indexes and TOAST, on disk. ``rows``
is the stored size of every row (values as stored, so compressed where PostgreSQL
compressed them), which grows smoothly turn by turn, unlike the page-sized on-disk total.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["Sizes", "create_database", "drop_database", "measure"]

_TABLES = "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public'"
_TOTAL = "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS n FROM pg_stat_user_tables"
_BLOBS = """
SELECT (SELECT coalesce(sum(length(blob)), 0) FROM checkpoint_blobs)
     + (SELECT coalesce(sum(length(blob)), 0) FROM checkpoint_writes) AS n
"""


@dataclass(frozen=True, slots=True)
class Sizes:
    total: int
    """On disk: every table with its indexes and TOAST."""
    rows: int
    """Stored row bytes (compressed values as stored), without indexes."""
    blobs: int
    """Serialised checkpoint bytes before compression (blobs and writes)."""


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)  # type: ignore[arg-type]


async def create_database(url: str, prefix: str) -> str:
    """A fresh, empty database on the server ``url`` points at; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_dbname(url, name)


async def drop_database(admin_url: str, url: str) -> None:
    name = str(conninfo_to_dict(url)["dbname"])
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def measure(url: str) -> Sizes:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in await (await conn.execute(_TABLES)).fetchall()]
        rows = 0
        for table in tables:
            query = sql.SQL("SELECT coalesce(sum(pg_column_size(t.*)), 0)::bigint FROM {} t")
            row = await (await conn.execute(query.format(sql.Identifier(table)))).fetchone()
            rows += int(row[0]) if row else 0
        total = await (await conn.execute(_TOTAL)).fetchone()
        blobs = await (await conn.execute(_BLOBS)).fetchone() if "checkpoint_blobs" in tables else None
    return Sizes(
        total=int(total[0]) if total else 0, rows=rows, blobs=int(blobs[0]) if blobs else 0
    )
