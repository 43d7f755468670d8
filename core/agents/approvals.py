"""Tools that wait for a person: the pause is a LangGraph ``interrupt()`` inside the tool.

The interrupt is stored with the checkpoint, so a request can be approved hours later or
after a restart; resuming re-enters the tool with the person's decision.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.types import interrupt

__all__ = ["describe_request", "rejected", "rejected_by", "requiring_approval", "webhook_tool"]

_REJECTED = " rejected this action, so it was not performed. Tell the user."


def rejected(by: str) -> str:
    """What a tool returns to the model when a person rejected its call."""
    return f"{by}{_REJECTED}"


def rejected_by(result: str) -> str | None:
    """Who rejected the call whose tool returned ``result``, if it was rejected."""
    return result.removesuffix(_REJECTED) if result.endswith(_REJECTED) else None


def requiring_approval(tool: BaseTool) -> BaseTool:
    """The same tool, but it runs only after a person approves the exact arguments."""

    async def run(**kwargs: Any) -> Any:
        decision = interrupt({"tool": tool.name, "args": kwargs})
        by = decision.get("by") or "someone"
        if not decision.get("approved"):
            return rejected(by)
        return await tool.ainvoke(kwargs)

    return StructuredTool.from_function(
        coroutine=run,
        name=tool.name,
        description=f"{tool.description} (A person must approve each call.)",
        args_schema=tool.args_schema,
    )


def webhook_tool(url: str) -> BaseTool:
    """Posts a message to a webhook: Slack's and Discord's incoming webhooks both accept it."""

    async def post_to_webhook(message: str) -> str:
        """Post a message to the team's notification channel (an incoming webhook)."""
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
            url, json={"text": message, "content": message}
        ) as response:
            if response.status >= 300:
                return f"The webhook refused the message (HTTP {response.status})."
        return "Posted."

    return StructuredTool.from_function(coroutine=post_to_webhook, name="post_to_webhook")


def describe_request(tool: str, args: dict[str, Any], note: object = None) -> str:
    """The question an approval asks; ``note`` (an MCP tool's server, a repeat) goes before it."""
    shown = json.dumps(args, ensure_ascii=False, indent=None)
    said = f" {note}" if isinstance(note, str) and note else ""
    return f"The assistant wants to run `{tool}` with {shown}.{said} Approve or reject?"
