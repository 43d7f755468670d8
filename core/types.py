"""The exchange between the core and the adapters: what comes in, what goes out, how a reply
shows itself. Plain values, no behaviour; what the core stores and reads back is
``core/records.py``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from core.errors import InvalidInput
from core.keys import ThreadKey, within

if TYPE_CHECKING:
    from core.records import Approval, Turn

__all__ = [
    "Answer", "Attachment", "Command", "Grant", "Incoming", "OnDecided", "OnPartial", "OnStatus", "Received",
    "Reply", "RewindResult", "Unread",
]


OnPartial = Callable[[str], Awaitable[None]]
"""Called with the answer text so far while the model streams; adapters throttle edits."""

OnStatus = Callable[[str | None], Awaitable[None]]
"""Called with a tool's name when the agent starts running it, and with None once the model
works on again: lets an adapter say what the bot is doing ("is searching the web…")."""

OnDecided = Callable[["Approval"], Awaitable[None]]
"""Called once an approval decision is stored, before the paused turn runs on: from then
on the decision stands, whatever happens to the rest of the turn."""


@dataclass(frozen=True, slots=True)
class Command:
    """A command of the shared table (``/history 5``), however the platform delivered it."""

    name: str
    argument: str = ""

    def count(self, default: int, *, what: str) -> int:
        """The numeric argument, or a clear refusal naming what it counts."""
        arg = self.argument.strip()
        if not arg:
            return default
        if not re.fullmatch(r"[+-]?\d+", arg):
            raise InvalidInput(f"/{self.name} takes a number of {what}, e.g. /{self.name} {default}")
        if len(arg.lstrip("+-")) > 6:
            raise InvalidInput(
                f"/{self.name} takes a number of {what} below a million, e.g. /{self.name} {default}"
            )
        return int(arg)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file in hand: downloaded by an adapter or sent to the API."""

    name: str
    mime: str | None
    data: bytes

    def __repr__(self) -> str:  # never the contents, in a log line or a traceback
        return f"Attachment({self.name!r}, {self.mime!r}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class Unread:
    """A file that was not read, and why, worded for the user ("it is larger than 10 MB")."""

    name: str
    reason: str

    @property
    def sentence(self) -> str:
        return f"I could not read {self.name}: {self.reason}."


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished turn (``turn``), or one paused for a person's approval (``approval``)."""

    key: ThreadKey
    text: str
    turn: Turn | None
    approval: Approval | None = None

    @property
    def checkpoint_id(self) -> str:
        if self.turn is not None:
            return self.turn.checkpoint_id
        assert self.approval is not None
        return self.approval.checkpoint_id


@dataclass(frozen=True, slots=True)
class RewindResult:
    key: ThreadKey
    removed: list[Turn]
    """The turns that left the live branch, oldest first (still readable by checkpoint id)."""
    head: Turn | None
    """The turn the conversation now ends with; ``None`` when it is back at the start."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """A platform message as an adapter translated it, before the core decides what it is."""

    key: ThreadKey
    text: str
    user: str
    deliveries: tuple[tuple[str, str], ...] = ()
    """The platform's own ids of this message, as (kind, id) pairs, e.g. ("event", "Ev1") and
    ("message", "1700.0001"): it is handled once, by the delivery that claims all of them first."""
    addressed: bool = True
    """Surely for the bot (a DM or a mention); otherwise only in a conversation that exists."""
    echo: bool = False
    """A second delivery of a message the platform also sends another way (Slack's ``message``
    twin of an ``app_mention``): it is answered if it claims first, but never reports an error."""
    command_prefixes: str = "/"
    """What starts a command typed as a message ("!" in Slack threads); empty: none is."""


@dataclass(frozen=True, slots=True)
class Received:
    """An incoming message the bot answers: a command, or a question for the agent."""

    key: ThreadKey
    """The conversation it belongs to: the place's current one (``/new`` moves it on)."""
    text: str
    command: Command | None
    event_id: str | None = field(default=None)
    """The delivery id that claimed it, recorded in the turn's checkpoint metadata."""


class Reply(Protocol):
    """What an adapter's answer to one message can do; streaming previews are optional."""

    async def partial(self, text: str) -> None:
        """Show the answer so far (an adapter may throttle or ignore previews)."""

    async def finish(self, text: str, approval: Approval | None = None) -> None:
        """Show the answer; with ``approval``, under it the buttons to decide it."""

    async def fail(self, text: str) -> None:
        """Tell the user what went wrong, where the answer would have been."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What an API or viewer caller may reach: everything (``scopes`` None: the operator's
    ``API_TOKEN``, or loopback without one), or the conversations and places in its scopes."""

    scopes: tuple[str, ...] | None = None

    def allows(self, name: str) -> bool:
        """Whether a conversation key or a place lies in this grant's reach."""
        return self.scopes is None or any(within(name, scope) for scope in self.scopes)
