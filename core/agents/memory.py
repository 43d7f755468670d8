"""Long-term memory as the agents use it: ``remember`` / ``forget`` tools and the prompt block.

The memory itself lives behind ``MemoryBook`` (``core/conversations/memory.py``, over
LangGraph's ``AsyncPostgresStore``): agents know nothing of storage. A write is a tool call,
so it is a checkpoint like every other step, and the book ties it to the turn that made
it; what a person is remembered by is read once per model call into the system prompt,
under "What you know about <name>", bounded in size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool

__all__ = ["MemoryBook", "memory_tools", "with_memory"]


class MemoryBook(Protocol):
    async def block(self, config: RunnableConfig) -> list[str]:
        """What is remembered about the asker of this run, one line each (bounded)."""
        ...

    async def write(self, config: RunnableConfig, topic: str, fact: str | None) -> str:
        """Remember ``fact`` under ``topic`` for the asker (None: forget the topic)."""
        ...


def memory_tools(book: MemoryBook | None) -> list[BaseTool]:
    if book is None:
        return []

    async def remember(config: RunnableConfig, topic: str, fact: str) -> str:
        return await book.write(config, topic, fact)

    async def forget(config: RunnableConfig, topic: str) -> str:
        return await book.write(config, topic, None)

    return [
        StructuredTool.from_function(
            coroutine=remember, name="remember",
            description="Remember a lasting fact about the person asking, under a short topic "
                        "(e.g. topic 'team', fact 'works on the payments team'). A new fact replaces "
                        "the old one of that topic.",
        ),
        StructuredTool.from_function(
            coroutine=forget, name="forget",
            description="Forget what is remembered about the person asking under this topic.",
        ),
    ]


async def with_memory(
    book: MemoryBook | None, config: RunnableConfig, system: str, messages: Sequence[AnyMessage]
) -> str:
    """``system`` with the asker's memories after it (the tools' descriptions say when to write)."""
    if book is None:
        return system
    lines = await book.block(config)
    asker = next((m.name for m in reversed(messages) if isinstance(m, HumanMessage) and m.name), None)
    if not lines:  # the prompt stays the persona as written until there is something to know
        return system
    return f"{system}\n\nWhat you know about {asker or 'the person asking'}:\n" + "\n".join(lines)
