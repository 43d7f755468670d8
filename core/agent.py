"""The agent graph: LLM → tools → LLM, every step a checkpoint.

The full message list is stored; only what is sent to the LLM is trimmed to the
context window, oldest turns first, never splitting a tool call from its result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, SystemMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from core.demo_model import DemoChatModel
from core.tools import build_tools

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from core.settings import Settings

__all__ = ["AgentState", "build_agent", "build_chat_model"]

SYSTEM_PROMPT = (
    "You are backtrack, a helpful assistant in a team chat. Answer concisely. "
    "Use web_search for facts about the world and current_datetime for the date or time."
)


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_chat_model(settings: Settings) -> BaseChatModel:
    if settings.offline_model:
        return DemoChatModel()
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
    return ChatOpenAI(
        model=settings.model,
        api_key=key,  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        streaming=True,
    )


def build_agent(
    settings: Settings,
    checkpointer: BaseCheckpointSaver[Any],
    model: BaseChatModel | None = None,
    tools: list[BaseTool] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    tools = build_tools(settings) if tools is None else tools
    llm = (model or build_chat_model(settings)).bind_tools(tools)
    budget = settings.context_tokens

    async def agent(state: AgentState) -> dict[str, list[AnyMessage]]:
        window = trim_messages(
            state["messages"],
            max_tokens=budget,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
            allow_partial=False,
        )
        reply = await llm.ainvoke([SystemMessage(SYSTEM_PROMPT), *window])
        return {"messages": [reply]}

    graph = StateGraph(AgentState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=True))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)
