"""The baseline: the graph most tutorials show, on LangGraph's savers as they come.

Same shape as backtrack's agent (model → tools → model, trimmed to the same context
window), but with a plain ``add_messages`` state, so every checkpoint re-serialises the
whole message list. History and rewind go through ``aget_state_history`` the way the
tutorials do time travel. Run on ``InMemorySaver`` it is the benchmark's ceiling; on
``AsyncPostgresSaver.from_conn_string`` it is the configuration the issue measured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

from core.agents.agent import SYSTEM_PROMPT
from core.agents.tools import build_tools

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from langchain_core.language_models import BaseChatModel
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.types import StateSnapshot

    from core.settings import Settings

__all__ = ["NaiveChat"]

_REWIND_WALK = 16


class NaiveState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_naive_graph(
    settings: Settings, checkpointer: BaseCheckpointSaver[Any], model: BaseChatModel
) -> CompiledStateGraph[Any, Any, Any, Any]:
    tools = build_tools(settings)
    llm = model.bind_tools(tools)
    budget = settings.context_tokens

    async def agent(state: NaiveState) -> dict[str, list[AnyMessage]]:
        window = trim_messages(
            state["messages"],
            max_tokens=budget,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
            allow_partial=False,
        )
        return {"messages": [await llm.ainvoke([SystemMessage(SYSTEM_PROMPT), *window])]}

    graph = StateGraph(NaiveState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=True))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


class NaiveChat:
    """One system under test: conversations are LangGraph threads, addressed by name."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        checkpointer: BaseCheckpointSaver[Any],
        model: BaseChatModel,
    ) -> None:
        self.name = name
        self._graph = build_naive_graph(settings, checkpointer, model)
        self._heads: dict[str, str] = {}
        """A rewound conversation's next turn starts from this checkpoint."""

    def _config(self, conversation: str) -> dict[str, Any]:
        configurable = {"thread_id": conversation}
        if head := self._heads.get(conversation):
            configurable["checkpoint_id"] = head
        return {"configurable": configurable, "recursion_limit": 25}

    async def ask(self, conversation: str, text: str) -> str:
        config: Any = self._config(conversation)
        state = await self._graph.ainvoke({"messages": [HumanMessage(text)]}, config)
        self._heads.pop(conversation, None)
        final = state["messages"][-1]
        assert isinstance(final, AIMessage)
        return final.text

    def _walk(self, conversation: str, limit: int | None = None) -> AsyncIterator[StateSnapshot]:
        """The conversation's checkpoints from its head backwards, the tutorial way."""
        thread: Any = {"configurable": {"thread_id": conversation}}
        head = self._heads.get(conversation)
        if head is None:
            return self._graph.aget_state_history(thread, limit=limit)
        before: Any = {"configurable": {"thread_id": conversation, "checkpoint_id": head}}
        return self._graph.aget_state_history(thread, before=before, limit=limit)

    async def history(self, conversation: str, limit: int = 10) -> list[str]:
        """The questions in the last ``limit`` checkpoints."""
        seen: list[str] = []
        async for snapshot in self._walk(conversation, limit):
            for message in snapshot.values.get("messages", []):
                if isinstance(message, HumanMessage) and message.text not in seen:
                    seen.append(message.text)
        return seen[-limit:]

    async def rewind(self, conversation: str) -> None:
        """Move back one turn: to the end of the turn before the current one."""
        ends = 1 if conversation in self._heads else 0  # the head itself is not listed
        # a turn is at most a handful of checkpoints; an unlimited walk would load them all
        async for snapshot in self._walk(conversation, _REWIND_WALK):
            if not snapshot.next and snapshot.metadata and snapshot.metadata.get("source") == "loop":
                ends += 1
                if ends == 2:
                    self._heads[conversation] = snapshot.config["configurable"]["checkpoint_id"]
                    return
        raise ValueError(f"{conversation} has no earlier turn")
