"""Editing a message the bot answered: the conversation forks there and answers the new text.

Discord tells of an edit with MESSAGE_UPDATE, which also comes for link previews, pins and
the bot's own edits; only a person's change of the text (``edited_timestamp`` set) is one.
The core decides the rest (``core/conversations/edits.py``): whether the message was
answered, whether this is its author, whether the text really changed, and that a
redelivered update (a gateway resume) forks once, claimed by its ``edited_timestamp``. The
new answer replies to the edited message; the old one stays, its buttons gone, saying it
answered an earlier version and linking to the new one.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bots.discord.access import channel_ids, conversation_key
from bots.discord.feedback import answer_buttons
from bots.discord.reply import StreamingReply
from core.conversations.boundary import boundary
from core.conversations.wording import SUPERSEDED

if TYPE_CHECKING:
    from bots.discord.access import Gate
    from core.conversations.service import ConversationService

__all__ = ["Edits", "drop_partial_updates"]

_log = logging.getLogger(__name__)


class Edits:
    """Edits of messages in, new versions of their answers out."""

    def __init__(self, client: discord.Client, service: ConversationService, gate: Gate) -> None:
        self.client = client
        self.service = service
        self.gate = gate

    async def on_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        data: dict[str, Any] = dict(payload.data)
        me, author, edited_at = self.client.user, data.get("author") or {}, data.get("edited_timestamp")
        if me is None or "content" not in data or not author or author.get("bot") or not edited_at:
            return  # a preview, a pin, a bot's edit (ours too): nobody asked anything anew
        message = payload.message
        if not self.gate.admits(payload.guild_id, channel_ids(message.channel), message.author):
            return
        base = conversation_key(payload.guild_id, payload.channel_id)
        reply = StreamingReply(message)
        async with boundary(reply.fail, f"discord edit of {message.id} on {base}"):
            key = await self.service.current(base)
            text = re.sub(rf"<@!?{me.id}>", " ", data["content"]).strip()  # as on_message asked it
            edited = await self.service.gestures.edit(
                key, str(message.id), str(author["id"]), text, edit_id=edited_at
            )
            if edited is None:
                return
            _log.info("edit of %s on %s: a new version", message.id, key)
            view = await answer_buttons(self.service, edited.answer, forked=True)
            await reply.finish(edited.answer.text, footer=view)
            if edited.superseded is not None and reply.first is not None:
                channel = self.client.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
                await _supersede(channel.get_partial_message(int(edited.superseded)), reply.first)
            if reply.last is not None:
                await self.service.gestures.posted(key, edited, str(reply.last.id))


async def _supersede(old: discord.PartialMessage, new: discord.Message) -> None:
    """The old answer stays readable, says it answered an earlier version, and links to the new one."""
    try:
        await old.edit(content=f"{SUPERSEDED} \u2014 {new.jump_url}", view=None)
    except discord.NotFound:  # deleted meanwhile: nothing left to mark
        _log.info("superseded answer %s is gone", old.id)


def drop_partial_updates(client: discord.Client) -> None:
    """Skip a MESSAGE_UPDATE without the message's type, content or author.

    Discord may send only what changed (an embed resolved); discord.py 2.5+ builds a whole
    ``Message`` from every update and raises on such a payload in the gateway loop, which
    ends the connection. Nothing the bot does needs those updates.
    """
    parsers = client._connection.parsers
    parse = parsers["MESSAGE_UPDATE"]

    def parse_whole(data: dict[str, Any]) -> None:
        if {"type", "content", "author"} <= data.keys():
            parse(data)
        else:
            _log.debug("skipped a partial update of message %s", data.get("id"))

    parsers["MESSAGE_UPDATE"] = parse_whole
