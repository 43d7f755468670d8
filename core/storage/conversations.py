"""The project's own tables, written: conversations, their turns (a tree), rewinds, turns in flight.

A turn starts with one statement (the head, the in-flight mark, the place settings, the
team choice) and is recorded with one (append the turn, move the head if it is still
where the turn started, clear the mark). Reading the tree is ``core/storage/tree.py``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from core.errors import ConversationNotFound
from core.keys import ThreadKey
from core.records import Turn
from core.storage.tree import TurnTree, turn_from_row

__all__ = ["ConversationStore", "Head", "StartedTurn", "head_from_row"]

_HEAD = """
SELECT c.root_checkpoint_id, t.id AS turn_id, t.seq, t.checkpoint_id
FROM conversations c LEFT JOIN turns t ON t.id = c.head_turn_id
WHERE c.key = %s
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

_INSERT_REWIND = """
INSERT INTO rewinds (conversation_key, from_turn_id, to_turn_id, user_id)
VALUES (%s, %s, %s, %s)
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


@dataclass(frozen=True, slots=True)
class Head:
    """Where a conversation's live branch ends."""

    turn_id: int | None
    seq: int
    checkpoint_id: str | None
    """The checkpoint the next turn starts from: the head turn's end, or the root."""
    root_checkpoint_id: str | None = None


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


def _conversation(key: ThreadKey, title: str, user: str | None, root: str | None) -> dict[str, Any]:
    return {
        "key": str(key),
        "platform": key.platform,
        "place": key.place,
        "title": title,
        "user": user,
        "root": root,
    }


class ConversationStore(TurnTree):
    """The writes of the turn tree and the conversation rows; the reads are ``TurnTree``'s."""

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
        return turn_from_row(row) if row else None

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

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")



