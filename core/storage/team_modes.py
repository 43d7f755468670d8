"""Which agent answers a conversation: its ``/team on|off`` choice, else ``BACKTRACK_AGENT``.

The choice is a column of the conversation's row, so ``/forget`` deletes it with the
conversation; choosing before the first question creates the row (without turns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.storage.db import Pool

__all__ = ["TeamModes"]

_GET = "SELECT team FROM conversations WHERE key = %s"

_SET = """
INSERT INTO conversations (key, platform, place, last_user, team)
VALUES (%(key)s, %(platform)s, %(place)s, %(user)s, %(team)s)
ON CONFLICT (key) DO UPDATE SET team = EXCLUDED.team
"""


class TeamModes:
    def __init__(self, pool: Pool, default: Literal["single", "team"]) -> None:
        self.pool = pool
        self.default = default

    async def agent(self, key: ThreadKey) -> Literal["single", "team"]:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_GET, (str(key),))).fetchone()
        return self.of(row["team"] if row else None)

    def of(self, chosen: bool | None) -> Literal["single", "team"]:
        """The agent for a conversation whose stored choice is ``chosen`` (read with its turn start)."""
        if chosen is None:
            return self.default
        return "team" if chosen else "single"

    async def choose(self, key: ThreadKey, team: bool, user: str | None) -> None:
        params = {"key": str(key), "platform": key.platform, "place": key.place, "user": user, "team": team}
        async with self.pool.connection() as conn:
            await conn.execute(_SET, params)
