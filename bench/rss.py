"""Idle memory: a fresh process opens the service on a database and reports its RSS.

Run as ``python -m bench.rss DATABASE_URL``; prints ``{"rss_kb": N}``. The parent fills
the database between runs, so the only difference between two readings is how many
conversations are stored. ``populate`` clones a few real conversations in SQL, because
asking 10,000 of them through the model would measure the model loop, not idle memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from bench.scripted_model import ScriptedChatModel
from core.runtime import open_service
from core.settings import load_settings

__all__ = ["clone_conversations", "read_rss_kb"]

_CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
_CONVERSATIONS = """
INSERT INTO conversations (key, platform, place, title, created_at, last_active_at,
                           last_user, root_checkpoint_id)
SELECT c.key || '.c' || g, c.platform, c.place, c.title, c.created_at, c.last_active_at,
       c.last_user, c.root_checkpoint_id
FROM conversations c CROSS JOIN generate_series(1, %(copies)s) g
WHERE c.key LIKE %(pattern)s
"""
_TURNS = """
INSERT INTO turns (conversation_key, seq, checkpoint_id, user_id, question, answer, created_at)
SELECT t.conversation_key || '.c' || g, t.seq, t.checkpoint_id, t.user_id, t.question,
       t.answer, t.created_at
FROM turns t CROSS JOIN generate_series(1, %(copies)s) g
WHERE t.conversation_key LIKE %(pattern)s
"""
_LINK_TURNS = """
UPDATE turns child SET parent_id = p.id FROM turns p
WHERE child.conversation_key LIKE %(clones)s AND p.conversation_key = child.conversation_key
  AND p.seq = child.seq - 1
"""
_LINK_HEADS = """
UPDATE conversations c SET head_turn_id = t.id FROM turns t
WHERE c.key LIKE %(clones)s AND t.conversation_key = c.key
  AND t.seq = (SELECT max(seq) FROM turns m WHERE m.conversation_key = c.key)
"""


def read_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


async def clone_conversations(url: str, prefix: str, copies: int) -> None:
    """Store ``copies`` copies of every conversation named ``api:{prefix}*``, checkpoints too."""
    params = {"copies": copies, "pattern": f"api:{prefix}%", "clones": f"api:{prefix}%.c%"}
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        await conn.execute(_CONVERSATIONS, params)
        await conn.execute(_TURNS, params)
        await conn.execute(_LINK_TURNS, params)
        await conn.execute(_LINK_HEADS, params)
        for table in _CHECKPOINT_TABLES:
            cur = await conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s AND column_name <> 'thread_id' ORDER BY ordinal_position",
                (table,),
            )
            columns = [sql.Identifier(r[0]) for r in await cur.fetchall()]
            query = sql.SQL(
                "INSERT INTO {table} (thread_id, {cols}) SELECT thread_id || '.c' || g, {cols} "
                "FROM {table} CROSS JOIN generate_series(1, %(copies)s) g "
                "WHERE thread_id LIKE %(pattern)s"
            ).format(table=sql.Identifier(table), cols=sql.SQL(", ").join(columns))
            await conn.execute(query, params)


async def _idle(url: str) -> int:
    settings = load_settings(
        _env_file=None, DATABASE_URL=url, OPENAI_API_KEY="unused", TAVILY_API_KEY=None
    )
    async with open_service(settings, model=ScriptedChatModel()) as service:
        listed = await service.threads(limit=20)
        if listed:  # touch one conversation, as a process that has served a request would
            await service.history(listed[0].key, 10)
        return read_rss_kb()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps({"rss_kb": asyncio.run(_idle(sys.argv[1]))}))


if __name__ == "__main__":
    main()
