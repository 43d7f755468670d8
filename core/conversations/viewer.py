"""What the web viewer reads: a page of conversations, a conversation's tree, a turn's steps.

Every view is bounded by a page size, so a long conversation or a big installation costs
the viewer one page, not everything stored; the conversation list is cut to what the
caller's grant reaches (``core/conversations/access.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import InvalidInput
from core.storage.db import storage_errors
from core.storage.viewer import MAX_PAGE, MAX_TREE
from core.types import Grant

if TYPE_CHECKING:
    from core.conversations.branches import Branches
    from core.conversations.steps import TurnReader
    from core.keys import ThreadKey
    from core.records import ConversationPage, ConversationTree, ToolCallRecord, TurnSteps
    from core.storage.tool_calls import ToolCalls
    from core.storage.viewer import Inspector

__all__ = ["EVERYTHING", "Viewer"]

EVERYTHING = Grant()


class Viewer:
    def __init__(self, inspector: Inspector, branches: Branches, steps: TurnReader, calls: ToolCalls) -> None:
        self._inspector = inspector
        self._branches = branches
        self._steps = steps
        self._calls = calls

    async def conversations(
        self, *, search: str | None = None, platform: str | None = None, offset: int = 0, limit: int = 50,
        grant: Grant = EVERYTHING,
    ) -> ConversationPage:
        """A page of the conversations ``grant`` reaches, most recently active first."""
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"a page holds 1 to {MAX_PAGE} conversations, from an offset of 0 or more")
        async with storage_errors():
            return await self._inspector.conversations(search, platform, offset, limit, grant.scopes)

    async def tree(
        self, key: ThreadKey, *, before: int | None = None, limit: int = MAX_TREE
    ) -> ConversationTree:
        """The newest turns of every branch (older than turn id ``before``), rewinds, the pending request."""
        if not 1 <= limit <= MAX_TREE:
            raise InvalidInput(f"the tree loads 1 to {MAX_TREE} turns at a time")
        async with storage_errors():
            return await self._branches.tree(key, self._inspector, before, limit)

    async def steps(self, key: ThreadKey, checkpoint_id: str) -> TurnSteps:
        """The steps of the turn (or the paused request) that ended at ``checkpoint_id``."""
        async with storage_errors():
            start = await self._branches.turn_start(key, checkpoint_id)
            return await self._steps.steps(str(key), start, checkpoint_id)

    async def tool_calls(self, key: ThreadKey, limit: int = 50) -> list[ToolCallRecord]:
        """The newest MCP tool calls of a conversation: server, policy, who approved, reused or not."""
        if not 1 <= limit <= MAX_TREE:
            raise InvalidInput(f"the viewer loads 1 to {MAX_TREE} tool calls at a time")
        async with storage_errors():
            return await self._calls.of_conversation(str(key), limit)
