"""Slash commands: ``/history``, ``/rewind``, ``/forget``, …, answered only to the invoker.

A slash command carries no thread, so it acts on the invoker's most recently active
conversation in the channel, or on the thread of a message link pasted as argument. A
link to another channel is refused: people act only on conversations of the place they
are in, which is also where Slack has told us they are. ``/persona``, ``/model`` and
``/usage`` concern the channel itself, not one conversation in it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bots.slack.places import Access, find_link, is_dm, workspace_of
from bots.slack.replies import escape
from core.conversations.boundary import boundary
from core.errors import ConversationNotFound, InvalidInput, NotPermitted
from core.keys import ThreadKey
from core.types import Command

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from core.conversations.service import ConversationService

__all__ = ["CommandHandler"]

_log = logging.getLogger(__name__)

_PLACE_COMMANDS = frozenset({"persona", "model", "usage"})


class CommandHandler:
    def __init__(self, service: ConversationService, access: Access) -> None:
        self._service = service
        self._access = access

    async def handle(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        name = str(command.get("command", "")).lstrip("/")

        async def tell(text: str) -> None:
            await respond(text=escape(text), response_type="ephemeral")

        async with boundary(tell, f"slack /{name}"):
            await tell(await self._run(name, command))

    async def _run(self, name: str, command: dict[str, Any]) -> str:
        team, channel, user = (str(command.get(f, "")) for f in ("team_id", "channel_id", "user_id"))
        team = workspace_of(command, team)  # the key's workspace: a Grid organisation if any
        if not self._access.allows(channel, user):
            raise NotPermitted("backtrack is not enabled for you in this channel")
        if name in _PLACE_COMMANDS:
            text = str(command.get("text", "")).strip()
            return await self._service.run(ThreadKey.slack(team, channel, None), Command(name, text), user)
        if name == "new":
            if not is_dm(channel):
                raise InvalidInput(
                    "/new starts a fresh conversation in a direct message with backtrack; "
                    "in a channel, mention the bot outside a thread to start a new one"
                )
            return await self._service.run(ThreadKey.slack(team, channel, None), Command("new"), user)
        link, argument = find_link(str(command.get("text", "")))
        if link is not None:
            if link.channel != channel:
                raise NotPermitted(
                    "that link points to another channel; run the command in that channel"
                )
            key, header = link.key(team), ""
        else:
            key, header = await self._latest(team, channel, user)
        _log.info("slack /%s on %s", name, key)
        return header + await self._service.run(key, Command(name, argument), user)

    async def _latest(self, team: str, channel: str, user: str) -> tuple[ThreadKey, str]:
        place = ThreadKey.slack(team, channel, None).place
        found = await self._service.threads(place=place, user=user, limit=1)
        if not found:
            raise ConversationNotFound(
                "you have no conversation with backtrack in this channel yet; mention the bot "
                "to start one, or paste a link to a message of the thread"
            )
        return found[0].key, f"Your latest conversation here, “{found[0].title}”:\n"
