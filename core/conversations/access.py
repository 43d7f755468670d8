"""Who may read and act on which conversations through the API and the viewer: scoped tokens.

The operator's ``API_TOKEN`` reaches everything; a scoped token, made with ``backtrack
token create``, reaches the conversations and places inside its scopes (a Slack
workspace or channel, a Discord guild or channel, a platform). Checking a request against
its grant is the HTTP surface's job (``bots/api/access.py``); this module makes, finds and
revokes the tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import InvalidInput
from core.keys import check_scope
from core.storage.db import storage_errors
from core.types import Grant

if TYPE_CHECKING:
    from core.storage.tokens import StoredToken, TokenStore

__all__ = ["Access"]

_NAME_MAX = 100


class Access:
    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens

    async def grant(self, token: str) -> Grant | None:
        """The grant of a scoped token; None for one that is unknown or revoked."""
        async with storage_errors():
            scopes = await self._tokens.scopes(token)
        return Grant(scopes) if scopes is not None else None

    async def create(self, name: str, scopes: list[str]) -> tuple[StoredToken, str]:
        name = " ".join(name.split())
        if not name or len(name) > _NAME_MAX:
            raise InvalidInput(f"a token needs a name of 1 to {_NAME_MAX} characters")
        if not scopes:
            raise InvalidInput("a token needs at least one --scope (e.g. slack:T0123, discord:4567)")
        checked = tuple(dict.fromkeys(check_scope(s) for s in scopes))
        async with storage_errors():
            return await self._tokens.create(name, checked)

    async def all(self) -> list[StoredToken]:
        async with storage_errors():
            return await self._tokens.all()

    async def revoke(self, token_id: int) -> bool:
        async with storage_errors():
            return await self._tokens.revoke(token_id)
