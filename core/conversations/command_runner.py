"""The shared command table's verbs: what ``/history``, ``/rewind``, ``/team``… do and say.

Every adapter parses a command its own way (a slash command, ``!history`` in a thread, a
console line) and hands it to ``ConversationService.run``; this is the one place that maps
a command to the service's verbs and words the reply, so it reads the same everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from core.conversations.wording import format_audit, format_history, format_rewind, format_team, format_usage
from core.errors import InvalidInput, StaleApproval

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.records import Approval, Audit, Turn
    from core.storage.usage import UsageReport
    from core.types import Answer, Command, RewindResult

__all__ = ["Verbs", "run_command"]


class Verbs(Protocol):
    """The service verbs the commands run: ``ConversationService`` has them all, and passes
    itself; naming them here keeps this module from importing the service back."""

    async def history(self, key: ThreadKey, limit: int = ...) -> list[Turn]: ...
    async def audit(self, key: ThreadKey, limit: int = ..., *, steps: bool = ...) -> Audit: ...
    async def pending(self, key: ThreadKey) -> Approval | None: ...
    async def resolve(
        self, key: ThreadKey, approval_id: int, approve: bool, *, user: str | None = ...
    ) -> Answer: ...
    async def rewind(self, key: ThreadKey, steps: int = ..., *, user: str | None = ...) -> RewindResult: ...
    async def forget(self, key: ThreadKey) -> None: ...
    async def team(self, key: ThreadKey, on: bool | None = ..., *, user: str | None = ...) -> bool: ...
    async def start_new(self, key: ThreadKey, user: str | None) -> ThreadKey: ...
    async def place_command(self, key: ThreadKey, command: Command, user: str | None) -> str: ...
    async def usage(self, key: ThreadKey, user: str | None) -> UsageReport: ...


async def run_command(service: Verbs, key: ThreadKey, command: Command, user: str | None) -> str:
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
