"""The contracts between the core and the adapters: plain values, no behaviour."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from core.keys import ThreadKey

__all__ = ["Answer", "ConversationInfo", "OnPartial", "RewindResult", "Turn"]

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
class Answer:
    key: ThreadKey
    text: str
    turn: Turn

    @property
    def checkpoint_id(self) -> str:
        return self.turn.checkpoint_id


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
