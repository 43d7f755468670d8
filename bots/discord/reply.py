"""The bot's answer to one message: a reply, edited while the model streams, then split."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import discord

from bots.chunking import split_message
from bots.discord.buttons import MESSAGE_LIMIT, approval_view
from core.conversations.wording import progress

if TYPE_CHECKING:
    from core.records import Approval

__all__ = ["CURSOR", "EDIT_INTERVAL", "MESSAGE_LIMIT", "StreamingReply"]

_log = logging.getLogger(__name__)

EDIT_INTERVAL = 1.5
"""Seconds between edits of a streaming reply: well inside Discord's 5 edits per 5 s."""
CURSOR = " \u258c"
"""Ends a reply while it streams, so nobody mistakes a preview for the answer."""


class StreamingReply:
    """The bot's answer to one message: posted on the first partial, then edited at most
    every ``EDIT_INTERVAL`` seconds, so streaming never fights Discord's rate limits."""

    def __init__(self, source: discord.Message) -> None:
        self._source = source
        self._sent: discord.Message | None = None
        self.last: discord.Message | None = None
        """Once finished: the message that carries the buttons (the last piece of a long answer);
        the core links the question to it, so an edit of the question knows which answer it replaces."""
        self._shown = ""
        self._last = 0.0
        self._pending: asyncio.Task[None] | None = None
        self._status = ""

    async def partial(self, text: str) -> None:
        if self._pending is not None and not self._pending.done():
            return
        if time.monotonic() - self._last < EDIT_INTERVAL or not text.strip():
            return
        self._last = time.monotonic()
        preview = split_message(text, MESSAGE_LIMIT - len(CURSOR))[0] + CURSOR
        self._pending = asyncio.create_task(self._show(preview))

    async def status(self, tool: str | None) -> None:
        """``OnStatus``: while a team delegates, the reply says so ("*researching…*").

        Only a team turn's steps show, once each, before its answer streams; a single
        agent's tools stay behind the typing indicator.
        """
        if (text := progress(tool)) is None or (self._shown and self._shown != self._status):
            return
        self._status = f"*{text}*"
        await self._settle()
        await self._show(self._status)
        self._last = time.monotonic()

    async def finish(
        self, text: str, approval: Approval | None = None, *, footer: discord.ui.View | None = None
    ) -> None:
        """Show the answer; an approval's buttons, or the ``footer`` (the 👍/👎 of
        ``bots/discord/feedback.py``), go on its last piece."""
        view = approval_view(approval) if approval is not None else footer
        first, *rest = split_message(text if text.strip() else "(empty answer)", MESSAGE_LIMIT)
        await self._settle()
        await self._show(first, None if rest else view)
        self.last = self._sent
        for i, piece in enumerate(rest, 1):
            self.last = await self._source.channel.send(piece, **_with(view if i == len(rest) else None))

    @property
    def first(self) -> discord.Message | None:
        """The reply itself (the first piece), where a link to this answer leads."""
        return self._sent

    async def fail(self, text: str) -> None:
        """What went wrong, where the answer would have been (the preview, if one shows)."""
        await self.finish(text)

    async def _settle(self) -> None:
        if self._pending is None:
            return
        try:
            await self._pending
        except discord.HTTPException as exc:  # a lost preview is replaced by the final answer
            _log.warning("streaming preview failed: %s", exc)

    async def _show(self, text: str, view: discord.ui.View | None = None) -> None:
        if text == self._shown and view is None:
            return
        if self._sent is None:
            reference = self._source.to_reference(fail_if_not_exists=False)
            self._sent = await self._source.channel.send(text, reference=reference, **_with(view))
        else:
            self._sent = await self._sent.edit(content=text, **_with(view))
        self._shown = text


def _with(view: discord.ui.View | None) -> dict[str, Any]:
    """Only a message that carries buttons names a view: an edit without one keeps its own."""
    return {} if view is None else {"view": view}


if TYPE_CHECKING:  # the contract every adapter's reply keeps (checked by mypy)
    from core.types import Reply

    _REPLY: type[Reply] = StreamingReply
