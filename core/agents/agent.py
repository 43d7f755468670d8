"""The agent graph: LLM → tools → LLM, every step a checkpoint.

Every message is stored once, as the write of the step that produced it: the message
channel is a ``DeltaChannel``, so a checkpoint holds no copy of the list and storage
grows linearly with the conversation (docs/performance.md has the numbers). The state
itself keeps only the context window the model can be sent, so loading a turn costs the
same at turn 500 as at turn 5; the whole conversation stays in the stored writes and the
turn table. What the model receives is unchanged: the window is trimmed again at call
time, oldest turns first, never splitting a tool call from its result.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, TypedDict, cast

import openai
from langchain_core.exceptions import ContextOverflowError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    trim_messages,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import _messages_delta_reducer
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from core.agents.attachments import attachment_tokens
from core.agents.demo_model import DemoChatModel
from core.agents.mcp import Binding
from core.agents.memory import memory_tools, with_memory
from core.agents.speakers import for_model
from core.agents.tools import build_tools
from core.errors import ContextTooLong, MessageTooLong
from core.records import PlaceChoice

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langchain_core.tools import BaseTool
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from core.agents.attachments import Resolve
    from core.agents.mcp import Toolbox
    from core.agents.memory import MemoryBook
    from core.settings import Settings

__all__ = [
    "SNAPSHOT_EVERY",
    "ModelStep",
    "WindowedCall",
    "build_agent",
    "build_chat_model",
    "chat_models",
    "context_overflow",
    "place_of",
    "state_schema",
    "tool_choice",
    "tool_loop",
    "window_reducer",
]

_log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are backtrack, a helpful assistant in a team chat. Answer concisely. "
    "Use web_search for facts about the world and current_datetime for the date or time."
)


SNAPSHOT_EVERY = 100
"""Message-channel updates between full snapshots: bounds how many writes a load replays."""

Reducer = Callable[[list[AnyMessage], Sequence[Any]], list[AnyMessage]]


_TOKEN_CACHE: dict[tuple[str, str, int], int] = {}
_TOKEN_CACHE_SIZE = 50_000


def _tokens(message: AnyMessage) -> int:
    """``count_tokens_approximately`` of one message, remembered by id and length.

    The reducer recounts the window on every update. This graph never edits a message
    in place or by id, so a message's count never changes once computed. Attached files
    count by what the model will read (``attachment_tokens``), never by their bytes.
    """
    if message.id is None or not isinstance(message.content, str):
        return count_tokens_approximately([message]) + attachment_tokens(message)
    key = (message.id, message.type, len(message.content))
    count = _TOKEN_CACHE.get(key)
    if count is None:
        if len(_TOKEN_CACHE) >= _TOKEN_CACHE_SIZE:
            _TOKEN_CACHE.clear()
        count = _TOKEN_CACHE[key] = count_tokens_approximately([message]) + attachment_tokens(message)
    return count


def _count(messages: list[BaseMessage]) -> int:
    """The window's size as the reducer counts it, so trimming and the reducer agree."""
    return sum(_tokens(cast("AnyMessage", m)) for m in messages)


def _fits(messages: list[AnyMessage], max_tokens: int) -> bool:
    """Whether ``trim_messages`` (last, start on human) would return ``messages`` whole."""
    return (
        bool(messages)
        and isinstance(messages[0], HumanMessage)
        and sum(_tokens(m) for m in messages) <= max_tokens
    )


_TOTALS: dict[tuple[int, str | None, str | None], int] = {}
"""A window's token total by (length, first id, last id): messages here are never edited."""


def _shape(messages: list[AnyMessage]) -> tuple[int, str | None, str | None]:
    return len(messages), messages[0].id, messages[-1].id


def _window_total(messages: list[AnyMessage]) -> int:
    if not messages:
        return 0
    total = _TOTALS.get(_shape(messages))
    return sum(_tokens(m) for m in messages) if total is None else total


def _remember_total(messages: list[AnyMessage], total: int) -> None:
    if len(_TOTALS) >= _TOKEN_CACHE_SIZE:
        _TOTALS.clear()
    if messages[0].id is not None and messages[-1].id is not None:
        _TOTALS[_shape(messages)] = total


