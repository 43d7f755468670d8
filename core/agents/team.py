"""Team mode: a coordinator that hands work to a researcher and an analyst.

::

    question ─▶ coordinator ──research(task)──▶ researcher ⟲ web_search, current_datetime
                    ▲  │                              │ (its own graph, checkpoint_ns "researcher:<task>")
                    │  └──analyse(task)──▶ analyst ⟲ calculator
                    │                         │ (its own graph, checkpoint_ns "analyst:<task>")
                    └──── the report, as the delegation's tool result ◀┘
                 answer ◀─ coordinator

Each sub-agent is a compiled graph of its own, invoked by the root node that bears its name,
so LangGraph keeps its every step under ``checkpoint_ns = "<agent>:<task id>"`` (the first
segment is the agent's name) and an ``interrupt`` inside it pauses the whole team turn and
resumes it, after a restart too, through the root checkpoint. The root state is the single
agent's (``core.agents.agent.state_schema``), so a conversation switches modes between turns and
history, rewind and replay read it unchanged. The root holds only the coordinator's side: the
delegation (a tool call), each sub-agent's final report (its tool result) and the answer; a
sub-agent's searches and reasoning stay in its namespace and never enter the root window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph

from core.agents.agent import (
    ModelStep,
    WindowedCall,
    chat_models,
    place_of,
    state_schema,
    tool_choice,
    tool_loop,
)
from core.agents.calculator import calculator_tool
from core.agents.mcp import Binding
from core.agents.memory import with_memory
from core.agents.tools import build_tools, gated

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import RunnableConfig
    from langchain_core.tools import BaseTool
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

    from core.agents.attachments import Resolve
    from core.agents.mcp import Toolbox
    from core.agents.memory import MemoryBook
    from core.settings import Settings

__all__ = ["AGENTS", "DELEGATIONS", "build_team", "team_limit_notice"]

COORDINATOR_PROMPT = (
    "You are the coordinator of backtrack's team, a helpful assistant in a team chat. Answer "
    "concisely. Answer directly what needs no facts. For facts about the world or the current "
    "date, call research with a task for the researcher; to compute or compare what was found, "
    "call analyse with a task for the analyst. Then write the final answer and name its sources."
)
RESEARCHER_PROMPT = (
    "You are the researcher of backtrack's team. Gather the facts your task asks for with "
    "web_search (search several times if needed) and current_datetime. Reply with the facts "
    "and, for each, its source."
)
ANALYST_PROMPT = (
    "You are the analyst of backtrack's team. You have no web access: reason over the findings "
    "you are given and use calculator for arithmetic. Reply with your analysis and the numbers "
    "it rests on."
)
_PERSONA = "\n\nHow to speak to the people here (this place's persona, set by its admins): "
_LIMIT_NOTE = " The step limit for this question is reached: use no tools, answer now with what you have."

DELEGATIONS = {"research": "researcher", "analyse": "analyst"}
"""The coordinator's tools, by the agent each one hands work to."""
AGENTS = ("coordinator", *DELEGATIONS.values())


def _delegation_tool(name: str, agent: str, what: str) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name,
        "description": f"Hand a task to the {agent}, who {what}. Returns the {agent}'s report.",
        "parameters": {"type": "object", "required": ["task"], "properties": {
            "task": {"type": "string", "description": f"What the {agent} should do, self-contained."},
        }},
    }}


_COORDINATOR_TOOLS = [
    _delegation_tool("research", "researcher", "searches the web and gives sources"),
    _delegation_tool("analyse", "analyst", "reasons and calculates over the research (no web access)"),
]


def team_limit_notice(steps: int) -> str:
    """Appended to a team answer the step limit cut short (``BACKTRACK_TEAM_MAX_STEPS``)."""
    return (
        f"(The team stopped after {steps} delegated step{'s' if steps != 1 else ''}, its limit "
        "for one question; this answer is what it had found by then.)"
    )


Update = dict[str, list[AnyMessage]]


class _ConfiguredStep(Protocol):
    async def __call__(self, state: Any, config: RunnableConfig) -> Update: ...


def _this_turn(messages: Sequence[AnyMessage]) -> Sequence[AnyMessage]:
    """The messages since the last human one: what this question has produced so far."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return messages[i:]
    return messages


def _rounds(messages: Sequence[AnyMessage]) -> int:
    """Tool calls made for this question: each delegation (or sub-agent tool call) is a step."""
    return sum(len(m.tool_calls) for m in _this_turn(messages) if isinstance(m, AIMessage))


def _pending_call(messages: Sequence[AnyMessage]) -> dict[str, Any] | None:
    """The first tool call of the last model message that has no result yet."""
    last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    if last is None:
        return None
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    return next((dict(c) for c in last.tool_calls if c["id"] not in answered), None)


Models = tuple[Binding, dict[str, "BaseChatModel"]]
"""An agent's models: with its tools (and the place's MCP tools) bound, and bare, per name."""


def _models(
    settings: Settings, model: BaseChatModel | None, tools: Sequence[Any], toolbox: Toolbox | None = None
) -> Models:
    """Built once per agent; a test's ``model`` stands in for every name."""
    chats = chat_models(settings, model)
    return Binding(chats, tools, tool_choice(settings), toolbox), chats


