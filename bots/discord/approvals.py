"""What a click on Approve or Reject does: decide the paused tool call, then finish the turn.

Who may decide is the core's rule (the asker, or ``BACKTRACK_APPROVERS``). A refused click
(not permitted, already decided, cancelled) changes nothing and is answered to the clicker
alone; once the core reports the decision stored, the request message shows it and what
follows (the answer, or a failure of the turn after it) is told in the channel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bots.discord.access import conversation_key
from bots.discord.buttons import decided_text
from bots.discord.feedback import answer_buttons
from bots.discord.reply import StreamingReply
from core.conversations.boundary import boundary

if TYPE_CHECKING:
    from core.conversations.service import ConversationService
    from core.records import Approval

__all__ = ["Approvals"]

_log = logging.getLogger(__name__)


async def show_decision(message: discord.Message, approve: bool, user_id: int) -> None:
    """The request message rewritten once, buttons removed, naming who decided."""
    try:
        await message.edit(content=decided_text(message.content, approve, user_id), view=None)
    except discord.HTTPException as exc:  # the answer below still says what happened
        _log.warning("could not mark approval message %s decided: %s", message.id, exc)


class Approvals:
    """Button clicks in, ``service.resolve`` out."""

    def __init__(self, service: ConversationService) -> None:
        self.service = service

    async def on_click(self, interaction: discord.Interaction[Any], approval_id: int, approve: bool) -> None:
        message, channel_id = interaction.message, interaction.channel_id
        if message is None or channel_id is None:
            return
        user = interaction.user
        reply = StreamingReply(message)
        key = conversation_key(interaction.guild_id, channel_id)
        decided = False

        async def on_decided(_: Approval) -> None:
            nonlocal decided
            decided = True
            await show_decision(message, approve, user.id)

        async def tell(text: str) -> None:
            """In the channel once the decision shows there; otherwise to the clicker alone."""
            if decided:
                await reply.fail(text)
            elif interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)

        async with boundary(tell, f"discord click on approval {approval_id} on {key}"):
            key = await self.service.current(key)  # the channel may have moved on (/new)
            if not await self.service.first_delivery(key, ("interaction", str(interaction.id))):
                return
            await interaction.response.defer()
            _log.info("approval %s on %s: %s by %s", approval_id, key, approve, user.id)
            async with message.channel.typing():
                answer = await self.service.resolve(
                    key, approval_id, approve, user=str(user.id),
                    on_partial=reply.partial, on_decided=on_decided,
                )
            await reply.finish(answer.text, footer=await answer_buttons(self.service, answer))
