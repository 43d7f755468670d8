"""Scoped API tokens: the ``api_tokens`` table, each token kept only as its SHA-256.

A token is 32 random bytes, so a plain hash is enough to keep it from being read back (a
slow password hash protects guessable secrets; these are not guessable). The token itself
is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.storage.db import Pool

__all__ = ["TOKEN_PREFIX", "StoredToken", "TokenStore"]

TOKEN_PREFIX = "bt_"
"""Every scoped token starts so: a leaked one is easy to find in a log or a repository."""

_CREATE = "INSERT INTO api_tokens (name, token_hash, scopes) VALUES (%s, %s, %s) RETURNING *"
_FIND = "SELECT scopes FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL"
_LIST = "SELECT * FROM api_tokens ORDER BY id"
_REVOKE = "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL"


@dataclass(frozen=True, slots=True)
class StoredToken:
    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _stored(row: dict[str, Any]) -> StoredToken:
    return StoredToken(row["id"], row["name"], tuple(row["scopes"]), row["created_at"], row["revoked_at"])


class TokenStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def create(self, name: str, scopes: tuple[str, ...]) -> tuple[StoredToken, str]:
        """A new token for ``scopes``: its row, and the token itself (never stored)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_CREATE, (name, _hash(token), list(scopes)))).fetchone()
        assert row is not None
        return _stored(row), token

    async def scopes(self, token: str) -> tuple[str, ...] | None:
        """What a presented token may reach; None for an unknown or revoked one."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_FIND, (_hash(token),))).fetchone()
        return tuple(row["scopes"]) if row else None

    async def all(self) -> list[StoredToken]:
        async with self.pool.connection() as conn:
            return [_stored(row) for row in await (await conn.execute(_LIST)).fetchall()]

    async def revoke(self, token_id: int) -> bool:
        async with self.pool.connection() as conn:
            return (await conn.execute(_REVOKE, (token_id,))).rowcount == 1
