"""Tool calls waiting for a person: the ``approvals`` table.

A request records where its turn paused (the checkpoint) and the head the turn started
from, so deciding it hours later, after a restart or on another instance, resumes exactly
there. Deciding is a compare-and-set: of two clicks, exactly one wins.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from core.keys import ThreadKey
from core.records import Approval
from core.storage.conversations import Head
from core.storage.db import Pool

__all__ = ["ApprovalStore"]

_ADD_APPROVAL = """
INSERT INTO approvals
    (conversation_key, checkpoint_id, head_turn_id, question, tool, args, requested_by, agent)
VALUES (%(key)s, %(checkpoint)s, %(head)s, %(question)s, %(tool)s, %(args)s, %(user)s, %(agent)s)
RETURNING *
"""

_APPROVAL = "SELECT * FROM approvals WHERE id = %s"
_PENDING_APPROVAL = "SELECT * FROM approvals WHERE conversation_key = %s AND status = 'pending'"

# Compare-and-set: of two clicks (or two instances), exactly one decides.
_DECIDE = """
UPDATE approvals SET status = %(status)s, decided_by = %(user)s, decided_at = now()
WHERE id = %(id)s AND status = 'pending'
RETURNING *
"""

_CANCEL_PENDING = """
UPDATE approvals SET status = 'cancelled', decided_by = %(user)s, decided_at = now()
WHERE conversation_key = %(key)s AND status = 'pending'
"""


def _approval(row: dict[str, Any]) -> Approval:
    return Approval(
        id=row["id"],
        key=ThreadKey.decode(row["conversation_key"]),
        tool=row["tool"],
        args=row["args"],
        question=row["question"],
        requested_by=row["requested_by"],
        status=row["status"],
        decided_by=row["decided_by"],
        checkpoint_id=row["checkpoint_id"],
        created_at=row["created_at"],
        agent=row["agent"],
    )


class ApprovalStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def add(
        self, key: ThreadKey, head: Head, checkpoint_id: str, question: str,
        tool: str, args: dict[str, Any], user: str | None, agent: str,
    ) -> Approval:
        params = {
            "key": str(key), "checkpoint": checkpoint_id, "head": head.turn_id,
            "question": question, "tool": tool, "args": Jsonb(args), "user": user, "agent": agent,
        }
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_ADD_APPROVAL, params)).fetchone()
        assert row is not None
        return _approval(row)

    async def get(self, approval_id: int) -> Approval | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_APPROVAL, (approval_id,))).fetchone()
        return _approval(row) if row else None

    async def pending(self, key: ThreadKey) -> Approval | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_PENDING_APPROVAL, (str(key),))).fetchone()
        return _approval(row) if row else None

    async def decide(self, approval_id: int, approved: bool, user: str | None) -> Approval | None:
        """Record the decision; None if it was no longer pending."""
        params = {"id": approval_id, "status": "approved" if approved else "rejected", "user": user}
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_DECIDE, params)).fetchone()
        return _approval(row) if row else None

    async def count(self) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM approvals WHERE status = 'pending'")
            row = await cur.fetchone()
        return int(row["n"]) if row else 0

    async def cancel(self, key: ThreadKey, user: str | None) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_CANCEL_PENDING, {"key": str(key), "user": user})

    async def head_of(self, approval_id: int) -> Head:
        """The head the paused turn started from: its answer is appended there."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT t.id, t.seq, t.checkpoint_id FROM approvals a "
                    "LEFT JOIN turns t ON t.id = a.head_turn_id WHERE a.id = %s",
                    (approval_id,),
                )
            ).fetchone()
        assert row is not None
        return Head(row["id"], row["seq"] or 0, row["checkpoint_id"])
