"""👍/👎, "Try again" and previous/next version under answers, and the "Rewind to here" menu.

The buttons are discord.py dynamic items whose ``custom_id`` names the answer's turn:
its conversation's generation (see ``core/storage/generations.py``) and the checkpoint the
answer ended at. A click needs nothing kept in memory, and the same ids are how the
context menu knows which turn a message is: a message of the bot without them (an
error, a command's reply, an approval request) is no answer to rewind to. Both tell
the clicker alone (ephemeral replies). "Try again" asks that answer's question again as a
new version of its turn, posted to the channel with its own buttons; the old answer stays.
An answer whose turn has other versions shows previous, v/n, next in a second row: a click continues
the conversation on the neighbouring version and shows it in place of this one.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import discord
from discord import app_commands

from bots.chunking import split_message
from bots.discord.access import Gate, channel_ids, conversation_key
from bots.discord.buttons import MESSAGE_LIMIT, approval_view
from core.conversations.boundary import boundary
from core.conversations.edits import Version
from core.conversations.wording import format_rewind, version_label
from core.errors import ConversationNotFound, InvalidInput, NotPermitted

if TYPE_CHECKING:
    from core.conversations.service import ConversationService
    from core.keys import ThreadKey
    from core.types import Answer

__all__ = [
    "REWIND_HERE", "FeedbackButton", "Ratings", "RetryButton", "VersionButton", "answer_buttons",
    "answer_turn", "clip", "rewind_here_menu", "turn_view",
]

_log = logging.getLogger(__name__)

REWIND_HERE = "Rewind to here"
_TEMPLATE = r"backtrack:fb:(?P<vote>up|down):(?P<gen>[0-9]{1,6}):(?P<checkpoint>[0-9a-f-]{1,64})"
_RETRY = r"backtrack:retry:(?P<gen>[0-9]{1,6}):(?P<checkpoint>[0-9a-f-]{1,64})"
_VERSION = r"backtrack:ver:(?P<to>prev|next):(?P<gen>[0-9]{1,6}):(?P<checkpoint>[0-9a-f-]{1,64})"
"""At most 90 characters: Discord allows 100 in a ``custom_id``."""
_PREVIOUS, _NEXT = "\u2039", "\u203a"

_Button = discord.ui.Button[discord.ui.View]


class FeedbackButton(discord.ui.DynamicItem[_Button], template=_TEMPLATE):
    def __init__(self, vote: str, generation: int, checkpoint_id: str) -> None:
        button: _Button = discord.ui.Button(
            emoji="👍" if vote == "up" else "👎",
            style=discord.ButtonStyle.secondary,
            custom_id=f"backtrack:fb:{vote}:{generation}:{checkpoint_id}",
        )
        super().__init__(button)
        self.vote, self.generation, self.checkpoint_id = vote, generation, checkpoint_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(match["vote"], int(match["gen"]), match["checkpoint"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, _Rating):
            await client.ratings.on_click(interaction, self.vote, self.generation, self.checkpoint_id)


class RetryButton(discord.ui.DynamicItem[_Button], template=_RETRY):
    def __init__(self, generation: int, checkpoint_id: str) -> None:
        button: _Button = discord.ui.Button(
            emoji="🔄", label="Try again", style=discord.ButtonStyle.secondary,
            custom_id=f"backtrack:retry:{generation}:{checkpoint_id}",
        )
        super().__init__(button)
        self.generation, self.checkpoint_id = generation, checkpoint_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RetryButton:
        return cls(int(match["gen"]), match["checkpoint"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, _Rating):
            await client.ratings.on_retry(interaction, self.generation, self.checkpoint_id)


class VersionButton(discord.ui.DynamicItem[_Button], template=_VERSION):
    """Previous or next: that version of a turn (``checkpoint`` is where it ended).
    At either end it is disabled and names the version shown, so every ``custom_id`` differs."""

    def __init__(self, to: str, generation: int, checkpoint_id: str, *, disabled: bool = False) -> None:
        button: _Button = discord.ui.Button(
            label=_PREVIOUS if to == "prev" else _NEXT, style=discord.ButtonStyle.secondary,
            custom_id=f"backtrack:ver:{to}:{generation}:{checkpoint_id}", disabled=disabled, row=1,
        )
        super().__init__(button)
        self.generation, self.checkpoint_id = generation, checkpoint_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VersionButton:
        return cls(match["to"], int(match["gen"]), match["checkpoint"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, _Rating):
            await client.ratings.on_switch(interaction, self.generation, self.checkpoint_id)


def turn_view(generation: int, shown: Version) -> discord.ui.View:
    """👍/👎 and "Try again" for the version shown; previous, v/n, next below when its turn has others."""
    view = discord.ui.View(timeout=None)
    checkpoint = shown.turn.checkpoint_id
    for vote in ("up", "down"):
        view.add_item(FeedbackButton(vote, generation, checkpoint))
    view.add_item(RetryButton(generation, checkpoint))
    if shown.turn.versions > 1:
        previous, after = shown.previous, shown.next
        view.add_item(VersionButton("prev", generation, previous or checkpoint, disabled=not previous))
        view.add_item(discord.ui.Button(
            label=version_label(shown.turn), disabled=True, row=1,
            custom_id=f"backtrack:ver:at:{generation}:{checkpoint}",
        ))
        view.add_item(VersionButton("next", generation, after or checkpoint, disabled=not after))
    return view


async def answer_buttons(
    service: ConversationService, answer: Answer, *, forked: bool = False
) -> discord.ui.View:
    """What goes under an answer: an approval's buttons while it waits, else ``turn_view``
    (whose previous and next need the neighbouring versions, asked for only when there are any).

    ``forked``: an edit's or a Try again's answer, one of several versions by making; the
    core hands back a repeated one without its count, so it is always asked for.
    """
    if answer.approval is not None:
        return approval_view(answer.approval)
    turn = answer.turn
    assert turn is not None  # an answer is a finished turn or one paused for approval
    shown = Version(turn, None, None)
    if turn.versions > 1 or forked:
        shown = await service.gestures.version(answer.key, turn.checkpoint_id)
    return turn_view(answer.key.generation, shown)


def clip(text: str) -> str:
    """An answer shown in one message (a version switched to in place): cut to Discord's limit."""
    text = text if text.strip() else "(empty answer)"
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def answer_turn(message: discord.Message) -> tuple[int, str] | None:
    """(generation, checkpoint id) of the answer a message of the bot ends, or None."""
    for row in message.components:
        for item in getattr(row, "children", ()):
            match = re.fullmatch(_TEMPLATE, getattr(item, "custom_id", None) or "")
            if match:
                return int(match["gen"]), match["checkpoint"]
    return None