def _thinker(
    call: WindowedCall, models: Models, prompt: str, settings: Settings, *, speaks: bool = False,
    memory: MemoryBook | None = None,
) -> ModelStep:
    """An agent's model step on the place's model; past the step limit it gets no tools and must
    answer. The agent that ``speaks`` to the people (the coordinator) also gets the place's persona."""
    limit = settings.team_max_steps

    async def think(state: Any, config: RunnableConfig) -> Update:
        place = place_of(config, settings)
        binding, chats = models
        tooled, bare = await binding.model(place.model, place), chats[place.model]
        messages: list[AnyMessage] = state["messages"]
        over = _rounds(messages) >= limit
        system = prompt + (f"{_PERSONA}{place.persona}" if speaks and place.persona else "")
        if speaks:  # the coordinator knows what is remembered about the asker (it cannot write)
            system = await with_memory(memory, config, system, messages)
        if over:
            tooled, system = bare, system + _LIMIT_NOTE
        reply = await call(tooled, system, messages, place.model)
        return {"messages": [reply]}

    return think


def _sub_agent(
    name: str, prompt: str, tools: list[BaseTool], call: WindowedCall, model: BaseChatModel | None,
    settings: Settings, toolbox: Toolbox | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A sub-agent: model ⇄ tools (with the place's MCP tools). Compiled without a
    checkpointer, it inherits the team's."""
    think = _thinker(call, _models(settings, model, tools, toolbox), prompt, settings)
    return tool_loop(settings, "model", think, tools, toolbox).compile(name=name)


def _brief(delegation: str, task: str, messages: Sequence[AnyMessage]) -> str:
    """What a sub-agent starts from: its task, the user's question, for the analyst the findings."""
    turn = _this_turn(messages)
    question = turn[0].text if turn and isinstance(turn[0], HumanMessage) else ""
    brief = f"{task}\n\nThe user's question: {question}"
    if delegation == "analyse":
        found = [m.text for m in turn if isinstance(m, ToolMessage) and m.name == "research"]
        brief += "\n\nWhat the researcher found:\n" + ("\n\n".join(found) or "(nothing yet)")
    return brief


def _delegate(
    delegation: str, agent: CompiledStateGraph[Any, Any, Any, Any]
) -> _ConfiguredStep:
    """The root node that runs ``agent`` on the pending delegation and returns its report."""

    async def run(state: Any, config: RunnableConfig) -> Update:
        messages: list[AnyMessage] = state["messages"]
        call = _pending_call(messages)
        assert call is not None and call["name"] == delegation
        brief = _brief(delegation, str(call["args"].get("task") or ""), messages)
        result = await agent.ainvoke({"messages": [HumanMessage(brief)]}, config)
        report = result["messages"][-1].text or f"The {DELEGATIONS[delegation]} had nothing to report."
        return {"messages": [ToolMessage(report, tool_call_id=call["id"], name=delegation)]}

    return run


async def _unknown(state: Any) -> Update:
    """A tool call that names no team member gets a result saying so (a model's slip)."""
    call = _pending_call(state["messages"])
    assert call is not None
    text = f"There is no {call['name']!r} in the team: call research or analyse, or answer."
    return {"messages": [ToolMessage(text, tool_call_id=call["id"], name=str(call["name"]), status="error")]}


def _next(state: Any, done: str) -> str:
    """Who runs next: the member of the next unanswered delegation, else ``done``."""
    call = _pending_call(state["messages"])
    if call is None:
        return done
    return DELEGATIONS.get(call["name"], "unknown")


def _after_coordinator(state: Any) -> str:
    return _next(state, END)


def _after_member(state: Any) -> str:
    return _next(state, "coordinator")


def build_team(
    settings: Settings,
    checkpointer: BaseCheckpointSaver[Any],
    model: BaseChatModel | None = None,
    tools: list[BaseTool] | None = None,
    resolve: Resolve | None = None,
    toolbox: Toolbox | None = None,
    memory: MemoryBook | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The team graph; ``tools`` replaces the researcher's (web search, current date); both
    members also get the place's MCP tools (``toolbox``), under the same policies.

    ``resolve`` gives every agent the files, as in the single agent (core/agents/agent.py).
    """
    call = WindowedCall(settings.context_tokens, resolve)
    limit = settings.team_max_steps
    found = build_tools(settings) if tools is None else tools
    # no side effects in team mode, and the arithmetic is the analyst's
    research_tools = [t for t in found if t.name not in ("post_to_webhook", "calculator")]
    analyst_tools = gated([calculator_tool()], settings)
    members = {
        "research": _sub_agent("researcher", RESEARCHER_PROMPT, research_tools, call, model, settings,
                               toolbox),
        "analyse": _sub_agent("analyst", ANALYST_PROMPT, analyst_tools, call, model, settings, toolbox),
    }
    coordinating = _models(settings, model, _COORDINATOR_TOOLS)
    think = _thinker(call, coordinating, COORDINATOR_PROMPT, settings, speaks=True, memory=memory)

    async def coordinator(state: Any, config: RunnableConfig) -> Update:
        reply = (await think(state, config))["messages"][0]
        if _rounds(state["messages"]) >= limit and isinstance(reply, AIMessage):
            text = f"{reply.text}\n\n{team_limit_notice(limit)}".lstrip()
            reply = reply.model_copy(update={"content": text})
        return {"messages": [reply]}

    graph = StateGraph(state_schema(settings))
    graph.add_node("coordinator", coordinator)
    graph.add_node("unknown", _unknown)
    for delegation, agent in members.items():
        graph.add_node(DELEGATIONS[delegation], _delegate(delegation, agent))
    nodes = [*DELEGATIONS.values(), "unknown"]
    for node in nodes:
        graph.add_conditional_edges(node, _after_member, [*nodes, "coordinator"])
    graph.add_edge(START, "coordinator")
    graph.add_conditional_edges("coordinator", _after_coordinator, [*nodes, END])
    return graph.compile(checkpointer=checkpointer)
