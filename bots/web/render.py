"""The viewer's own JSON: a page of conversations, a tree, a turn's steps (the rest: bots/api/render.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bots.api.render import approval, rewind, turn
from core.records import ConversationPage, ConversationTree, Step, ToolCallRecord, TurnSteps

__all__ = ["conversation_page", "tree", "turn_steps"]


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
                **turn(t.turn),
                "turn_id": t.turn.turn_id,
                "parent_checkpoint_id": t.parent_checkpoint_id,
                "live": t.live,
                "replay_of": t.replay_of,
            }
            for t in found.turns
        ],
        "rewinds": [rewind(r) for r in found.rewinds],
        "pending": approval(found.pending) if found.pending else None,
    }


def _step(step: Step) -> dict[str, Any]:
    shown = asdict(step)
    shown["started_at"] = step.started_at.isoformat()
    return shown


def turn_steps(found: TurnSteps) -> dict[str, Any]:
    return {"truncated": found.truncated, "steps": [_step(s) for s in found.steps]}


def tool_call(call: ToolCallRecord) -> dict[str, Any]:
    """One MCP call for the viewer: its arguments and result as the ledger has them."""
    return {
        "server": call.server, "tool": call.tool, "args": call.args, "policy": call.policy,
        "read_only": call.read_only, "approved_by": call.approved_by, "reused": call.reused_from is not None,
        "result": call.result, "error": call.error, "time": call.at.isoformat() if call.at else None,
    }