async def _tell(interaction: discord.Interaction[Any], text: str) -> None:
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


class Ratings:
    """Feedback clicks and the context menu: both act on the turn an answer names."""

    def __init__(self, service: ConversationService, gate: Gate) -> None:
        self.service = service
        self.gate = gate

    def _key(self, interaction: discord.Interaction[Any], generation: int) -> ThreadKey:
        channel = interaction.channel
        if channel is None or interaction.channel_id is None or not self.gate.admits(
            interaction.guild_id, channel_ids(channel), interaction.user
        ):
            raise NotPermitted("you are not allowed to use backtrack here")
        return conversation_key(interaction.guild_id, interaction.channel_id).nth(generation)

    async def on_click(
        self, interaction: discord.Interaction[Any], vote: str, generation: int, checkpoint_id: str
    ) -> None:
        async def tell(text: str) -> None:
            await _tell(interaction, text)

        async with boundary(tell, f"discord feedback {vote} in {interaction.channel_id}"):
            key = self._key(interaction, generation)
            if not await self.service.first_delivery(key, ("interaction", str(interaction.id))):
                return
            changed = await self.service.feedback(key, checkpoint_id, str(interaction.user.id), vote)
            _log.info("feedback %s on %s (%s)", vote, key, "stored" if changed else "same")
            await tell("Thanks, your feedback is noted." if changed
                       else "You had already rated this answer so.")

    async def on_retry(
        self, interaction: discord.Interaction[Any], generation: int, checkpoint_id: str
    ) -> None:
        """That answer's question asked again: a new version, posted to the channel. A click
        again after a crash between answering and posting posts that answer, no other."""

        async def tell(text: str) -> None:
            await _tell(interaction, text)

        async with boundary(tell, f"discord try again in {interaction.channel_id}"):
            key = self._key(interaction, generation)
            if interaction.message is None or not await self.service.first_delivery(
                key, ("interaction", str(interaction.id))
            ):
                return
            await interaction.response.defer(thinking=True)  # the new version is the channel's
            _log.info("try again at %s on %s", checkpoint_id, key)
            edited = await self.service.gestures.retry(
                key, checkpoint_id, origin=str(interaction.message.id), user=str(interaction.user.id)
            )
            *first, last = split_message(edited.answer.text or "(empty answer)", MESSAGE_LIMIT)
            for piece in first:
                await interaction.followup.send(piece)
            view = await answer_buttons(self.service, edited.answer, forked=True)
            sent = await interaction.followup.send(last, view=view, wait=True)
            await self.service.gestures.posted(key, edited, str(sent.id))

    async def on_switch(
        self, interaction: discord.Interaction[Any], generation: int, checkpoint_id: str
    ) -> None:
        """Previous or next: the conversation continues on that version, shown in place of this one."""

        async def tell(text: str) -> None:
            await _tell(interaction, text)

        async with boundary(tell, f"discord switch in {interaction.channel_id}"):
            key = self._key(interaction, generation)
            if await self.service.current(key.nth(0)) != key:
                raise ConversationNotFound(
                    "this answer belongs to an earlier conversation of this channel (/new started "
                    "another), so its versions can no longer be switched"
                )
            if not await self.service.first_delivery(key, ("interaction", str(interaction.id))):
                return
            _log.info("switch to %s on %s", checkpoint_id, key)
            shown = await self.service.gestures.switch(key, checkpoint_id, user=str(interaction.user.id))
            await interaction.response.edit_message(
                content=clip(shown.turn.answer), view=turn_view(generation, shown)
            )

    async def on_rewind_here(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        async def tell(text: str) -> None:
            await _tell(interaction, text)

        async with boundary(tell, f"discord rewind to here in {interaction.channel_id}"):
            me = interaction.client.user
            found = answer_turn(message) if me is not None and message.author.id == me.id else None
            if found is None:
                raise InvalidInput(
                    "Rewind to here works on backtrack's answers: the last message of an answer, "
                    "the one with the 👍/👎 buttons."
                )
            generation, checkpoint_id = found
            key = self._key(interaction, generation)
            if not await self.service.first_delivery(key, ("interaction", str(interaction.id))):
                return
            await interaction.response.defer(ephemeral=True, thinking=True)
            _log.info("rewind to %s on %s", checkpoint_id, key)
            result = await self.service.rewind_to(key, checkpoint_id, user=str(interaction.user.id))
            await tell(format_rewind(result))


def rewind_here_menu(ratings: Ratings) -> app_commands.ContextMenu:
    """The message command "Rewind to here" (right-click a message → Apps)."""

    async def rewind_here(interaction: discord.Interaction[Any], message: discord.Message) -> None:
        await ratings.on_rewind_here(interaction, message)

    return app_commands.ContextMenu(name=REWIND_HERE, callback=rewind_here)


@runtime_checkable
class _Rating(Protocol):
    """A client that handles feedback clicks (the button finds its handler through it)."""

    ratings: Ratings
