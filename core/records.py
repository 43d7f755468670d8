"""What the core keeps and reads back: turns and their branches, approvals, ratings, place
settings, the viewer's pages, a turn's steps. Plain values, no behaviour; the exchange with
the adapters (what comes in, what goes out) is ``core/types.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.keys import ThreadKey

__all__ = [
    "KEEP", "Approval", "Audit", "BranchTurn", "ConversationInfo", "ConversationPage",
    "ConversationSummary", "ConversationTree", "Feedback", "Keep", "PlaceChoice", "PlaceSetting",
    "Rewind", "Step", "StepMessage", "ToolCallRecord", "TreeTurn", "Turn", "TurnSteps", "Usage",
]


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
    servers: tuple[str, ...] | None = None
    """The MCP servers it uses (None: it has not chosen; the servers on by default)."""


@dataclass(frozen=True, slots=True)
class PlaceChoice:
    """What a turn runs with; ``*_from`` names the place that set it (None: the default)."""

    model: str
    persona: str | None = None
    persona_from: PlaceSetting | None = None
    model_from: PlaceSetting | None = None
    servers: tuple[str, ...] | None = None
    """The MCP servers its turns may use; None: the servers the operator turned on by default."""


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
    version: int = 1
    versions: int = 1
    """``version`` of ``versions``: the answers one question got here (edits, retries, replays)."""


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
class ToolCallRecord:
    """One MCP tool call of a turn (``run_id``) and what came of it, as the ledger keeps it."""

    server: str
    tool: str
    args: dict[str, Any]
    args_hash: str
    read_only: bool
    policy: str
    """``auto``, ``ask`` or (for a repeat of an earlier call with the same arguments) ``again``."""
    result: str | None = None
    error: str | None = None
    approved_by: str | None = None
    reused_from: int | None = None
    """The earlier call whose recorded result a replay used instead of calling the tool."""
    id: int | None = None
    run_id: str | None = None
    at: datetime | None = None
