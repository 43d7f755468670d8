"""Answers in Slack: a placeholder that shows the bot is working, edited as the answer streams.

Slack shows about 4,000 characters of a message comfortably; answers are cut at
``LIMIT`` by ``split_message`` (never inside a code block). The placeholder becomes the
first piece, the rest follow as replies in the same thread. A turn paused for approval
ends with Approve / Reject buttons under its last piece; the buttons carry only the
approval id, everything else is read back from the database when one is clicked.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError

from bots.chunking import split_message

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from core.records import Approval

__all__ = [
    "APPROVE",
    "LIMIT",
    "PLACEHOLDER",
    "PREVIEW_MARK",
    "REJECT",
    "SLACK_ERRORS",
    "StreamingReply",
    "approval_buttons",
    "escape",
    "post_text",
    "section",
]

_log = logging.getLogger(__name__)

LIMIT = 3000
PLACEHOLDER = "_Thinking…_"
PREVIEW_MARK = " …"
"""Ends an edited preview while the answer is still being written."""
_EDIT_INTERVAL = 1.0  # seconds between streaming edits; chat.update is rate limited (Tier 3)
SLACK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)
APPROVE = "backtrack_approve"
REJECT = "backtrack_reject"
_SECTION_LIMIT = 3000  # Block Kit refuses a longer section text; the ``text`` fallback keeps it all


def escape(text: str) -> str:
    """Slack's three control characters, so model output can never ping @channel or a user."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(mrkdwn: str) -> dict[str, Any]:
    """A Block Kit section of already escaped text."""
    if len(mrkdwn) > _SECTION_LIMIT:
        mrkdwn = mrkdwn[: _SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def approval_buttons(approval_id: int) -> dict[str, Any]:
    """The ``actions`` block under a paused tool call."""

    def button(label: str, action_id: str, style: str) -> dict[str, Any]:
        text = {"type": "plain_text", "text": label}
        return {"type": "button", "text": text, "action_id": action_id, "style": style,
                "value": str(approval_id)}

    return {
        "type": "actions",
        "block_id": f"backtrack_approval_{approval_id}",
        "elements": [button("Approve", APPROVE, "primary"), button("Reject", REJECT, "danger")],
    }


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
        self.shown_ts: str | None = None
        """The message the finished answer ends in (its buttons' message), once posted."""
        self._last_edit = 0.0
        self._quiet = False

    async def start(self, placeholder: bool = True) -> None:
        """Post the placeholder; without one (a status shows the work) the first preview is posted."""
        self._last_edit = time.monotonic()
        if not placeholder:
            self._quiet = True
            return
        response = await self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, text=PLACEHOLDER
        )
        self._ts = response["ts"]

    async def status(self, tool: str | None) -> None:
        """The placeholder already says the bot is at work; which tool runs is not shown."""

    def adopt(self, ts: str) -> None:
        """Answer in the message ``ts`` (a stream that ended) instead of a placeholder."""
        self._ts = ts

    async def partial(self, text: str) -> None:
        """Show the answer so far; a failed edit only costs a preview, never the turn."""
        if (self._ts is None and not self._quiet) or time.monotonic() - self._last_edit < _EDIT_INTERVAL:
            return
        self._last_edit = time.monotonic()
        preview = split_message(text, LIMIT - len(PREVIEW_MARK))[0] + PREVIEW_MARK
        try:
            if self._ts is None:
                response = await self._client.chat_postMessage(
                    channel=self._channel, thread_ts=self._thread_ts, text=escape(preview)
                )
                self._ts = response["ts"]
            else:
                await self._client.chat_update(channel=self._channel, ts=self._ts, text=escape(preview))
        except SLACK_ERRORS as exc:
            _log.warning("streaming edit in %s failed: %s", self._channel, type(exc).__name__)

    async def finish(
        self, text: str, approval: Approval | None = None, *, footer: list[dict[str, Any]] | None = None
    ) -> None:
        """The answer in place of the placeholder; an approval's buttons, or the ``footer``
        block (the 👍/👎 of ``bots/slack/feedback.py``), go under its last piece."""
        actions = [approval_buttons(approval.id)] if approval is not None else footer
        pieces = split_message(text, LIMIT)
        for n, piece in enumerate(pieces):
            blocks = None
            if actions is not None and n == len(pieces) - 1:
                blocks = [section(escape(piece)), *actions]
            if n == 0:
                self.shown_ts = await self._replace(piece, blocks)
            else:
                response = await self._client.chat_postMessage(
                    channel=self._channel, thread_ts=self._thread_ts, text=escape(piece), blocks=blocks
                )
                self.shown_ts = str(response["ts"])

    async def _replace(self, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        if self._ts is None:
            response = await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, text=escape(text), blocks=blocks
            )
            return str(response["ts"])
        await self._client.chat_update(channel=self._channel, ts=self._ts, text=escape(text), blocks=blocks)
        return self._ts

    async def fail(self, text: str) -> None:
        """Tell the user what went wrong, in place of the placeholder if there is one."""
        try:
            await self._replace(text)
        except SLACK_ERRORS as exc:
            _log.error("could not report an error in %s: %s", self._channel, type(exc).__name__)


if TYPE_CHECKING:  # the contract every adapter's reply keeps (checked by mypy)
    from core.types import Reply

    _REPLY: type[Reply] = StreamingReply
