"""The agent's tools: web search, the current date and time, and the calculator.

Web search uses Tavily when ``TAVILY_API_KEY`` is set: it is built for LLM agents (it
returns extracted page text, not links to scrape) and has a maintained LangChain
integration. Without a key it answers from the small bundled fact table, so the demo
and the tests run offline.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, tool

from core.agents.approvals import requiring_approval, webhook_tool
from core.agents.calculator import calculator_tool

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["build_tools", "current_datetime", "gated", "lookup_fact"]


@cache
def facts() -> dict[str, dict[str, str]]:
    raw = json.loads(resources.files("core.agents.data").joinpath("facts.json").read_text("utf-8"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def lookup_fact(query: str) -> str | None:
    """Best offline match for a query: an entity named in it, and a topic word."""
    words = set(re.findall(r"[a-z]+", query.lower()))
    for entity, topics in facts().items():
        if entity.lower() in words:
            for topic, fact in topics.items():
                if topic in words:
                    return fact
            return " ".join(topics.values())
    return None


@tool
def current_datetime() -> str:
    """Return the current date and time in UTC (ISO 8601)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _offline_search_tool() -> BaseTool:
    @tool("web_search")
    def web_search(query: str) -> str:
        """Search the web for current facts. Use it for questions about the world."""
        return lookup_fact(query) or (
            "No result in the offline fact table. Set TAVILY_API_KEY for real web search."
        )

    return web_search


def _tavily_search_tool(api_key: str) -> BaseTool:
    from langchain_tavily import TavilySearch

    search: Any = TavilySearch(max_results=5, tavily_api_key=api_key)
    search.name = "web_search"
    return search  # type: ignore[no-any-return]


def build_tools(settings: Settings) -> list[BaseTool]:
    key = settings.tavily_api_key
    search = _tavily_search_tool(key.get_secret_value()) if key else _offline_search_tool()
    tools = [search, current_datetime, calculator_tool()]
    if settings.webhook_url:
        tools.append(webhook_tool(settings.webhook_url))
    return gated(tools, settings)


def gated(tools: list[BaseTool], settings: Settings) -> list[BaseTool]:
    """``tools``, each named in ``BACKTRACK_APPROVAL_TOOLS`` waiting for a person's approval."""
    return [requiring_approval(t) if t.name in settings.approval_tools else t for t in tools]
