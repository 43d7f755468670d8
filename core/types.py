"""The contracts between the core and the adapters: plain values, no behaviour."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.keys import ThreadKey

__all__ = [
    "Answer",
    "Approval",
    "BranchTurn",
    "ConversationInfo",
    "OnPartial",
    "Rewind",
    "RewindResult",
    "Turn",
]

OnPartial = Callable[[str], Awaitable[None]]
"""Called with the answer text so far while the model streams; adapters throttle edits."""


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


@dataclass(frozen=True, slots=True)
class Rewind:
    """Who moved a conversation back, when, and between which turns (None: the start)."""

    user: str | None
    at: datetime
    from_checkpoint_id: str | None
    to_checkpoint_id: str | None
