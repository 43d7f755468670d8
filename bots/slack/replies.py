"""Answers in Slack: a placeholder that shows the bot is working, edited as the answer streams.

Slack shows about 4,000 characters of a message comfortably; answers are cut at
``LIMIT`` by ``split_message`` (never inside a code block). The placeholder becomes the
first piece, the rest follow as replies in the same thread.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import aiohttp
from slack_sdk.errors import SlackApiError

from core.chunking import split_message

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["LIMIT", "PLACEHOLDER", "StreamingReply", "escape", "post_text"]

_log = logging.getLogger(__name__)

LIMIT = 3000
PLACEHOLDER = "_Thinking…_"
_EDIT_INTERVAL = 1.0  # seconds between streaming edits; chat.update is rate limited (Tier 3)
_SLACK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


def escape(text: str) -> str:
    """Slack's three control characters, so model output can never ping @channel or a user."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def post_text(client: AsyncWebClient, channel: str, thread_ts: str | None, text: str) -> None:
    """Post ``text`` as one or more messages, split under the limit."""
    for piece in split_message(text, LIMIT):
        await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=escape(piece))


class StreamingReply:
    """One answer's messages: the placeholder first, then in-place edits, then the rest."""

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._ts: str | None = None
        self._last_edit = 0.0

    async def start(self) -> None:
        response = await self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, text=PLACEHOLDER
        )
        self._ts = response["ts"]
        self._last_edit = time.monotonic()

    async def partial(self, text: str) -> None:
        """Show the answer so far; a failed edit only costs a preview, never the turn."""
        if self._ts is None or time.monotonic() - self._last_edit < _EDIT_INTERVAL:
            return
        self._last_edit = time.monotonic()
        preview = split_message(text, LIMIT - 2)[0] + " …"
        try:
            await self._client.chat_update(channel=self._channel, ts=self._ts, text=escape(preview))
        except _SLACK_ERRORS as exc:
            _log.warning("streaming edit in %s failed: %s", self._channel, type(exc).__name__)

    async def finish(self, text: str) -> None:
        first, *rest = split_message(text, LIMIT)
        await self._replace(first)
        for piece in rest:
            await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, text=escape(piece)
            )

    async def _replace(self, text: str) -> None:
        if self._ts is None:
            await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, text=escape(text)
            )
        else:
            await self._client.chat_update(channel=self._channel, ts=self._ts, text=escape(text))

    async def fail(self, text: str) -> None:
        """Tell the user what went wrong, in place of the placeholder if there is one."""
        try:
            await self._replace(text)
        except _SLACK_ERRORS as exc:
            _log.error("could not report an error in %s: %s", self._channel, type(exc).__name__)
