"""The steps of one turn: every checkpoint it wrote, in every namespace, read through the saver.

A turn runs from its start checkpoint (the parent turn's end, or the conversation's root)
to its end checkpoint. Its own checkpoints are found by following ``parent`` links back
from the end in the main namespace (``aget_state_history`` would mix in other branches),
and a subgraph's checkpoints (``checkpoint_ns="researcher:<task>"``) belong to it when
their ``parents[""]`` is one of those. A step's effect is stored as the pending writes of
the checkpoint it ran from, so each step is read as the pair (parent, child).

Everything is bounded: one page of at most ``MAX_STEPS`` checkpoints per turn (a longer
turn shows its newest steps and says so), and a model step shows at most ``MAX_SENT`` of
the messages it was sent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from core.records import Audit, Step, StepMessage, TurnSteps

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

__all__ = ["AUDIT_STEPS", "MAX_SENT", "MAX_STEPS", "TurnReader", "step_message", "with_steps"]

MAX_STEPS = 200
"""Steps shown for one turn: checkpoints read before its end one, over all namespaces."""
MAX_SENT = 50
"""Messages of a model's window shown with its step (the newest ones)."""
AUDIT_STEPS = 20
"""Turns of an audit (``/history --all``, the API's ``all_branches``) listed with their steps: the newest."""

LoadWindow = Callable[[str, str], Awaitable[Sequence[BaseMessage]]]
"""(thread id, checkpoint id) -> the main graph's messages at that checkpoint."""

_INTERNAL = ("branch:", "__")
_FIRST_PAGE = 8
_Where = tuple[str, str]
"""(namespace, checkpoint id)"""


