"""The viewer's JSON: the core's result values as plain dicts, times as ISO 8601."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from core.types import Approval, ConversationPage, ConversationTree, Step, TurnSteps

__all__ = ["approval", "conversation_page", "tree", "turn_steps"]


def approval(found: Approval) -> dict[str, Any]:
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


def conversation_page(page: ConversationPage) -> dict[str, Any]:
    return {
        "more": page.more,
        "conversations": [
            {
                "key": str(c.key),
                "platform": c.key.platform,
                "place": c.key.place,
                "title": c.title,
                "turns": c.turns,
                "last_active": c.last_active_at.isoformat(),
                "pending": c.pending,
            }
            for c in page.conversations
        ],
    }


def tree(found: ConversationTree) -> dict[str, Any]:
    return {
        "key": str(found.key),
        "title": found.title,
        "head_checkpoint_id": found.head_checkpoint_id,
        "more": found.more,
        "turns": [
            {
                "turn_id": t.turn.turn_id,
                "index": t.turn.index,
                "user": t.turn.user,
                "question": t.turn.question,
                "answer": t.turn.answer,
                "time": t.turn.at.isoformat(),
                "checkpoint_id": t.turn.checkpoint_id,
                "parent_checkpoint_id": t.parent_checkpoint_id,
                "live": t.live,
                "replay_of": t.replay_of,
            }
            for t in found.turns
        ],
        "rewinds": [
            {
                "user": r.user,
                "time": r.at.isoformat(),
                "from_checkpoint_id": r.from_checkpoint_id,
                "to_checkpoint_id": r.to_checkpoint_id,
            }
            for r in found.rewinds
        ],
        "pending": approval(found.pending) if found.pending else None,
    }


def _step(step: Step) -> dict[str, Any]:
    shown = asdict(step)
    shown["started_at"] = step.started_at.isoformat()
    return shown


def turn_steps(found: TurnSteps) -> dict[str, Any]:
    return {"truncated": found.truncated, "steps": [_step(s) for s in found.steps]}
