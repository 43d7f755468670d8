"""Runs the agent graph for one turn: from an explicit checkpoint, streaming, to its end or its pause.

Every run names the checkpoint it starts from, so forks (rewinds, replays, resumed
approvals) never depend on which checkpoint happens to be the thread's newest.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langgraph.types import Command

from core.agents.attachments import REFS, refs_of
from core.agents.team import DELEGATIONS
from core.errors import AgentFailed, BacktrackError
from core.metrics import MetricsCallback
from core.records import Usage
from core.storage.checkpointer import BATCH, LATEST, PooledPostgresSaver
from core.storage.db import STORAGE_ERRORS
from core.storage.usage import usage_of

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from core.keys import ThreadKey
    from core.records import PlaceChoice
    from core.types import OnPartial, OnStatus

__all__ = ["GraphRunner", "RunResult"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunResult:
    checkpoint_id: str
    answer: str | None
    """The final answer; None when the run paused."""
    pause: dict[str, Any] | None = None
    """What an ``interrupt()`` asked for (tool and arguments) when the run paused."""
    usage: Usage = field(default_factory=Usage)
    """Summed over the run's model calls, as the model reported them."""
    run_id: str | None = None
    """The turn id the run's checkpoints carry (``metadata.turn_id``)."""


class GraphRunner:
    """Runs the single agent's graph or, for a conversation in team mode, the team's.

    Both share the root state, so each turn may choose; a paused turn resumes on the graph
    that paused it, which its approval request names (``agent``).
    """

    def __init__(
        self, graph: CompiledStateGraph[Any, Any, Any, Any],
        team: CompiledStateGraph[Any, Any, Any, Any] | None = None,
    ) -> None:
        self._graph = graph
        self._graphs = {"single": graph, "team": team or graph}

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
        files: list[dict[str, Any]] | None = None, agent: str = "single", latest: str | None = None,
    ) -> RunResult:
        """``speaker`` is stored as the message's name (``core/agents/speakers.py``), never in its text;
        ``files`` are references (``core/agents/attachments.py``): the checkpoint keeps them,
        not the bytes."""
        extra = {"additional_kwargs": {REFS: files}} if files else {}
        message = HumanMessage(question, name=speaker, **extra)
        metadata = {**metadata, "agent": agent}
        return await self._run(
            key, start, {"messages": [message]}, on_partial, metadata, on_status, place, latest
        )

    async def asked_at(self, key: ThreadKey, checkpoint_id: str) -> tuple[list[dict[str, Any]], str | None]:
        """The file references and the speaker's name of the question of the turn that ended
        at ``checkpoint_id``.

        The state there always keeps that turn's question, its last human message: a
        replay asks it again with the same files, in the same person's name.
        """
        config: Any = {"configurable": {"thread_id": str(key), "checkpoint_id": checkpoint_id}}
        state = await self._graph.aget_state(config)
        humans = [m for m in state.values.get("messages") or [] if isinstance(m, HumanMessage)]
        return (refs_of(humans[-1]), humans[-1].name) if humans else ([], None)

    async def resume(
        self, key: ThreadKey, paused: str, decision: dict[str, Any], on_partial: OnPartial | None,
        metadata: dict[str, Any], on_status: OnStatus | None, place: PlaceChoice, agent: str,
    ) -> RunResult:
        """Run on from a paused checkpoint with a person's ``decision``, on the graph that paused."""
        return await self._run(
            key, paused, Command(resume=decision), on_partial, {**metadata, "agent": agent}, on_status, place
        )

    async def _run(
        self, key: ThreadKey, start: str, graph_input: Any, on_partial: OnPartial | None,
        metadata: dict[str, Any], on_status: OnStatus | None, place: PlaceChoice, latest: str | None = None,
    ) -> RunResult:
        """``latest``: the thread's newest checkpoint id if the caller read it under the lock."""
        config: Any = {
            # ``place`` is an object, so LangGraph does not copy it into checkpoint metadata
            # (it copies plain strings there): the model's name is put there on purpose.
            "configurable": {
                "thread_id": str(key), "checkpoint_id": start, "place": place, BATCH: True, LATEST: latest,
            },
            "metadata": {"platform": key.platform, "model": place.model, **metadata},
            "recursion_limit": 25,
            "callbacks": [MetricsCallback(place.model)],
        }
        partial, last, final, pause, usage = "", None, None, None, Usage()
        ended: Any = None
        graph = self._graphs.get(str(metadata.get("agent")), self._graph)
        run_id = metadata.get("turn_id")
        subgraphs = graph is not self._graph  # the team: its sub-agents report progress too
        # token streaming costs a callback per chunk: only when someone reads the partials
        modes: Any = ["checkpoints", "updates", *(["messages"] if on_partial else [])]
        stream: Any = graph.astream(graph_input, config, stream_mode=modes, subgraphs=subgraphs)
        saver = graph.checkpointer if isinstance(graph.checkpointer, PooledPostgresSaver) else None
        try:
            try:
                async for item in stream:
                    namespace, mode, chunk = item if subgraphs else ((), *item)
                    if mode == "updates":
                        usage += _usage(chunk)  # every agent's model calls, sub-agents' too
                        if interrupts := chunk.get("__interrupt__"):
                            pause = pause or interrupts[0].value
                        elif on_status is not None and (status := _status(chunk, namespace)) is not None:
                            await on_status(status or None)
                    elif namespace:
                        continue  # a sub-agent's own steps: only the coordinator speaks to the user
                    elif mode == "checkpoints":
                        ended = chunk
                        last = chunk["config"]["configurable"]["checkpoint_id"]
                        messages = chunk["values"].get("messages") or []
                        final = messages[-1] if messages else None
                    elif (text := _partial(chunk[0], partial)) is not None:
                        partial = text
                        if on_partial is not None and partial:
                            await on_partial(partial)
            except BaseException:
                if saver is not None:
                    saver.discard(str(key))  # a failed or cancelled run's branch is abandoned
                raise
            if saver is not None:
                await saver.flush(str(key))  # e.g. an interrupt's writes, stored before anything reports
        except (BacktrackError, asyncio.CancelledError, *STORAGE_ERRORS):
            raise
        except Exception as exc:  # the model or the graph failed: the turn is abandoned
            _log.warning("turn on %s failed: %r", key, exc, exc_info=True)
            raise AgentFailed() from exc
        if last is None:
            raise AgentFailed()
        if pause is not None:
            return RunResult(checkpoint_id=last, answer=None, pause=pause, usage=usage, run_id=run_id)
        if not isinstance(final, AIMessage):
            raise AgentFailed()
        if saver is not None:
            saver.keep_window(ended["config"], ended["values"]["messages"])  # the next turn starts here
        return RunResult(checkpoint_id=last, answer=final.text, usage=usage, run_id=run_id)


def _usage(update: dict[str, Any]) -> Usage:
    """The tokens of the model replies in one step's update."""
    total = Usage()
    for values in update.values():
        messages = values.get("messages") if isinstance(values, dict) else None
        for message in messages if isinstance(messages, list) else ():
            if isinstance(message, AIMessage):
                total += usage_of(message)
    return total


_WORKING = {agent: delegation for delegation, agent in DELEGATIONS.items()}


def _status(update: dict[str, Any], namespace: tuple[str, ...] = ()) -> str | None:
    """From one node's update: the tool about to run, "" once tools have answered, else None.

    Inside a sub-agent (``namespace`` names it, "researcher:<task id>") its tools show as
    they run, and between them the delegation itself ("research") rather than "".
    """
    status = _tool_status(update)
    if status == "" and namespace:
        return _WORKING.get(namespace[0].split(":")[0], "")
    return status


def _tool_status(update: dict[str, Any]) -> str | None:
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