def step_message(message: BaseMessage) -> StepMessage:
    calls: tuple[dict[str, Any], ...] = ()
    if isinstance(message, AIMessage):
        calls = tuple({"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls)
    return StepMessage(
        type=message.type,
        content=message.text,
        name=message.name,
        tool_calls=calls,
        tool_call_id=message.tool_call_id if isinstance(message, ToolMessage) else None,
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _ns(t: CheckpointTuple) -> str:
    return str(t.config["configurable"].get("checkpoint_ns") or "")


def _id(t: CheckpointTuple) -> str:
    return str(t.config["configurable"]["checkpoint_id"])


def _parent_id(t: CheckpointTuple) -> str | None:
    return str(t.parent_config["configurable"]["checkpoint_id"]) if t.parent_config else None


def _agent(ns: str) -> str:
    """``researcher:<task>`` (or ``team:<t>|researcher:<t>`` nested) -> ``researcher``."""
    return ns.split("|")[-1].split(":")[0] if ns else "agent"


def _node(child: CheckpointTuple, parent: CheckpointTuple) -> str:
    """The nodes that ran between the two: those whose seen versions changed."""
    before = parent.checkpoint["versions_seen"]
    ran = [
        "input" if name == "__start__" else name
        for name, seen in child.checkpoint["versions_seen"].items()
        if before.get(name) != seen and (name == "__start__" or not name.startswith("__"))
    ]
    return ", ".join(ran) or str(child.metadata.get("source") or "")


def _own_write(t: CheckpointTuple, channel: str) -> Any:
    """The value a task wrote to ``channel`` at ``t`` (lists of one unwrapped), else None."""
    for _task, name, value in t.pending_writes or ():
        if name == channel:
            return value[0] if isinstance(value, list) and len(value) == 1 else value
    return None


class TurnReader:
    def __init__(self, checkpointer: BaseCheckpointSaver[Any], load_window: LoadWindow) -> None:
        self._saver = checkpointer
        self._load_window = load_window

    async def steps(self, thread_id: str, start: str | None, end: str, *, sent: bool = True) -> TurnSteps:
        """The steps from ``start`` (exclusive) to ``end``, oldest first; ``sent``: with model windows."""
        config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": end}}
        last = await self._saver.aget_tuple(config)
        if last is None:
            return TurnSteps([], False)
        found: dict[_Where, CheckpointTuple] = {("", end): last}
        chain, reached = await self._chain(thread_id, start, last, found)
        members = [
            t for t in found.values()
            if (_ns(t) == "" and _id(t) in chain)
            or (_ns(t) != "" and t.metadata.get("parents", {}).get("") in chain)
        ]
        steps = []
        for child in sorted(members, key=_id):
            parent_id = _parent_id(child)
            before = found.get((_ns(child), parent_id)) if parent_id else None
            if before is not None and (step := await self._step(thread_id, before, child, sent)) is not None:
                steps.append(step)
        return TurnSteps(steps, truncated=not reached)

    async def _chain(
        self, thread_id: str, start: str | None, last: CheckpointTuple, found: dict[_Where, CheckpointTuple]
    ) -> tuple[set[str], bool]:
        """Read pages of the thread (every namespace) backwards until the parent chain meets ``start``.

        Pages start small and double: a turn is a handful of checkpoints, so most turns cost
        one query, and no turn reads more than ``MAX_STEPS``.
        """
        thread: Any = {"configurable": {"thread_id": thread_id}}  # no namespace: all of them
        chain: set[str] = set()
        current: CheckpointTuple | None = last
        oldest, read, page, missing = last.config, 0, _FIRST_PAGE, ""
        while True:
            while current is not None:
                chain.add(_id(current))
                above = _parent_id(current)
                if above is None or above == start:
                    return chain, True
                current = found.get(("", above))
                missing = above
            if read >= MAX_STEPS:
                return chain, False
            size = min(page, MAX_STEPS - read)
            rows = [t async for t in self._saver.alist(thread, before=oldest, limit=size)]
            if not rows:
                return chain, False
            found.update({(_ns(t), _id(t)): t for t in rows})
            oldest, read, page = rows[-1].config, read + len(rows), page * 2
            current = found.get(("", missing))

    async def _step(
        self, thread_id: str, parent: CheckpointTuple, child: CheckpointTuple, with_sent: bool = True
    ) -> Step | None:
        added: list[StepMessage] = []
        values: dict[str, Any] = {}
        for _task, channel, value in parent.pending_writes or ():
            if channel == "messages":
                written = value if isinstance(value, list) else [value]
                added += [step_message(m) for m in written if isinstance(m, BaseMessage)]
            elif not channel.startswith(_INTERNAL):
                values[channel] = _jsonable(value)
        interrupt = _own_write(child, "__interrupt__")
        pause = getattr(interrupt, "value", None)
        if not added and not values and pause is None:
            return None  # the input checkpoint itself, or a subgraph's empty start
        sent: list[StepMessage] = []
        if with_sent and any(m.type == "ai" for m in added):
            sent = [step_message(m) for m in await self._window(thread_id, parent)]
        started = datetime.fromisoformat(parent.checkpoint["ts"])
        ended = datetime.fromisoformat(child.checkpoint["ts"])
        decision = _own_write(child, "__resume__") if pause is not None else None
        return Step(
            checkpoint_id=_id(child),
            agent=_agent(_ns(child)),
            node=_node(child, parent),
            started_at=started,
            duration_ms=round((ended - started).total_seconds() * 1000, 1),
            added=tuple(added),
            values=values,
            sent=tuple(sent[-MAX_SENT:]),
            sent_omitted=max(len(sent) - MAX_SENT, 0),
            pause=_jsonable(pause) if isinstance(pause, dict) else None,
            decision=_jsonable(decision) if isinstance(decision, dict) else None,
        )

    async def _window(self, thread_id: str, at: CheckpointTuple) -> Sequence[BaseMessage]:
        """The messages in state at ``at``: stored in the checkpoint, or rebuilt from deltas."""
        stored = at.checkpoint["channel_values"].get("messages")
        if isinstance(stored, list):
            return [m for m in stored if isinstance(m, BaseMessage)]
        if _ns(at) != "":
            return []
        return await self._load_window(thread_id, _id(at))


async def with_steps(
    reader: TurnReader, thread_id: str, audit: Audit, start_of: Callable[[str], Awaitable[str | None]]
) -> Audit:
    """``audit`` with the steps of its newest ``AUDIT_STEPS`` turns (without the model windows).

    ``start_of`` finds where a first turn started (the conversation's root checkpoint).
    """
    turns = list(audit.turns)
    for i in range(max(len(turns) - AUDIT_STEPS, 0), len(turns)):
        branch = turns[i]
        end = branch.turn.checkpoint_id
        start = branch.parent_checkpoint_id or await start_of(end)
        read = await reader.steps(thread_id, start, end, sent=False)
        turns[i] = replace(branch, steps=tuple(read.steps))
    return replace(audit, turns=turns)
