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
from core.storage.usage import BUMP

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
# (compare-and-set), clears the in-flight mark and counts the tokens in the ledger (even if
# the head moved: they were spent): a turn costs one round trip to record.
_RECORD_TURN = f"""
WITH bump AS ({BUMP}), expected AS (
    SELECT key FROM conversations
    WHERE key = %(key)s AND head_turn_id IS NOT DISTINCT FROM %(old)s
    FOR UPDATE
), new AS (
    INSERT INTO turns (conversation_key, parent_id, seq, checkpoint_id, user_id, question, answer,
                       input_tokens, output_tokens, run_id)
    SELECT key, %(parent)s, %(seq)s, %(checkpoint)s, %(user)s, %(question)s, %(answer)s,
           %(u_input)s, %(u_output)s, %(run)s FROM expected
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

# Takes the conversation's lock and, if it got it, marks the turn in flight and reads what it
# starts from (with the thread's newest checkpoint id, which LangGraph asks for next:
# core/storage/checkpointer.py), in one round trip on the lock connection. The previous
# in-flight row can only be left over from a process that died mid-turn. The function is
# migration 11 (core/storage/migrations.py).
START_TURN = "SELECT * FROM backtrack_start_turn(%s, %s, %s, %s)"

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
    latest: str | None = None
    """The thread's newest root checkpoint id, read under the conversation's lock."""


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
        tokens: dict[str, Any],
        run_id: str | None = None,
    ) -> Turn | None:
        """Append a turn after ``head`` and make it the head; ``None`` if the head moved.

        ``replacing`` is the head expected now, when the turn forks from an earlier one;
        ``tokens`` are the run's for the ledger (``UsageLedger.counted``).
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
            "run": run_id,
        }
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_RECORD_TURN, {**turn, **tokens, "old": old})).fetchone()
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

    @staticmethod
    def start_turn(key: ThreadKey, question: str, user: str | None) -> tuple[str, tuple[Any, ...]]:
        """The statement that locks the conversation and marks a turn in flight (for ``hold``)."""
        return START_TURN, (str(key), question, user, list(key.scopes))

    @staticmethod
    def started(row: dict[str, Any]) -> StartedTurn:
        """What ``start_turn``'s row says: the head, what a dead process left behind."""
        return StartedTurn(
            head=head_from_row(row) if row["exists"] else None,
            abandoned=row["abandoned"],
            approval_pending=row["pending"],
            team=row["team"],
            places=tuple(row["places"]),
            latest=row["latest"],
        )

    async def end_turn(self, key: ThreadKey) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_END_TURN, (str(key),))

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")



