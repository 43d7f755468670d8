"""The contracts between the core and the adapters: plain values, no behaviour."""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.errors import InvalidInput
from core.keys import ThreadKey

__all__ = [
    "KEEP", "Answer", "Approval", "Attachment", "Audit", "BranchTurn", "Command", "ConversationInfo",
    "ConversationPage", "ConversationSummary", "ConversationTree", "Feedback", "Incoming", "Keep",
    "OnDecided", "OnPartial", "OnStatus", "PlaceChoice", "PlaceSetting", "Received", "Reply", "Rewind",
    "RewindResult", "Step", "StepMessage", "TreeTurn", "Turn", "TurnSteps", "Unread", "Usage",
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
        if not re.fullmatch(r"[+-]?\d{1,6}", arg):
            raise InvalidInput(f"/{self.name} takes a number of {what}, e.g. /{self.name} {default}")
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


class Keep(enum.Enum):
    KEEP = "keep"


KEEP = Keep.KEEP
"""Leave this place setting as it is (``None`` resets it to the default)."""


@dataclass(frozen=True, slots=True)
class PlaceSetting:
    """What one place has set itself (persona, model), and who changed it last, when."""

    place: str
    persona: str | None
    model: str | None
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PlaceChoice:
    """What a turn runs with; ``*_from`` names the place that set it (None: the default)."""

    model: str
    persona: str | None = None
    persona_from: PlaceSetting | None = None
    model_from: PlaceSetting | None = None



@dataclass(frozen=True, slots=True)
class Feedback:
    """One person's 👍 (``up``) or 👎 (``down``) on a turn; their latest click counts."""

    user: str
    value: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Turn:
    """One question and its answer on a conversation's branch; ``index`` counts from 1."""

    index: int
    user: str | None
    question: str
    answer: str
    at: datetime
    checkpoint_id: str
    turn_id: int
    """Storage identity; adapters show ``index`` and ``checkpoint_id`` instead."""
    feedback: tuple[Feedback, ...] = ()
    """Who rated the answer, oldest first (read with history and the audit view)."""


@dataclass(frozen=True, slots=True)
class Approval:
    """A tool call waiting for a person; ``status`` is pending, approved, rejected or cancelled."""

    id: int
    key: ThreadKey
    tool: str
    args: dict[str, Any]
    question: str
    requested_by: str | None
    status: str
    decided_by: str | None
    checkpoint_id: str
    created_at: datetime
    agent: str = "single"
    """The graph that paused (single or team): the decision resumes it."""


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
class ConversationInfo:
    key: ThreadKey
    title: str
    turns: int
    last_user: str | None
    created_at: datetime
    last_active_at: datetime


@dataclass(frozen=True, slots=True)
class BranchTurn:
    """A turn in the audit view: every branch, with where it forked from."""

    turn: Turn
    parent_checkpoint_id: str | None
    live: bool = False
    steps: tuple[Step, ...] = ()
    """Which agents ran and what they did (``audit(steps=True)``, the newest turns only)."""


@dataclass(frozen=True, slots=True)
class Rewind:
    """Who moved a conversation back, when, and between which turns (None: the start)."""

    user: str | None
    at: datetime
    from_checkpoint_id: str | None
    to_checkpoint_id: str | None


@dataclass(frozen=True, slots=True)
class Audit:
    turns: list[BranchTurn]
    rewinds: list[Rewind]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A row of the web viewer's conversation list."""

    key: ThreadKey
    title: str
    turns: int
    last_active_at: datetime
    pending: bool
    """A tool call waits for someone's approval."""


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversations: list[ConversationSummary]
    more: bool
    """Further rows exist past this page."""


@dataclass(frozen=True, slots=True)
class TreeTurn:
    """A turn of the viewer's tree: its parent, whether it is live, what it replayed."""

    turn: Turn
    parent_checkpoint_id: str | None
    live: bool
    replay_of: str | None
    """The checkpoint of the turn this one asked again (a replay), else None."""


@dataclass(frozen=True, slots=True)
class ConversationTree:
    key: ThreadKey
    title: str
    head_checkpoint_id: str | None
    turns: list[TreeTurn]
    """The newest turns of every branch, oldest first; ``more``: older ones were left out."""
    more: bool
    rewinds: list[Rewind]
    pending: Approval | None


@dataclass(frozen=True, slots=True)
class StepMessage:
    """One message a step added or a model was sent, as plain text and values."""

    type: str
    """human, ai, tool or system."""
    content: str
    name: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One checkpoint of a turn: which agent and node wrote it, when, and what it added."""

    checkpoint_id: str
    agent: str
    """``agent`` for the main graph; a subgraph's node name for its checkpoints."""
    node: str
    started_at: datetime
    duration_ms: float
    added: tuple[StepMessage, ...]
    values: dict[str, Any]
    """Other state channels the step wrote, as JSON-ready values."""
    sent: tuple[StepMessage, ...] = ()
    """For a model step: the newest messages of the window the model was sent."""
    sent_omitted: int = 0
    pause: dict[str, Any] | None = None
    """What an ``interrupt()`` after this step asked for (an approval request)."""
    decision: dict[str, Any] | None = None
    """The answer the paused run was resumed with (approved or not, by whom)."""


@dataclass(frozen=True, slots=True)
class TurnSteps:
    steps: list[Step]
    truncated: bool
    """The turn has more checkpoints than the limit; the newest ones are shown."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the model reported for one or more of its calls."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


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
