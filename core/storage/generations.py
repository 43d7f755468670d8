"""Which conversation is the current one in a place that ``/new`` can move on.

An adapter derives one key per place (a Slack DM's top level, a Discord channel); that
base key is generation 0, the conversation the place always had. ``/new`` bumps the
place's generation in the ``generations`` table, and the place's messages then belong to
``key.nth(generation)``: a new conversation, while the old ones keep their keys, turns
and checkpoints, listed and reachable as before. Only places that have moved on have a
row, so a place that never used ``/new`` costs one primary-key lookup per message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.storage.db import Pool

__all__ = ["Generations"]

_CURRENT = "SELECT generation FROM generations WHERE base_key = %s"

_BUMP = """
INSERT INTO generations (base_key, generation, user_id) VALUES (%(key)s, 1, %(user)s)
ON CONFLICT (base_key) DO UPDATE
   SET generation = generations.generation + 1, user_id = EXCLUDED.user_id, created_at = now()
RETURNING generation
"""


class Generations:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def current(self, base: ThreadKey) -> ThreadKey:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_CURRENT, (str(base),))).fetchone()
        return base.nth(row["generation"] if row else 0)

    async def bump(self, base: ThreadKey, user: str | None) -> ThreadKey:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_BUMP, {"key": str(base), "user": user})).fetchone()
        assert row is not None
        return base.nth(row["generation"])
