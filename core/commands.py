"""The command table every adapter shares, and the one place errors become user text.

Adapters decide where a command comes from (a slash command, ``!history`` in a Slack
thread, a console line); parsing its argument, running it and wording the reply happen
here, so ``/rewind 2`` means the same thing and says the same thing everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import BacktrackError, InvalidInput, StaleApproval

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.service import Audit, ConversationService
    from core.types import RewindResult, Turn

__all__ = [
    "COMMANDS",
    "SORRY",
    "Command",
    "format_audit",
    "format_history",
    "format_rewind",
    "parse_command",
    "preview",
    "run_command",
    "user_message",
]

SORRY = "Sorry, something went wrong."
"""What a user sees for an unexpected failure, on every platform; the details go to the log."""

COMMANDS = ("history", "rewind", "forget", "approve", "reject")
_PREVIEW = 80


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


def preview(text: str, limit: int = _PREVIEW) -> str:
    """One line of at most ``limit`` characters, for listings and notices."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def format_turn(turn: Turn) -> str:
    who = f" ({turn.user})" if turn.user else ""
    return f"{turn.index}. {preview(turn.question)}{who} → {preview(turn.answer)}"


def format_history(turns: list[Turn]) -> str:
    if not turns:
        return "This conversation has no turns on its current branch."
    return "\n".join(format_turn(t) for t in turns)


def format_rewind(result: RewindResult) -> str:
    n = len(result.removed)
    lines = [f"Rewound {n} turn{'s' if n != 1 else ''}. Left the live branch (still kept for audit):"]
    lines += [f"  {format_turn(t)}" for t in result.removed]
    if result.head is None:
        lines.append("The conversation is now back at its start.")
    else:
        lines.append(f"It now ends with: {format_turn(result.head)}")
    return "\n".join(lines)


def format_audit(audit: Audit) -> str:
    """Every branch: live turns marked ``*``, each turn's fork point, and who rewound when."""
    if not audit.turns:
        return "This conversation has no turns yet."
    index = {b.turn.checkpoint_id: b.turn.index for b in audit.turns}
    lines = ["Every turn on every branch (* = live branch):"]
    for b in audit.turns:
        after = index.get(b.parent_checkpoint_id or "", 0)
        fork = f" [after turn {after}]" if b.turn.index != after + 1 or not b.live else ""
        lines.append(f"{'*' if b.live else ' '} {format_turn(b.turn)}{fork} @{b.turn.checkpoint_id}")
    for r in audit.rewinds:
        start = index.get(r.from_checkpoint_id or "", 0)
        end = index.get(r.to_checkpoint_id or "", 0)
        who = r.user or "someone"
        lines.append(f"Rewound by {who} at {r.at:%Y-%m-%d %H:%M} from turn {start} to turn {end}")
    return "\n".join(lines)


async def run_command(
    service: ConversationService, key: ThreadKey, command: Command, user: str | None
) -> str:
    if command.name == "history":
        if command.argument.strip() == "--all":
            return format_audit(await service.audit(key))
        limit = command.count(10, what="turns to show")
        return format_history(await service.history(key, limit))
    if command.name in ("approve", "reject"):
        pending = await service.pending(key)
        if pending is None:
            raise StaleApproval("Nothing here is waiting for approval.")
        answer = await service.resolve(key, pending.id, command.name == "approve", user=user)
        return answer.text
    if command.name == "rewind":
        steps = command.count(1, what="turns to go back")
        return format_rewind(await service.rewind(key, steps, user=user))
    if command.name == "forget":
        await service.forget(key)
        return "Forgot this conversation: every turn and checkpoint of it is deleted."
    raise InvalidInput(f"unknown command /{command.name}")


def user_message(error: BacktrackError) -> str:
    """What a chat user sees for an error: short, no internals."""
    text = error.message
    return text[:1].upper() + text[1:] if text else "Something went wrong."