def _appended(state: list[AnyMessage], merged: list[AnyMessage]) -> bool:
    """Whether ``merged`` is ``state`` with messages added at the end (what this graph writes)."""
    return bool(merged) and len(merged) >= len(state) and (not state or merged[len(state) - 1] is state[-1])


def window_reducer(max_tokens: int) -> Reducer:
    """Append like ``add_messages``, then drop what ``trim_messages`` could never send.

    Keeps the longest suffix that starts on a human message and counts at most
    ``max_tokens``: the approximate count is a per-message sum, so this is exactly what
    the agent's ``trim_messages`` would send, and the agent skips trimming when it fits.
    With no such suffix (one huge message), it keeps everything from the last human
    message and the agent's trim decides. A kept suffix of ``a + b`` always lies within the kept suffix
    of ``a`` followed by ``b``, so the reducer is batching-invariant, as ``DeltaChannel``
    requires, for the append-only writes this graph makes.
    """

    def reduce(state: list[AnyMessage], writes: Sequence[Any]) -> list[AnyMessage]:
        merged = _messages_delta_reducer(state, list(writes))
        if _appended(state, merged) and isinstance(merged[0], HumanMessage):
            total = _window_total(state) + sum(_tokens(m) for m in merged[len(state):])
            if total <= max_tokens:  # the common case: it all fits, nothing to count again
                _remember_total(merged, total)
                return merged
        humans = [i for i, m in enumerate(merged) if isinstance(m, HumanMessage)]
        if not humans:
            return merged
        start, total, counted = humans[-1], 0, len(merged)
        for i in reversed(humans):
            total += sum(_tokens(m) for m in merged[i:counted])
            if total > max_tokens:
                break
            start, counted = i, i
        return merged[start:] if start else merged

    return reduce


def state_schema(settings: Settings) -> type[Any]:
    """The conversation's state: the message window, each message stored once (``DeltaChannel``)."""
    channel: DeltaChannel[list[AnyMessage]] = DeltaChannel(
        window_reducer(settings.context_tokens), snapshot_frequency=SNAPSHOT_EVERY
    )
    return TypedDict(  # type: ignore[operator, no-any-return]
        "AgentState", {"messages": Annotated[list[AnyMessage], channel]}
    )


_OVERFLOW = re.compile(
    r"exceeds? (?:the )?(?:available )?context|context_length_exceeded|maximum context length"
    r"|exceed context window|context window exceeded|prompt is too long",
    re.IGNORECASE,
)
_LIMIT = re.compile(r"(?:context (?:length|window|size)\D{0,12}|n_ctx\D{0,3})(\d+)", re.IGNORECASE)


def context_overflow(exc: BaseException) -> tuple[bool, int | None]:
    """Whether the model server refused the request as too long, and its context size if it said.

    langchain-openai recognises OpenAI's wording; llama-server ("exceeds the available
    context size", with ``n_ctx`` in the body), llama-cpp-python and vLLM word it their own way.
    """
    if isinstance(exc, ContextOverflowError):
        overflow = True
    elif isinstance(exc, openai.BadRequestError):
        overflow = bool(_OVERFLOW.search(f"{exc.message} {exc.body}"))
    else:
        return False, None
    if not overflow:
        return False, None
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("n_ctx"), int):
        return True, body["n_ctx"]
    found = _LIMIT.search(str(exc))
    return True, int(found.group(1)) if found else None


def build_chat_model(settings: Settings, name: str | None = None) -> BaseChatModel:
    """The model ``name`` (default BACKTRACK_MODEL); the offline demo model ignores the name."""
    if settings.offline_model:
        return DemoChatModel()
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
    return ChatOpenAI(
        model=name or settings.model,
        stream_usage=True,  # the token counts of streamed answers (core/storage/usage.py)
        api_key=key,  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        streaming=True,
    )


