"""The shared command table's verbs: what ``/history``, ``/rewind``, ``/team``… do and say.

Every adapter parses a command its own way (a slash command, ``!history`` in a thread, a
console line) and hands it to ``ConversationService.run``; this is the one place that maps
a command to the service's verbs and words the reply, so it reads the same everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.conversations.wording import format_audit, format_history, format_rewind, format_team, format_usage
from core.errors import InvalidInput, StaleApproval

if TYPE_CHECKING:
    from core.conversations.commands import Command
    from core.conversations.service import ConversationService
    from core.keys import ThreadKey

__all__ = ["run_command"]


async def run_command(
    service: ConversationService, key: ThreadKey, command: Command, user: str | None
) -> str:
    if command.name == "history":
        if command.argument.strip() == "--all":
            return format_audit(await service.audit(key, steps=True))
        return format_history(await service.history(key, command.count(10, what="turns to show")))
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
    if command.name == "team":
        arg = command.argument.strip().lower()
        if arg not in ("", "on", "off"):
            raise InvalidInput("/team takes on or off, e.g. /team on (or nothing, to show the mode)")
        choice = arg == "on" if arg else None
        return format_team(await service.team(key, choice, user=user), changed=choice is not None)
    if command.name == "new":
        await service.start_new(key, user)
        return ("Started a new conversation here. The previous one is kept: it stays in "
                "the conversation list, its history and the web viewer.")
    if command.name in ("persona", "model"):
        return await service.place_command(key, command, user)
    if command.name == "usage":
        return format_usage(await service.usage(key, user))
    raise InvalidInput(f"unknown command /{command.name}")
