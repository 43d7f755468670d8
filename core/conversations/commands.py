"""The command table every adapter shares: which commands exist and how their text parses.

Adapters decide where a command comes from (a slash command, ``!history`` in a Slack
thread, a console line); ``ConversationService.run`` runs it and words the reply, so
``/rewind 2`` means the same thing and says the same thing everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidInput

__all__ = ["COMMANDS", "Command", "parse_command"]

COMMANDS = ("history", "rewind", "forget", "approve", "reject", "new", "team", "persona", "model", "usage")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str = ""

    def count(self, default: int, *, what: str) -> int:
        """The numeric argument, or a clear refusal naming what it counts."""
        arg = self.argument.strip()
        if not arg:
            return default
        if not re.fullmatch(r"[+-]?\d{1,6}", arg):
            raise InvalidInput(f"/{self.name} takes a number of {what}, e.g. /{self.name} {default}")
        return int(arg)


def parse_command(text: str, prefixes: str = "/") -> Command | None:
    """``/history 5`` → Command("history", "5"); anything else → None."""
    match = re.fullmatch(rf"\s*[{re.escape(prefixes)}]([a-z]+)(?:\s+(.*))?", text, re.DOTALL)
    if not match or match.group(1) not in COMMANDS:
        return None
    return Command(match.group(1), (match.group(2) or "").strip())
