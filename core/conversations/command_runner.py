"""The shared command table's verbs: what ``/history``, ``/rewind``, ``/team``… do and say.

Every adapter parses a command its own way (a slash command, ``!history`` in a thread, a
console line) and hands it to ``ConversationService.run``; this is the one place that maps
a command to the service's verbs and words the reply, so it reads the same everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from core.conversations.branches import MAX_HISTORY
from core.conversations.wording import (
    format_audit,
    format_help,
    format_history,
    format_rewind,
    format_team,
    format_usage,
    format_version,
    format_versions,
)
from core.errors import InvalidInput, StaleApproval

if TYPE_CHECKING:
    from core.conversations.memory import PersonalMemory
    from core.keys import ThreadKey
    from core.records import Approval, Audit, Turn
    from core.storage.usage import UsageReport
    from core.types import Answer, Command, RewindResult

__all__ = ["Verbs", "run_command"]


class Verbs(Protocol):
    """The service verbs the commands run: ``ConversationService`` has them all, and passes
    itself; naming them here keeps this module from importing the service back."""

    memory: PersonalMemory | None

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
    async def replay(
        self, key: ThreadKey, checkpoint_id: str, *, user: str | None = ..., text: str | None = ...
    ) -> Answer: ...
    async def turn_on_branch(self, key: ThreadKey, index: int) -> Turn: ...
    async def versions(self, key: ThreadKey, checkpoint_id: str) -> list[Turn]: ...
    async def switch(self, key: ThreadKey, checkpoint_id: str, *, user: str | None = ...) -> RewindResult: ...


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
    if command.name in ("edit", "retry", "branch"):
        return await _versions(service, key, command, user)
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
    if command.name in ("persona", "model", "tools"):
        return await service.place_command(key, command, user)
    if command.name == "help":
        return format_help()
    if command.name == "memory":
        if service.memory is None:
            raise InvalidInput("memory is not available here")
        return await service.memory.command(key, command, user)
    if command.name == "usage":
        return format_usage(await service.usage(key, user))
    raise InvalidInput(f"unknown command /{command.name}")


async def _versions(service: Verbs, key: ThreadKey, command: Command, user: str | None) -> str:
    """``/edit N text`` and ``/retry`` make a new version of a turn; ``/branch [N]`` shows or
    picks the versions of the newest turn of this branch that has several."""
    if command.name == "edit":
        number, _, text = command.argument.strip().partition(" ")
        if not number.isdigit() or not text.strip():
            raise InvalidInput("/edit takes a turn number and the new text, e.g. /edit 2 What about Spain?")
        turn = await service.turn_on_branch(key, int(number))
        answer = await service.replay(key, turn.checkpoint_id, user=user, text=text)
    elif command.name == "retry":
        if command.argument.strip():
            raise InvalidInput("/retry takes nothing: it answers the last question again")
        last = await service.history(key, 1)
        if not last:
            raise InvalidInput("There is nothing to try again yet: ask something first.")
        answer = await service.replay(key, last[0].checkpoint_id, user=user)
    else:
        forked = [t for t in await service.history(key, MAX_HISTORY) if t.versions > 1]
        if not forked:
            raise InvalidInput("No turn of this branch has other versions yet: /edit or /retry makes one.")
        versions = await service.versions(key, forked[-1].checkpoint_id)
        if not command.argument.strip():
            return format_versions(versions, forked[-1])
        wanted = command.count(1, what="the version to show")
        if not 1 <= wanted <= len(versions):
            raise InvalidInput(f"Turn {forked[-1].index} has versions 1 to {len(versions)}.")
        await service.switch(key, versions[wanted - 1].checkpoint_id, user=user)
        return format_version(versions[wanted - 1], switched=True)
    assert answer.turn is not None or answer.approval is not None
    if answer.turn is None:
        return answer.text
    return f"{answer.text}\n\n" + format_version(answer.turn, switched=False)
