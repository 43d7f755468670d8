"""Runs the agent graph for one turn: from an explicit checkpoint, streaming, to its end or its pause.

Every run names the checkpoint it starts from, so forks (rewinds, replays, resumed
approvals) never depend on which checkpoint happens to be the thread's newest.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langgraph.types import Command

from core.attachments import REFS, refs_of
from core.checkpointer import PooledPostgresSaver
from core.db import STORAGE_ERRORS
from core.errors import AgentFailed, BacktrackError
from core.metrics import MetricsCallback
from core.types import RunResult, Usage
from core.usage import usage_of

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from core.keys import ThreadKey
    from core.places import PlaceChoice
    from core.types import OnPartial, OnStatus

__all__ = ["GraphRunner"]

_log = logging.getLogger(__name__)


class GraphRunner:
    def __init__(self, graph: CompiledStateGraph[Any, Any, Any, Any]) -> None:
        self._graph = graph

    async def root(self, key: ThreadKey) -> str:
        """A new empty checkpoint for ``key``: what every first turn forks from."""
        config: Any = {"configurable": {"thread_id": str(key)}}
        root = await self._graph.aupdate_state(config, {"messages": []}, as_node="__input__")
        return str(root["configurable"]["checkpoint_id"])

    async def window(self, thread_id: str, checkpoint_id: str) -> list[BaseMessage]:
        """The messages in state at a checkpoint (the window a model step there was sent)."""
        config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_id": checkpoint_id}}
        snapshot = await self._graph.aget_state(config)
        return list(snapshot.values.get("messages") or [])

    async def ask(
        self, key: ThreadKey, start: str, question: str, on_partial: OnPartial | None,
        metadata: dict[str, Any], on_status: OnStatus | None, place: PlaceChoice, speaker: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> RunResult:
        """``speaker`` is stored as the message's name (``core/speakers.py``), never in its text;
        ``files`` are references (``core/attachments.py``): the checkpoint keeps them, not the bytes."""
        extra = {"additional_kwargs": {REFS: files}} if files else {}
        message = HumanMessage(question, name=speaker, **extra)
        return await self._run(key, start, {"messages": [message]}, on_partial, metadata, on_status, place)

    async def files_at(self, key: ThreadKey, checkpoint_id: str) -> list[dict[str, Any]]:
        """The file references of the question of the turn that ended at ``checkpoint_id``.

        The state there always keeps that turn's question, its last human message: a
        replay asks it again with the same files.
        """
        config: Any = {"configurable": {"thread_id": str(key), "checkpoint_id": checkpoint_id}}
        state = await self._graph.aget_state(config)
        humans = [m for m in state.values.get("messages") or [] if isinstance(m, HumanMessage)]
        return refs_of(humans[-1]) if humans else []

    async def resume(
        self, key: ThreadKey, paused: str, decision: dict[str, Any], on_partial: OnPartial | None,
        metadata: dict[str, Any], on_status: OnStatus | None, place: PlaceChoice,
    ) -> RunResult:
        return await self._run(key, paused, Command(resume=decision), on_partial, metadata, on_status, place)

    async def _run(
        self, key: ThreadKey, start: str, graph_input: Any, on_partial: OnPartial | None,
        metadata: dict[str, Any], on_status: OnStatus | None, place: PlaceChoice,
    ) -> RunResult:
        config: Any = {
            # ``place`` is an object, so LangGraph does not copy it into checkpoint metadata
            # (it copies plain strings there): the model's name is put there on purpose.
            "configurable": {"thread_id": str(key), "checkpoint_id": start, "place": place},
            "metadata": {"platform": key.platform, "model": place.model, **metadata},
            "recursion_limit": 25,
            "callbacks": [MetricsCallback(place.model)],
        }
        partial, last, final, pause, usage = "", None, None, None, Usage()
        ended: Any = None
        # token streaming costs a callback per chunk: only when someone reads the partials
        modes: Any = ["checkpoints", "updates", *(["messages"] if on_partial else [])]
        stream: Any = self._graph.astream(graph_input, config, stream_mode=modes)
        try:
            async for mode, chunk in stream:
                if mode == "checkpoints":
                    ended = chunk
                    last = chunk["config"]["configurable"]["checkpoint_id"]
                    messages = chunk["values"].get("messages") or []
                    final = messages[-1] if messages else None
                elif mode == "updates":
                    usage += _usage(chunk)
                    if interrupts := chunk.get("__interrupt__"):
                        pause = interrupts[0].value
                    elif on_status is not None and (status := _status(chunk)) is not None:
                        await on_status(status or None)
                elif (text := _partial(chunk[0], partial)) is not None:
                    partial = text
                    if on_partial is not None and partial:
                        await on_partial(partial)
        except (BacktrackError, asyncio.CancelledError, *STORAGE_ERRORS):
            raise
        except Exception as exc:  # the model or the graph failed: the turn is abandoned
            _log.warning("turn on %s failed: %r", key, exc, exc_info=True)
            raise AgentFailed() from exc
        if last is None:
            raise AgentFailed()
        if pause is not None:
            return RunResult(checkpoint_id=last, answer=None, pause=pause, usage=usage)
        if not isinstance(final, AIMessage):
            raise AgentFailed()
        if isinstance(saver := self._graph.checkpointer, PooledPostgresSaver):
            saver.keep_window(ended["config"], ended["values"]["messages"])  # the next turn starts here
        return RunResult(checkpoint_id=last, answer=final.text, usage=usage)


def _usage(update: dict[str, Any]) -> Usage:
    """The tokens of the model replies in one step's update."""
    total = Usage()
    for values in update.values():
        messages = values.get("messages") if isinstance(values, dict) else None
        for message in messages if isinstance(messages, list) else ():
            if isinstance(message, AIMessage):
                total += usage_of(message)
    return total


def _status(update: dict[str, Any]) -> str | None:
    """From one node's update: the tool about to run, "" once tools have answered, else None."""
    for values in update.values():
        messages = values.get("messages") if isinstance(values, dict) else None
        last = messages[-1] if isinstance(messages, list) and messages else None
        if isinstance(last, AIMessage) and last.tool_calls:
            return str(last.tool_calls[0]["name"])
        if isinstance(last, ToolMessage):
            return ""
    return None


def _partial(message: object, so_far: str) -> str | None:
    """The answer text after one streamed message; None for messages that are not the answer."""
    if isinstance(message, ToolMessage):
        return ""
    if isinstance(message, AIMessageChunk):
        return so_far + message.text
    if isinstance(message, AIMessage):
        return message.text
    return None
