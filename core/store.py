"""The project's own tables: conversations, their turns (a tree), rewinds, handled events.

Turns form a tree through ``parent_id``; a conversation's ``head_turn_id`` picks the live
branch. Listing the branch walks parents from the head with a ``LIMIT``, so its cost is
bounded by the limit, not by the conversation's length or its abandoned branches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.db import Pool
from core.keys import ThreadKey
from core.types import ConversationInfo, Turn

__all__ = ["ConversationStore", "Head"]

_HEAD = """
SELECT c.root_checkpoint_id, t.id AS turn_id, t.seq, t.checkpoint_id
FROM conversations c LEFT JOIN turns t ON t.id = c.head_turn_id
WHERE c.key = %s
"""

_BRANCH = """
WITH RECURSIVE branch AS (
    SELECT t.* FROM turns t
    JOIN conversations c ON t.id = c.head_turn_id WHERE c.key = %(key)s
  UNION ALL
    SELECT p.* FROM turns p JOIN branch b ON p.id = b.parent_id
)
SELECT * FROM branch LIMIT %(limit)s
"""

_UPSERT_CONVERSATION = """
INSERT INTO conversations (key, platform, place, title, last_user, root_checkpoint_id)
VALUES (%(key)s, %(platform)s, %(place)s, %(title)s, %(user)s, %(root)s)
ON CONFLICT (key) DO UPDATE
   SET last_active_at = now(), last_user = EXCLUDED.last_user,
       root_checkpoint_id = coalesce(conversations.root_checkpoint_id, EXCLUDED.root_checkpoint_id)
"""

_INSERT_TURN = """
INSERT INTO turns (conversation_key, parent_id, seq, checkpoint_id, user_id, question, answer)
VALUES (%(key)s, %(parent)s, %(seq)s, %(checkpoint)s, %(user)s, %(question)s, %(answer)s)
RETURNING *
"""

# Compare-and-set: only moves the head if nobody else moved it meanwhile.
_MOVE_HEAD = """
UPDATE conversations SET head_turn_id = %(new)s, last_active_at = now()
WHERE key = %(key)s AND head_turn_id IS NOT DISTINCT FROM %(old)s
"""

_TURN_BY_CHECKPOINT = "SELECT * FROM turns WHERE conversation_key = %s AND checkpoint_id = %s"

_INSERT_REWIND = """
INSERT INTO rewinds (conversation_key, from_turn_id, to_turn_id, user_id)
VALUES (%s, %s, %s, %s)
"""

_LIST = """
SELECT c.*, coalesce(t.seq, 0) AS turns FROM conversations c
LEFT JOIN turns t ON t.id = c.head_turn_id
WHERE (%(platform)s::text IS NULL OR c.platform = %(platform)s)
  AND (%(place)s::text IS NULL OR c.place = %(place)s)
  AND (%(user)s::text IS NULL OR EXISTS (
        SELECT 1 FROM turns u WHERE u.conversation_key = c.key AND u.user_id = %(user)s))
ORDER BY c.last_active_at DESC
LIMIT %(limit)s
"""

_DELETE = "DELETE FROM conversations WHERE key = %s"

_CLAIM_EVENT = """
INSERT INTO processed_events (event_id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING event_id
"""


@dataclass(frozen=True, slots=True)
class Head:
    turn_id: int | None
    seq: int
    checkpoint_id: str | None
    """The checkpoint the next turn starts from: the head turn's end, or the root."""


def _turn(row: dict[str, Any]) -> Turn:
    return Turn(
        index=row["seq"],
        user=row["user_id"],
        question=row["question"],
        answer=row["answer"],
        at=row["created_at"],
        checkpoint_id=row["checkpoint_id"],
        turn_id=row["id"],
    )


class ConversationStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def head(self, key: ThreadKey) -> Head | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_HEAD, (str(key),))).fetchone()
        if row is None:
            return None
        if row["turn_id"] is None:
            return Head(None, 0, row["root_checkpoint_id"])
        return Head(row["turn_id"], row["seq"], row["checkpoint_id"])

    async def branch(self, key: ThreadKey, limit: int) -> list[Turn]:
        """The last ``limit`` turns of the live branch, newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(_BRANCH, {"key": str(key), "limit": limit})
            return [_turn(row) for row in await cur.fetchall()]

    async def record_turn(
        self,
        key: ThreadKey,
        head: Head | None,
        *,
        title: str,
        user: str | None,
        root_checkpoint_id: str | None,
        checkpoint_id: str,
        question: str,
        answer: str,
    ) -> Turn | None:
        """Append a turn after ``head`` and make it the head; ``None`` if the head moved."""
        old = head.turn_id if head else None
        turn = {
            "key": str(key),
            "parent": old,
            "seq": (head.seq if head else 0) + 1,
            "checkpoint": checkpoint_id,
            "user": user,
            "question": question,
            "answer": answer,
        }
        conversation = {
            "key": str(key),
            "platform": key.platform,
            "place": key.place,
            "title": title,
            "user": user,
            "root": root_checkpoint_id,
        }
        try:
            async with self.pool.connection() as conn, conn.transaction():
                await conn.execute(_UPSERT_CONVERSATION, conversation)
                row = await (await conn.execute(_INSERT_TURN, turn)).fetchone()
                assert row is not None
                moved = await conn.execute(
                    _MOVE_HEAD, {"key": str(key), "new": row["id"], "old": old}
                )
                if moved.rowcount != 1:
                    raise _HeadMoved
                return _turn(row)
        except _HeadMoved:
            return None

    async def move_head(
        self, key: ThreadKey, old: int | None, new: int | None, user: str | None
    ) -> bool:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_MOVE_HEAD, {"key": str(key), "new": new, "old": old})
            if cur.rowcount != 1:
                return False
            await conn.execute(_INSERT_REWIND, (str(key), old, new, user))
            return True

    async def turn_at(self, key: ThreadKey, checkpoint_id: str) -> Turn | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_TURN_BY_CHECKPOINT, (str(key), checkpoint_id))).fetchone()
        return _turn(row) if row else None

    async def conversations(
        self,
        *,
        platform: str | None = None,
        place: str | None = None,
        user: str | None = None,
        limit: int = 20,
    ) -> list[ConversationInfo]:
        params = {"platform": platform, "place": place, "user": user, "limit": limit}
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_LIST, params)).fetchall()
        return [
            ConversationInfo(
                key=ThreadKey.decode(row["key"]),
                title=row["title"],
                turns=row["turns"],
                last_user=row["last_user"],
                created_at=row["created_at"],
                last_active_at=row["last_active_at"],
            )
            for row in rows
        ]

    async def delete(self, key: ThreadKey) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(_DELETE, (str(key),))
            return cur.rowcount > 0

    async def claim_event(self, event_id: str) -> bool:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_CLAIM_EVENT, (event_id,))).fetchone()
        return row is not None

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")


class _HeadMoved(Exception):
    """Raised inside the transaction so it rolls back; never escapes the store."""

