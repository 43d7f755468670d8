"""The core's result values as JSON, one function each, for the API and the viewer alike.

Times are ISO 8601; nothing here reads anything: it only shapes what the service returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.conversations.wording import preview

if TYPE_CHECKING:
    from core.records import Approval, Rewind, Step, Turn
    from core.types import Answer

__all__ = ["answer", "approval", "rewind", "step_summary", "turn"]


def turn(found: Turn) -> dict[str, Any]:
    return {
        "index": found.index,
        "user": found.user,
        "question": found.question,
        "answer": found.answer,
        "time": found.at.isoformat(),
        "checkpoint_id": found.checkpoint_id,
        "feedback": [{"user": f.user, "value": f.value, "time": f.at.isoformat()} for f in found.feedback],
        "version": found.version,
        "versions": found.versions,
    }


def approval(found: Approval) -> dict[str, Any]:
    """A tool call waiting for (or decided by) a person: what, asked by whom, where it paused."""
    return {
        "id": found.id,
        "tool": found.tool,
        "args": found.args,
        "question": found.question,
        "status": found.status,
        "requested_by": found.requested_by,
        "decided_by": found.decided_by,
        "checkpoint_id": found.checkpoint_id,
        "time": found.created_at.isoformat(),
    }


def rewind(found: Rewind) -> dict[str, Any]:
    return {
        "user": found.user,
        "time": found.at.isoformat(),
        "from_checkpoint_id": found.from_checkpoint_id,
        "to_checkpoint_id": found.to_checkpoint_id,
    }


def step_summary(step: Step) -> dict[str, Any]:
    """One step of a turn, as the audit lists it: who ran, what it called, how long, what it said."""
    said = [m.content for m in step.added if m.type in ("ai", "tool") and m.content]
    return {
        "agent": step.agent,
        "node": step.node,
        "tool_calls": [{"name": c["name"], "args": c["args"]} for m in step.added for c in m.tool_calls],
        "returned": preview(said[-1], 200) if said else None,
        "started_at": step.started_at.isoformat(),
        "duration_ms": step.duration_ms,
    }


def answer(thread_id: str, found: Answer) -> dict[str, Any]:
    """A finished turn, or a paused one: then ``approval`` says what waits for a decision."""
    return {
        "answer": found.text,
        "thread_id": thread_id,
        "checkpoint_id": found.checkpoint_id,
        "approval": approval(found.approval) if found.approval else None,
    }
