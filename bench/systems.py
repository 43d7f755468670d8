"""The systems under test, behind one small interface the scenarios drive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from core.keys import ThreadKey

if TYPE_CHECKING:
    from core.conversations.service import ConversationService

__all__ = ["BacktrackChat", "Chat"]


class Chat(Protocol):
    name: str

    async def ask(self, conversation: str, text: str) -> str: ...

    async def history(self, conversation: str, limit: int = 10) -> list[str]: ...

    async def rewind(self, conversation: str) -> None: ...


class BacktrackChat:
    """The project's real stack, through the conversation service."""

    name = "backtrack"

    def __init__(self, service: ConversationService) -> None:
        self.service = service

    async def ask(self, conversation: str, text: str) -> str:
        return (await self.service.ask(ThreadKey.api(conversation), text)).text

    async def history(self, conversation: str, limit: int = 10) -> list[str]:
        return [t.question for t in await self.service.history(ThreadKey.api(conversation), limit)]

    async def rewind(self, conversation: str) -> None:
        await self.service.rewind(ThreadKey.api(conversation), 1)
