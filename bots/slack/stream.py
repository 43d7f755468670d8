"""Answers in Slack streamed natively (``chat.startStream`` / ``appendStream`` / ``stopStream``).

While the agent works, the thread shows Slack's own status line ("is thinking…", "is
searching the web…" while a tool runs), set with ``assistant.threads.setStatus`` and
cleared at the end; no placeholder message is posted. The answer streams into a message
as the model writes it. A message is finished and the answer continues in a new one when
it would pass ``LIMIT`` (cut as ``split_message`` cuts, never inside a code block: a fence
left open is closed and reopened) and before Slack's own end of a stream (about five
minutes, ``ROLLOVER``). Where Slack refuses to stream (an error from ``chat.startStream``:
a workspace or surface without it) the rest of the answer goes to the placeholder reply
of ``bots/slack/replies.py``, which edits with ``chat.update``.

slack-sdk's ``AsyncChatStream`` buffers by size and starts at its first flush; here a stream
starts at once when no status shows the work, appends are spaced in time and a stream rolls
over by age, so the reply drives the SDK's three methods itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from slack_sdk.errors import SlackApiError

from bots.chunking import open_fence, split_first
from bots.slack.replies import LIMIT, SLACK_ERRORS, StreamingReply, escape, section

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from core.records import Approval

__all__ = ["ROLLOVER", "THINKING", "Clock", "NativeReply", "SlackReply", "open_reply", "status_text"]

_log = logging.getLogger(__name__)

Clock = Callable[[], float]
ROLLOVER = 270.0
"""Seconds after which a streamed message is finished: Slack ends streams after about 5 minutes."""
_GRACE = 20.0  # seconds a rollover may wait for a clean place to cut
_APPEND_INTERVAL = 0.5  # seconds between chat.appendStream calls of one stream
THINKING = "is thinking…"
_TOOL_STATUS = {
    "web_search": "is searching the web…", "post_to_webhook": "is posting to the webhook…",
    "research": "is researching…", "analyse": "is analysing…", "calculator": "is calculating…",
}

_REFUSALS = frozenset({"feature_not_enabled", "not_allowed_token_type", "missing_scope"})
"""What Slack answers a workspace that does not allow streaming (not a passing failure)."""


class Streams:
    """How this bot streams: its clock, and which workspaces refused streaming lately.

    A workspace without the agent feature refuses every ``chat.startStream``; remembering it
    (for ``retry_after`` seconds, so turning the feature on is noticed) saves each later
    answer the refused call before it falls back to edits.
    """

    def __init__(self, clock: Clock = time.monotonic, retry_after: float = 3600.0) -> None:
        self.clock = clock
        self._retry_after = retry_after
        self._refused: dict[str, float] = {}

    def refused(self, team: str) -> bool:
        when = self._refused.get(team)
        return when is not None and self.clock() - when < self._retry_after

    def note(self, team: str, error: object) -> None:
        if error in _REFUSALS:
            self._refused[team] = self.clock()


class SlackReply(Protocol):
    """``core.types.Reply``, plus the start, the tool status and ``shown_ts``: the message the
    finished answer ends in, where its buttons are."""

    shown_ts: str | None
    async def start(self) -> None: ...
    async def status(self, tool: str | None) -> None: ...
    async def partial(self, text: str) -> None: ...
    async def finish(
        self, text: str, approval: Approval | None = None, *, footer: list[dict[str, Any]] | None = None
    ) -> None: ...
    async def fail(self, text: str) -> None: ...


def open_reply(
    client: AsyncWebClient, channel: str, thread_ts: str | None, team: str, user: str, streams: Streams
) -> SlackReply:
    """A streamed answer in a thread; at a DM's top level (no thread to stream into, no status
    line) the placeholder reply."""
    if thread_ts is None:
        return StreamingReply(client, channel, None)
    return NativeReply(client, channel, thread_ts, team, user, streams)


def status_text(tool: str | None) -> str:
    """What the status line says while ``tool`` runs (None: the model itself)."""
    if tool is None:
        return THINKING
    return _TOOL_STATUS.get(tool, f"is running {tool}…")


class NativeReply:
    """One answer in a thread: status, then streamed messages, or the placeholder fallback."""

    def __init__(
        self, client: AsyncWebClient, channel: str, thread_ts: str, team: str, user: str, streams: Streams,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._team, self._user = team, user  # streams in channels name their reader
        self._streams = streams
        self._clock = streams.clock
        self._fallback: StreamingReply | None = None
        self._status: str | None = None
        self._ts: str | None = None  # the open stream's message
        self._shown = ""  # what the open message shows (unescaped)
        self._opened = 0.0
        self._appended = 0.0
        self._offset = 0  # characters of the answer shown by finished messages
        self._carry = ""  # the code fence reopened at the start of the open message
        self._diverged = False
        self.shown_ts: str | None = None

    # -- the Reply contract ------------------------------------------------------------

    async def start(self) -> None:
        """The status line; where there is none, a stream opened at once shows the work."""
        if await self._set_status(THINKING):
            return
        if not await self._open(""):
            await self._fall_back(placeholder=True)

    async def status(self, tool: str | None) -> None:
        """``OnStatus``: say which tool runs; a surface without status ignores it."""
        if self._status is not None:
            await self._set_status(status_text(tool))

    async def partial(self, text: str) -> None:
        if self._fallback is not None:
            await self._fallback.partial(self._rest(text))
            return
        await self._deliver(text, final=False)

    async def finish(
        self, text: str, approval: Approval | None = None, *, footer: list[dict[str, Any]] | None = None
    ) -> None:
        """The whole answer, ``footer`` (the 👍/👎 block) under its last message; an approval
        request is finished by the placeholder reply, whose messages carry the Approve /
        Reject buttons and are edited when one is clicked."""
        try:
            if approval is not None and self._fallback is None:
                await self._hand_over()
            if self._fallback is not None:
                await self._fallback.finish(self._rest(text), approval, footer=footer)
                self.shown_ts = self._fallback.shown_ts
            else:
                await self._deliver(text, final=True, footer=footer)
        finally:
            await self._clear_status()

    async def fail(self, text: str) -> None:
        try:
            if self._fallback is None:
                await self._hand_over()
            assert self._fallback is not None
            await self._fallback.fail(text)
        finally:
            await self._clear_status()

    # -- streaming -----------------------------------------------------------------------

    async def _deliver(self, text: str, final: bool, footer: list[dict[str, Any]] | None = None) -> None:
        """Bring the thread up to ``text``: finished messages for what is complete, the rest open."""
        while self._fallback is None:
            body = self._carry + text[self._offset :]
            if len(body) > LIMIT:
                head, reopen, used = split_first(body, LIMIT)
                if not await self._show(head, close=True):
                    continue
                self._offset += used - len(self._carry)
                self._carry = reopen
            elif (end := self._rollover_end(body)) is not None:
                await self._roll_over(body[:end])
            else:
                last = footer if final else None
                if (body.strip() or self._ts is not None) and not await self._show(body, final, last):
                    continue
                return
        if final:
            await self._fallback.finish(self._rest(text), footer=footer)
            self.shown_ts = self._fallback.shown_ts
        else:
            await self._fallback.partial(self._rest(text))

    async def _show(self, target: str, close: bool, blocks: list[dict[str, Any]] | None = None) -> bool:
        """Make the open message show ``target`` (finishing it if ``close``, with ``blocks``
        under it: Slack appends a stop's blocks to the streamed text); False: start over."""
        if self._ts is None:
            if not await self._open(target):
                await self._fall_back(placeholder=self._status is None)
                return False
            if not close:
                return True
        assert self._ts is not None
        if not target.startswith(self._shown):
            self._diverged = True  # the model rewrote its answer (after a tool): fixed at the end
            if close:
                await self._stop("")
                await self._client.chat_update(
                    channel=self._channel, ts=self._ts, text=escape(target),
                    blocks=[section(escape(target)), *blocks] if blocks else None,
                )
                self.shown_ts = self._ts
                self._closed()
            return True
        delta = target[len(self._shown) :]
        if close:
            await self._stop(delta, blocks)
            self.shown_ts = self._ts
            self._closed()
        elif delta and self._clock() - self._appended >= _APPEND_INTERVAL:
            try:
                await self._client.chat_appendStream(
                    channel=self._channel, ts=self._ts, markdown_text=escape(delta)
                )
            except SlackApiError as exc:  # Slack ended the stream early: go on in a new message
                _log.warning("stream in %s ended early: %s", self._channel, exc.response.get("error"))
                await self._roll_over(stopped=True)
                return True
            self._shown, self._appended = target, self._clock()
        return True

    async def _open(self, text: str) -> bool:
        if self._streams.refused(self._team):
            return False  # refused a moment ago: straight to the edits
        try:
            response = await self._client.chat_startStream(
                channel=self._channel, thread_ts=self._thread_ts, markdown_text=escape(text) or None,
                recipient_team_id=self._team, recipient_user_id=self._user,
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            _log.info("slack refused to stream in %s (%s): answering with edits", self._channel, error)
            self._streams.note(self._team, error)
            return False
        self._ts, self._shown = str(response["ts"]), text
        self._opened = self._appended = self._clock()
        return True

    async def _stop(self, delta: str, blocks: list[dict[str, Any]] | None = None) -> None:
        assert self._ts is not None
        try:
            await self._client.chat_stopStream(
                channel=self._channel, ts=self._ts, markdown_text=escape(delta) or None, blocks=blocks
            )
        except SlackApiError as exc:  # ended by Slack already: the text is put right by an edit
            _log.warning("stopping the stream in %s: %s", self._channel, exc.response.get("error"))
            text = escape(self._shown + delta)
            await self._client.chat_update(
                channel=self._channel, ts=self._ts, text=text,
                blocks=[section(text), *blocks] if blocks else None,
            )
        self._shown += delta

    def _rollover_end(self, body: str) -> int | None:
        """Where the open message should end for its age, or None while it may go on.

        Past ``ROLLOVER`` it ends at the next line break (inside code) or space it reaches;
        if none comes within ``_GRACE`` seconds, where it is.
        """
        if self._ts is None or self._diverged:
            return None
        age = self._clock() - self._opened
        if age < ROLLOVER:
            return None
        start = len(self._shown)
        breaks = "\n" if open_fence(self._shown) is not None else "\n "
        for at in range(max(start - 1, 0), len(body)):
            if body[at] in breaks:
                return at + 1
        return start if age >= ROLLOVER + _GRACE else None

    async def _roll_over(self, content: str | None = None, stopped: bool = False) -> None:
        """Finish the open message with ``content`` (what it shows by default); the answer
        continues in a new one, reopening a code block the cut fell in."""
        content = self._shown if content is None else content
        lang = open_fence(content)
        self._offset += max(0, len(content) - len(self._carry))
        if not stopped:
            close = "" if lang is None else "```" if content.endswith("\n") else "\n```"
            await self._stop(content[len(self._shown) :] + close)
        self._carry = f"```{lang}\n" if lang is not None else ""
        self._closed()

    def _closed(self) -> None:
        self._ts, self._shown, self._diverged = None, "", False

    # -- the fallback and the status line -----------------------------------------------

    async def _fall_back(self, placeholder: bool) -> None:
        self._fallback = StreamingReply(self._client, self._channel, self._thread_ts)
        try:
            await self._fallback.start(placeholder=placeholder)
        except SLACK_ERRORS as exc:
            _log.warning("no placeholder in %s: %s", self._channel, type(exc).__name__)

    async def _hand_over(self) -> None:
        """Let the placeholder reply finish: it edits the open message, if there is one."""
        ts = self._ts
        if ts is not None:
            try:
                await self._stop("")
            except SLACK_ERRORS as exc:
                _log.warning("could not stop the stream in %s: %s", self._channel, type(exc).__name__)
        self._fallback = StreamingReply(self._client, self._channel, self._thread_ts)
        if ts is not None:
            self._fallback.adopt(ts)

    def _rest(self, text: str) -> str:
        """What of ``text`` the finished streamed messages do not show yet."""
        return self._carry + text[self._offset :]

    async def _set_status(self, text: str) -> bool:
        if text == self._status:
            return True
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self._channel, thread_ts=self._thread_ts, status=text
            )
        except SLACK_ERRORS as exc:
            _log.debug("no status in %s: %s", self._channel, type(exc).__name__)
            return False
        self._status = text
        return True

    async def _clear_status(self) -> None:
        if self._status:
            await self._set_status("")


if TYPE_CHECKING:  # the contract every adapter's reply keeps (checked by mypy)
    from core.types import Reply

    _REPLY: type[Reply] = NativeReply
