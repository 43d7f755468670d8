"""The command table every adapter shares: which commands exist and how their text parses.

Adapters decide where a command comes from (a slash command, ``!history`` in a Slack
thread, a console line); ``ConversationService.run`` runs it and words the reply, so
``/rewind 2`` means the same thing and says the same thing everywhere.
"""

from __future__ import annotations

import re

from core.types import Command

__all__ = ["COMMANDS", "parse_command"]

COMMANDS = (
    "history", "rewind", "edit", "retry", "branch", "forget", "approve", "reject", "new", "team", "persona",
    "model", "tools", "memory", "usage", "help",
)


def parse_command(text: str, prefixes: str = "/") -> Command | None:
    """``/history 5`` → Command("history", "5"); anything else → None."""
    match = re.fullmatch(rf"\s*[{re.escape(prefixes)}]([a-z]+)(?:\s+(.*))?", text, re.DOTALL)
    if not match or match.group(1) not in COMMANDS:
        return None
    return Command(match.group(1), (match.group(2) or "").strip())
