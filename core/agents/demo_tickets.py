"""The bundled demo MCP server: a small ticket tracker that ``make run`` connects (``mcp.demo.json``).

It exists so the offline demo shows an MCP tool end to end with the official SDK: the
read-only tools (``list_tickets``, ``lookup_ticket``) say so in their annotations and run at
once, while ``create_ticket`` has a side effect, so backtrack's policy asks a person first
(``/approve`` or ``/reject``) and a replay reuses its recorded result instead of filing it
twice. Tickets are lines of a text file (``TICKETS_FILE``, default
``.backtrack/demo-tickets.txt``), so what it did outlives a restart and can be checked.

``python -m core.agents.demo_tickets`` speaks MCP over stdio.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

__all__ = ["server"]

server = FastMCP("demo", log_level="WARNING")


def _file() -> Path:
    return Path(os.environ.get("TICKETS_FILE") or ".backtrack/demo-tickets.txt")


def _tickets() -> list[str]:
    try:
        return _file().read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def list_tickets() -> str:
    """List the open tickets of the team's tracker."""
    tickets = _tickets()
    if not tickets:
        return "There are no tickets yet."
    return "\n".join(f"#{n}: {title}" for n, title in enumerate(tickets, 1))


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def lookup_ticket(number: int) -> str:
    """Look up one ticket by its number."""
    tickets = _tickets()
    if not 1 <= number <= len(tickets):
        return f"There is no ticket #{number} (there are {len(tickets)})."
    return f"Ticket #{number}: {tickets[number - 1]} (open)"


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False))
def create_ticket(title: str) -> str:
    """Create a ticket in the team's tracker."""
    title = " ".join(title.split())[:200] or "Untitled"
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(title + "\n")
    return f"Created ticket #{len(_tickets())}: {title}"


if __name__ == "__main__":
    server.run("stdio")
