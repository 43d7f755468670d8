"""Installations of a distributed app, and OAuth states: ``installations``, ``oauth_states``.

A Slack app installed through OAuth has one installation per workspace (or one per
organisation, for an org-wide Enterprise Grid install), holding that workspace's bot token.
The rows are platform-neutral: the adapter decides what ``data`` holds (slack-sdk's
``Installation``); this only keeps it, by (platform, enterprise, workspace). A state is
issued for each install link and consumed once, before it expires.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from core.storage.db import Pool

__all__ = ["Installations"]

_SAVE = """
INSERT INTO installations (platform, enterprise, workspace, data) VALUES (%s, %s, %s, %s)
ON CONFLICT (platform, enterprise, workspace) DO UPDATE SET data = EXCLUDED.data, installed_at = now()
"""
_FIND = "SELECT data FROM installations WHERE platform = %s AND enterprise = %s AND workspace = %s"
_DELETE = "DELETE FROM installations WHERE platform = %s AND enterprise = %s AND workspace = %s"
_ISSUE = """
INSERT INTO oauth_states (state, platform, expires_at) VALUES (%s, %s, now() + make_interval(secs => %s))
"""
_CONSUME = """
DELETE FROM oauth_states WHERE state = %s AND platform = %s RETURNING expires_at > now() AS fresh
"""
_EXPIRE = "DELETE FROM oauth_states WHERE expires_at < now()"


class Installations:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def save(
        self, platform: str, enterprise: str | None, workspace: str | None, data: dict[str, Any]
    ) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_SAVE, (platform, enterprise or "", workspace or "", Jsonb(data)))

    async def find(
        self, platform: str, enterprise: str | None, workspace: str | None
    ) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_FIND, (platform, enterprise or "", workspace or ""))).fetchone()
        return row["data"] if row else None

    async def delete(self, platform: str, enterprise: str | None, workspace: str | None) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_DELETE, (platform, enterprise or "", workspace or ""))

    async def issue_state(self, platform: str, seconds: int) -> str:
        state = secrets.token_urlsafe(24)
        async with self.pool.connection() as conn:
            await conn.execute(_EXPIRE)
            await conn.execute(_ISSUE, (state, platform, seconds))
        return state

    async def consume_state(self, platform: str, state: str) -> bool:
        """True once for a state issued here and not expired; never again."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_CONSUME, (state, platform))).fetchone()
        return bool(row and row["fresh"])
