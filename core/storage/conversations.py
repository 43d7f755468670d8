"""The project's own tables: conversations, their turns (a tree), rewinds.

Turns form a tree through ``parent_id``; a conversation's ``head_turn_id`` picks the live
branch. Listing the branch walks parents from the head with a ``LIMIT``, so its cost is
bounded by the limit, not by the conversation's length or its abandoned branches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from core.errors import ConversationNotFound
from core.keys import ThreadKey
from core.storage.db import Pool
from core.storage.feedback import RATINGS, ratings
from core.types import BranchTurn, ConversationInfo, Head, Rewind, Turn

__all__ = ["ConversationStore", "StartedTurn", "head_from_row", "turn_from_row"]

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
SELECT b.*, """ + RATINGS.format(turn="b") + """ FROM branch b LIMIT %(limit)s
"""

_UPSERT_CONVERSATION = """
INSERT INTO conversations (key, platform, place, title, last_user, root_checkpoint_id)
VALUES (%(key)s, %(platform)s, %(place)s, %(title)s, %(user)s, %(root)s)
ON CONFLICT (key) DO UPDATE
   SET last_active_at = now(), last_user = EXCLUDED.last_user,
       title = CASE WHEN conversations.title = '' THEN EXCLUDED.title ELSE conversations.title END,
       root_checkpoint_id = coalesce(conversations.root_checkpoint_id, EXCLUDED.root_checkpoint_id)
"""

# One statement appends the turn and moves the head, only if the head is still ``old``
# (compare-and-set), and clears the in-flight mark: a turn costs one round trip to record.
_RECORD_TURN = """
WITH expected AS (
    SELECT key FROM conversations
    WHERE key = %(key)s AND head_turn_id IS NOT DISTINCT FROM %(old)s
    FOR UPDATE
), new AS (
    INSERT INTO turns (conversation_key, parent_id, seq, checkpoint_id, user_id, question, answer)
    SELECT key, %(parent)s, %(seq)s, %(checkpoint)s, %(user)s, %(question)s, %(answer)s FROM expected
    RETURNING *
), moved AS (
    UPDATE conversations c SET head_turn_id = new.id, last_active_at = now(), last_user = %(user)s
    FROM new WHERE c.key = new.conversation_key
), done AS (
    DELETE FROM inflight_turns WHERE conversation_key = %(key)s
)
SELECT * FROM new
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

_DELETE = """
WITH gone AS (DELETE FROM inflight_turns WHERE conversation_key = %(key)s)
DELETE FROM conversations WHERE key = %(key)s
"""

# Marks the turn in flight and reads what it starts from, in one round trip. The previous
# in-flight row can only be left over from a process that died mid-turn (the caller holds
# the conversation's lock).
_START_TURN = """
WITH old AS (SELECT question FROM inflight_turns WHERE conversation_key = %(key)s),
mark AS (
    INSERT INTO inflight_turns (conversation_key, question, user_id)
    VALUES (%(key)s, %(question)s, %(user)s)
    ON CONFLICT (conversation_key) DO UPDATE
       SET question = EXCLUDED.question, user_id = EXCLUDED.user_id, started_at = now()
)
SELECT (SELECT question FROM old) AS abandoned, c.key IS NOT NULL AS exists,
       c.root_checkpoint_id, c.team, t.id AS turn_id, t.seq, t.checkpoint_id,
       EXISTS (SELECT 1 FROM approvals a
               WHERE a.conversation_key = %(key)s AND a.status = 'pending') AS pending,
       (SELECT coalesce(json_agg(p), '[]'::json) FROM place_settings p
        WHERE p.place = ANY(%(scopes)s)) AS places
FROM (VALUES (1)) AS one (x)
LEFT JOIN conversations c ON c.key = %(key)s
LEFT JOIN turns t ON t.id = c.head_turn_id
"""

_END_TURN = "DELETE FROM inflight_turns WHERE conversation_key = %s"

_ALL_TURNS = """
SELECT t.*, p.checkpoint_id AS parent_checkpoint_id, """ + RATINGS.format(turn="t") + """
FROM turns t
LEFT JOIN turns p ON p.id = t.parent_id
WHERE t.conversation_key = %s ORDER BY t.id LIMIT %s
"""

_REWINDS = """
SELECT r.user_id, r.created_at, f.checkpoint_id AS from_checkpoint_id, t.checkpoint_id AS to_checkpoint_id
FROM rewinds r
LEFT JOIN turns f ON f.id = r.from_turn_id
LEFT JOIN turns t ON t.id = r.to_turn_id
WHERE r.conversation_key = %s ORDER BY r.id LIMIT %s
"""

_TURN_PARENT = "SELECT p.* FROM turns t JOIN turns p ON p.id = t.parent_id WHERE t.id = %s"



@dataclass(frozen=True, slots=True)
class StartedTurn:
    head: Head | None
    abandoned: str | None
    """The question of a turn a dead process left unanswered."""
    approval_pending: bool
    team: bool | None = None
    """The conversation's ``/team`` choice; None: never chosen, the default applies."""
    places: tuple[dict[str, Any], ...] = ()
    """The stored settings of the key's places (core/storage/places.py), read in the same statement."""


