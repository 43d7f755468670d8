"""Messages and slash commands in, conversation service calls out."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bots.chunking import split_message
from bots.discord.access import Gate, channel_ids, conversation_key
from bots.discord.feedback import answer_buttons
from bots.discord.files import fetch_attachments
from bots.discord.reply import MESSAGE_LIMIT, StreamingReply
from core.conversations.boundary import boundary
from core.conversations.intake import is_blank
from core.errors import NotPermitted
from core.logs import span
from core.types import Command, Incoming

if TYPE_CHECKING:
    from collections.abc import Iterable

    from core.conversations.service import ConversationService
    from core.keys import ThreadKey
    from core.settings import Settings

__all__ = ["Responder", "slash_commands"]

_log = logging.getLogger(__name__)

_ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class Responder:
    """Messages and slash commands in, conversation service calls out."""

    def __init__(self, client: discord.Client, settings: Settings, service: ConversationService):
        self.client = client
        self.service = service
        self.settings = settings
        self.gate = Gate.from_settings(settings)

    # -- messages ------------------------------------------------------------------------

    @staticmethod
    def _called(message: discord.Message, guild_id: int | None, me: discord.ClientUser) -> bool:
        """A DM, a mention of the bot or a reply to one of its messages."""
        if guild_id is None or any(user.id == me.id for user in message.mentions):
            return True
        ref = message.reference
        return (
            ref is not None
            and isinstance(ref.resolved, discord.Message)
            and (ref.resolved.author.id == me.id)
        )

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        author = message.author
        if me is None or author.bot or author.system or message.type not in _ANSWERED_TYPES:
            return
        # A guild missing from the cache still gives its id: never mistake it for a DM.
        guild_id = message.guild.id if message.guild else getattr(message.channel, "guild_id", None)
        places = channel_ids(message.channel)
        called = self._called(message, guild_id, me)
        text = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        has_content = not is_blank(text) or bool(message.attachments)
        if not called and not (has_content and self.gate.open_channels & places):
            return  # not for the bot (in an open channel: nothing to answer, e.g. a sticker)
        if not self.gate.admits(guild_id, places, author):
            _log.info("ignored message %s from %s: not on the allow-lists", message.id, author.id)
            return
        with span("discord.message", **{"messaging.system": "discord"}):
            await self._answer(message, conversation_key(guild_id, message.channel.id), text)

    async def _answer(self, message: discord.Message, base: ThreadKey, text: str) -> None:
        author = message.author
        reply = StreamingReply(message)
        async with boundary(reply.fail, f"discord message {message.id} on {base}"):
            incoming = Incoming(
                base, text, str(author.id), deliveries=(("message", str(message.id)),), command_prefixes=""
            )
            received = await self.service.receive(incoming)
            if received is None:
                return
            key = received.key
            _log.info("message %s on %s", message.id, key)
            async with message.channel.typing():
                files = await fetch_attachments(message.attachments, self.settings)
                answer = await self.service.ask(
                    key, received.text, user=str(author.id), on_partial=reply.partial,
                    event_id=received.event_id, files=files, on_status=reply.status,
                    speaker=author.display_name,
                )
            with span("backtrack.deliver", **{"messaging.system": "discord"}):
                await reply.finish(answer.text, footer=await answer_buttons(self.service, answer))
            shown = str(reply.last.id) if reply.last else None  # its editing forks here (gestures.py)
            await self.service.gestures.answered(key, str(message.id), str(author.id), answer, shown)

    # -- slash commands ------------------------------------------------------------------

    async def on_command(self, interaction: discord.Interaction[Any], command: Command) -> None:
        """``/history``, ``/usage``, a shown ``/persona`` or ``/model`` and the list of versions
        answer only the asker; ``/rewind``, ``/forget``, a new version (``/edit``, ``/retry``),
        a switch and a changed persona or model change the channel for everyone, so the
        channel sees them."""
        private = command.name in ("history", "usage", "memory", "help") or (
            command.name in ("persona", "model", "branch", "tools") and not command.argument
        )

        async def tell(text: str) -> None:
            for piece in split_message(text, MESSAGE_LIMIT):
                if interaction.response.is_done():
                    await interaction.followup.send(piece, ephemeral=private)
                else:  # refused or failed before the defer: only the asker needs to see it
                    await interaction.response.send_message(piece, ephemeral=True)

        async with boundary(tell, f"discord /{command.name}"):
            channel = interaction.channel
            base = conversation_key(interaction.guild_id, interaction.channel_id or 0)
            key = base if command.name == "new" else await self.service.current(base)
            if not await self.service.first_delivery(key, ("interaction", str(interaction.id))):
                return
            if channel is None or not self.gate.admits(
                interaction.guild_id, channel_ids(channel), interaction.user
            ):
                raise NotPermitted("you are not allowed to use backtrack here")
            await interaction.response.defer(ephemeral=private, thinking=True)
            _log.info("/%s on %s", command.name, key)
            await tell(await self.service.run(key, command, str(interaction.user.id)))


def slash_commands(responder: Responder) -> Iterable[app_commands.Command[Any, ..., None]]:
    @app_commands.command(description="Show the last turns of this channel's conversation")
    @app_commands.describe(
        limit="how many turns to show (default 10)",
        all_branches="every turn on every branch, who rewound when, and the ratings",
    )
    @app_commands.rename(all_branches="all")
    async def history(
        interaction: discord.Interaction[Any], limit: int | None = None, all_branches: bool = False
    ) -> None:
        argument = "--all" if all_branches else _arg(limit)
        await responder.on_command(interaction, Command("history", argument))

    @app_commands.command(description="Take back the last turns of this channel's conversation")
    @app_commands.describe(steps="how many turns to go back (default 1)")
    async def rewind(interaction: discord.Interaction[Any], steps: int | None = None) -> None:
        await responder.on_command(interaction, Command("rewind", _arg(steps)))

    @app_commands.command(description="Answer the last question again: another version of that answer")
    async def retry(interaction: discord.Interaction[Any]) -> None:
        await responder.on_command(interaction, Command("retry"))

    @app_commands.command(description="Ask an earlier turn again with new text: a new version of it")
    @app_commands.describe(turn="the turn's number, as /history shows it", text="the new question")
    async def edit(interaction: discord.Interaction[Any], turn: int, text: str) -> None:
        await responder.on_command(interaction, Command("edit", f"{turn} {text}"))

    @app_commands.command(description="List the versions of the last edited or retried turn, or pick one")
    @app_commands.describe(version="continue on this version (leave out to list them)")
    async def branch(interaction: discord.Interaction[Any], version: int | None = None) -> None:
        await responder.on_command(interaction, Command("branch", _arg(version)))

    @app_commands.command(description="Delete this channel's conversation for good")
    async def forget(interaction: discord.Interaction[Any]) -> None:
        await responder.on_command(interaction, Command("forget"))

    @app_commands.command(
        name="new", description="Start a fresh conversation in this channel; the old one is kept"
    )
    async def new(interaction: discord.Interaction[Any]) -> None:
        await responder.on_command(interaction, Command("new"))

    @app_commands.command(description="Show or switch team mode for this channel's conversation")
    @app_commands.describe(mode="on: a coordinator, a researcher and an analyst answer; off: one assistant")
    async def team(interaction: discord.Interaction[Any], mode: Literal["on", "off"] | None = None) -> None:
        await responder.on_command(interaction, Command("team", mode or ""))

    @app_commands.command(description="Show this channel's persona (system prompt); admins set or reset it")
    @app_commands.describe(text="the new persona, or reset for the built-in one")
    async def persona(interaction: discord.Interaction[Any], text: str | None = None) -> None:
        await responder.on_command(interaction, Command("persona", (text or "").strip()))

    @app_commands.command(description="Show this channel's model and the allowed ones; admins pick one")
    @app_commands.describe(name="a model from the allowed list, or reset for the default")
    async def model(interaction: discord.Interaction[Any], name: str | None = None) -> None:
        await responder.on_command(interaction, Command("model", (name or "").strip()))

    @app_commands.command(description="This channel's MCP tools and their policies; admins change them")
    @app_commands.describe(action="add, remove or reset (nothing: list them)", server="the MCP server's name")
    async def tools(
        interaction: discord.Interaction[Any], action: Literal["add", "remove", "reset"] | None = None,
        server: str | None = None,
    ) -> None:
        await responder.on_command(interaction, Command("tools", f"{action or ''} {server or ''}".strip()))

    @app_commands.command(description="What backtrack remembers about you (only you see it); forget it")
    @app_commands.describe(forget="a number from the list, or all")
    async def memory(interaction: discord.Interaction[Any], forget: str | None = None) -> None:
        await responder.on_command(interaction, Command("memory", f"forget {forget}" if forget else ""))

    @app_commands.command(description="What backtrack can do, with an example of each")
    async def help(interaction: discord.Interaction[Any]) -> None:
        await responder.on_command(interaction, Command("help"))

    @app_commands.command(description="Your tokens and this channel's, today and this month (UTC)")
    async def usage(interaction: discord.Interaction[Any]) -> None:
        await responder.on_command(interaction, Command("usage"))

    return (
        history, rewind, retry, edit, branch, forget, new, team, persona, model, tools, memory, usage, help,
    )


def _arg(value: int | None) -> str:
    return "" if value is None else str(value)