class WindowedCall:
    """The model call every agent node makes: the window trimmed to the budget, overflow typed.

    One per graph: a server that refuses the conversation as too long is reported to the
    operator once per graph (process), later refusals only at DEBUG.
    """

    def __init__(self, budget: int, resolve: Resolve | None = None) -> None:
        self.budget = budget
        self._resolve = resolve
        self._reported = False

    async def __call__(
        self, llm: Runnable[Any, Any], system: str, messages: list[AnyMessage], model: str
    ) -> AIMessage:
        """One model call; ``model`` names the model ``llm`` calls (which files it may be sent)."""
        budget = self.budget
        window: list[BaseMessage] = list(messages) if _fits(messages, budget) else trim_messages(
            messages,
            max_tokens=budget,
            token_counter=_count,
            strategy="last",
            start_on="human",
            allow_partial=False,
        )
        if not window and messages:  # the newest message alone is over the budget: never answer blind
            newest = messages[-1]
            raise MessageTooLong(_count([newest]), budget, from_tool=not isinstance(newest, HumanMessage))
        if self._resolve is not None:  # files reach the model only here, never the checkpoint
            window = await self._resolve(window, model)
        try:
            reply: AIMessage = await llm.ainvoke([SystemMessage(system), *for_model(window)])
        except (ContextOverflowError, openai.BadRequestError) as exc:
            overflow, limit = context_overflow(exc)
            if not overflow:
                raise
            self._report_overflow(limit)
            raise ContextTooLong() from exc
        return reply

    def _report_overflow(self, limit: int | None) -> None:
        """Tell the operator once what to change; later overflows only at DEBUG."""
        server = f"{limit} tokens" if limit else "smaller (it did not say how small)"
        _log.log(
            logging.DEBUG if self._reported else logging.WARNING,
            "the model server refused a conversation as longer than its context: "
            "BACKTRACK_CONTEXT_TOKENS is %d, the server's context is %s; set "
            "BACKTRACK_CONTEXT_TOKENS below the server's context (leave room for the answer and the tools)",
            self.budget, server,
        )
        self._reported = True


def place_of(config: RunnableConfig, settings: Settings) -> PlaceChoice:
    """The place settings a run was started with (``configurable.place``), with an allowed model."""
    place = config.get("configurable", {}).get("place")
    if not isinstance(place, PlaceChoice):
        return PlaceChoice(settings.model)
    return place if place.model in settings.allowed_models else replace(place, model=settings.model)


def build_agent(
    settings: Settings,
    checkpointer: BaseCheckpointSaver[Any],
    model: BaseChatModel | None = None,
    tools: list[BaseTool] | None = None,
    resolve: Resolve | None = None,
    toolbox: Toolbox | None = None,
    memory: MemoryBook | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph; ``resolve`` turns stored file references into content parts for each model call,
    ``toolbox`` adds the place's MCP tools, ``memory`` what is remembered about the asker."""
    tools = (build_tools(settings) if tools is None else tools) + memory_tools(memory)
    binding = Binding(chat_models(settings, model), tools, tool_choice(settings), toolbox)
    call = WindowedCall(settings.context_tokens, resolve)

    async def agent(state: Any, config: RunnableConfig) -> dict[str, list[AnyMessage]]:
        place, messages = place_of(config, settings), state["messages"]
        llm = await binding.model(place.model, place)
        system = await with_memory(memory, config, place.persona or SYSTEM_PROMPT, messages)
        return {"messages": [await call(llm, system, messages, place.model)]}

    return tool_loop(settings, "agent", agent, tools, toolbox).compile(checkpointer=checkpointer)


def chat_models(settings: Settings, model: BaseChatModel | None) -> dict[str, BaseChatModel]:
    """One chat model per allowed name, built once; a test's ``model`` stands in for all."""
    return {name: model or build_chat_model(settings, name) for name in settings.allowed_models}


def tool_choice(settings: Settings) -> dict[str, Any]:
    return {} if settings.tool_choice == "omit" else {"tool_choice": settings.tool_choice}


ModelStep = Callable[..., Awaitable[dict[str, list[AnyMessage]]]]
"""A graph node that calls the model: the state (and its config) in, the model's reply as an update out."""


def tool_loop(
    settings: Settings, name: str, step: ModelStep, tools: list[BaseTool], toolbox: Toolbox | None = None,
) -> StateGraph[Any, Any, Any, Any]:
    """``step`` ⇄ its tools until it answers: the single agent's shape, and each sub-agent's.
    The MCP tools (``toolbox``) change while the bot runs, so they are found at call time."""
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(state_schema(settings))
    graph.add_node(name, step)
    wrap = toolbox.wrap if toolbox is not None else None
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=True, awrap_tool_call=wrap))
    graph.add_edge(START, name)
    graph.add_conditional_edges(name, tools_condition, ["tools", END])
    graph.add_edge("tools", name)
    return graph