def head_from_row(row: dict[str, Any]) -> Head:
    root = row["root_checkpoint_id"]
    if row["turn_id"] is None:
        return Head(None, 0, root, root)
    return Head(row["turn_id"], row["seq"], row["checkpoint_id"], root)


def _turn(row: dict[str, Any]) -> Turn:
    return Turn(
        index=row["seq"],
        user=row["user_id"],
        question=row["question"],
        answer=row["answer"],
        at=row["created_at"],
        checkpoint_id=row["checkpoint_id"],
        turn_id=row["id"],
        feedback=ratings(row.get("feedback")),
    )


turn_from_row = _turn
"""A ``turns`` row (with the ``RATINGS`` column) as a ``Turn``, for other readers of the table."""


def _conversation(key: ThreadKey, title: str, user: str | None, root: str | None) -> dict[str, Any]:
    return {
        "key": str(key),
        "platform": key.platform,
        "place": key.place,
        "title": title,
        "user": user,
        "root": root,
    }


class ConversationStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def head(self, key: ThreadKey) -> Head | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_HEAD, (str(key),))).fetchone()
        return head_from_row(row) if row else None

    async def existing_head(self, key: ThreadKey) -> Head:
        """The head of a conversation that must exist; a clear refusal otherwise."""
        head = await self.head(key)
        if head is None:
            raise ConversationNotFound(f"there is no conversation {key} yet")
        return head

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
        replacing: int | Literal["head"] | None = "head",
        user: str | None,
        checkpoint_id: str,
        question: str,
        answer: str,
    ) -> Turn | None:
        """Append a turn after ``head`` and make it the head; ``None`` if the head moved.

        ``replacing`` is the head expected now, when the turn forks from an earlier one.
        """
        parent = head.turn_id if head else None
        old = parent if replacing == "head" else replacing
        turn = {
            "key": str(key),
            "parent": parent,
            "seq": (head.seq if head else 0) + 1,
            "checkpoint": checkpoint_id,
            "user": user,
            "question": question,
            "answer": answer,
        }
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_RECORD_TURN, {**turn, "old": old})).fetchone()
        return _turn(row) if row else None

    async def begin_conversation(
        self, key: ThreadKey, title: str, user: str | None, root_checkpoint_id: str
    ) -> Head:
        """Record a new conversation whose turns will fork from ``root_checkpoint_id``."""
        async with self.pool.connection() as conn:
            await conn.execute(_UPSERT_CONVERSATION, _conversation(key, title, user, root_checkpoint_id))
        head = await self.head(key)
        assert head is not None
        return head

    async def move_head(
        self, key: ThreadKey, old: int | None, new: int | None, user: str | None
    ) -> bool:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_MOVE_HEAD, {"key": str(key), "new": new, "old": old})
            if cur.rowcount != 1:
                return False
            await conn.execute(_INSERT_REWIND, (str(key), old, new, user))
            return True

    async def add_rewind(self, key: ThreadKey, old: int | None, new: int | None, user: str | None) -> None:
        """Audit a move of the head that a new turn made (a replay forks like a rewind)."""
        async with self.pool.connection() as conn:
            await conn.execute(_INSERT_REWIND, (str(key), old, new, user))

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
            cur = await conn.execute(_DELETE, {"key": str(key)})
            return cur.rowcount > 0

    async def start_turn(self, key: ThreadKey, question: str, user: str | None) -> StartedTurn:
        """Mark a turn in flight; returns its head and what a dead process left behind."""
        params = {"key": str(key), "question": question, "user": user, "scopes": list(key.scopes)}
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_START_TURN, params)).fetchone()
        assert row is not None
        return StartedTurn(
            head=head_from_row(row) if row["exists"] else None,
            abandoned=row["abandoned"],
            approval_pending=row["pending"],
            team=row["team"],
            places=tuple(row["places"]),
        )

    async def end_turn(self, key: ThreadKey) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_END_TURN, (str(key),))

    # -- the audit view ------------------------------------------------------------------

    async def all_turns(self, key: ThreadKey, limit: int) -> list[BranchTurn]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_ALL_TURNS, (str(key), limit))).fetchall()
        return [BranchTurn(turn=_turn(r), parent_checkpoint_id=r["parent_checkpoint_id"]) for r in rows]

    async def rewinds(self, key: ThreadKey, limit: int) -> list[Rewind]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_REWINDS, (str(key), limit))).fetchall()
        return [
            Rewind(
                user=r["user_id"], at=r["created_at"],
                from_checkpoint_id=r["from_checkpoint_id"], to_checkpoint_id=r["to_checkpoint_id"],
            )
            for r in rows
        ]

    async def parent_of(self, turn: Turn) -> Turn | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_TURN_PARENT, (turn.turn_id,))).fetchone()
        return _turn(row) if row else None

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")



