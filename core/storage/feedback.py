"""Ratings of answers: one 👍 or 👎 per person and turn, their latest click counts.

A rating names the turn by the checkpoint its answer ended at, the id an adapter puts in
the buttons under the answer, so a click needs nothing kept in memory and works on any
instance. Recording is an upsert on (turn, user) that reports whether anything changed:
a double click, or a retried delivery, stores and counts one rating.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.errors import InvalidInput
from core.records import Feedback

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.storage.db import Pool

__all__ = ["RATINGS", "VALUES", "FeedbackStore", "ratings"]

VALUES = ("up", "down")

RATINGS = """(SELECT coalesce(jsonb_agg(jsonb_build_object(
        'user', f.user_id, 'value', f.value, 'at', f.created_at) ORDER BY f.created_at), '[]'::jsonb)
    FROM feedback f WHERE f.turn_id = {turn}.id) AS feedback"""
"""A turn's ratings as one JSON array, a column of the history queries (``{turn}``: the
turns alias), so history and the audit view read them without another round trip."""


def ratings(column: list[dict[str, Any]] | None) -> tuple[Feedback, ...]:
    """The ``RATINGS`` column as values."""
    return tuple(Feedback(f["user"], f["value"], datetime.fromisoformat(f["at"])) for f in column or ())

# Inserts the rating, or changes it, in one round trip: whether the turn exists, and
# whether anything changed (a repeated click finds its row as it is and changes nothing).
_RECORD = """
WITH target AS (
    SELECT id FROM turns WHERE conversation_key = %(key)s AND checkpoint_id = %(checkpoint)s
), stored AS (
    INSERT INTO feedback (turn_id, user_id, value)
    SELECT id, %(user)s, %(value)s FROM target
    ON CONFLICT (turn_id, user_id) DO UPDATE SET value = EXCLUDED.value, created_at = now()
       WHERE feedback.value IS DISTINCT FROM EXCLUDED.value
    RETURNING turn_id
)
SELECT EXISTS (SELECT 1 FROM target) AS found, EXISTS (SELECT 1 FROM stored) AS changed
"""


class FeedbackStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def record(self, key: ThreadKey, checkpoint_id: str, user: str, value: str) -> bool | None:
        """True if stored or changed, False if it was already so, None if no such turn."""
        if value not in VALUES:
            raise InvalidInput(f"feedback is one of {', '.join(VALUES)}, not {value!r}")
        params = {"key": str(key), "checkpoint": checkpoint_id, "user": user, "value": value}
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_RECORD, params)).fetchone()
        assert row is not None
        return bool(row["changed"]) if row["found"] else None
