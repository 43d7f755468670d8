"""Approve and Reject buttons under a paused tool call, and what a click on them does.

The buttons are discord.py dynamic items: the approval id lives in the ``custom_id`` and
the request itself in PostgreSQL, so a button still works after a restart with nothing
kept in memory. Who may decide is the core's rule (the asker, or ``BACKTRACK_APPROVERS``).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import discord

from bots.discord.access import conversation_key
from bots.discord.reply import MESSAGE_LIMIT, SORRY, StreamingReply
from core.commands import user_message
from core.errors import AgentFailed, BacktrackError

if TYPE_CHECKING:
    from core.service import ConversationService
    from core.types import Approval

__all__ = ["ApprovalButton", "Approvals", "approval_view", "decided_text"]

_log = logging.getLogger(__name__)

_Button = discord.ui.Button[discord.ui.View]


class ApprovalButton(
    discord.ui.DynamicItem[_Button], template=r"backtrack:(?P<action>approve|reject):(?P<id>[0-9]+)"
):
    def __init__(self, approval_id: int, approve: bool) -> None:
        action = "approve" if approve else "reject"
        button: _Button = discord.ui.Button(
            label=action.capitalize(),
            style=discord.ButtonStyle.success if approve else discord.ButtonStyle.danger,
            custom_id=f"backtrack:{action}:{approval_id}",
        )
        super().__init__(button)
        self.approval_id = approval_id
        self.approve = approve

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ApprovalButton:
        return cls(int(match["id"]), match["action"] == "approve")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, _Approving):
            await client.approvals.on_click(interaction, self.approval_id, self.approve)


def approval_view(approval: Approval) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ApprovalButton(approval.id, True))
    view.add_item(ApprovalButton(approval.id, False))
    return view


def decided_text(content: str, approve: bool, user_id: int) -> str:
    """The request as it was asked, and who decided it: the channel's record of the decision."""
    line = f"\n\n{'✅ Approved' if approve else '❌ Rejected'} by <@{user_id}>"
    room = MESSAGE_LIMIT - len(line)
    if len(content) > room:
        content = content[: room - 1] + "…"
    return content + line


class _Decision:
    """Rewrites the request message once, buttons removed: when the answer starts to
    stream (the decision is stored by then) or when the turn ends, whichever is first."""

    def __init__(self, message: discord.Message, approve: bool, user_id: int) -> None:
        self.message = message
        self.approve = approve
        self.user_id = user_id
        self.shown = False

    async def show(self) -> None:
        if self.shown:
            return
        self.shown = True
        text = decided_text(self.message.content, self.approve, self.user_id)
        try:
            await self.message.edit(content=text, view=None)
        except discord.HTTPException as exc:  # the answer below still says what happened
            _log.warning("could not mark approval message %s decided: %s", self.message.id, exc)


class Approvals:
    """Button clicks in, ``service.resolve`` out."""

    def __init__(self, service: ConversationService) -> None:
        self.service = service

    async def on_click(self, interaction: discord.Interaction[Any], approval_id: int, approve: bool) -> None:
        """A refused click (not permitted, already decided, cancelled) changes nothing and
        is answered to the clicker alone; an accepted one is answered in the channel."""
        message, channel_id = interaction.message, interaction.channel_id
        if message is None or channel_id is None:
            return
        user = interaction.user
        decision = _Decision(message, approve, user.id)
        reply = StreamingReply(message)

        async def partial(text: str) -> None:
            await decision.show()
            await reply.partial(text)

        key = conversation_key(interaction.guild_id, channel_id)
        try:
            if not await self.service.claim_event(f"discord:i:{interaction.id}"):
                return
            await interaction.response.defer()
            _log.info("approval %s on %s: %s by %s", approval_id, key, approve, user.id)
            try:
                async with message.channel.typing():
                    answer = await self.service.resolve(
                        key, approval_id, approve, user=str(user.id), on_partial=partial
                    )
                text = answer.text
                view = approval_view(answer.approval) if answer.approval else None
            except AgentFailed as exc:  # decided and stored; only the turn after it failed
                text, view = user_message(exc), None
            await decision.show()
            await reply.final(text, view)
        except BacktrackError as exc:
            _log.info("approval %s on %s: %s", approval_id, key, exc.code)
            text = user_message(exc)
        except Exception:
            _log.error("approval %s on %s failed", approval_id, key, exc_info=True)
            text = SORRY
        else:
            return
        await self._report(interaction, reply if decision.shown else None, text)

    @staticmethod
    async def _report(interaction: discord.Interaction[Any], reply: StreamingReply | None, text: str) -> None:
        """In the channel once the decision shows there; otherwise to the clicker alone."""
        try:
            if reply is not None:
                await reply.final(text)
            elif interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as exc:
            _log.warning("could not answer interaction %s: %s", interaction.id, exc)


@runtime_checkable
class _Approving(Protocol):
    """A client that handles approval clicks (the button finds its handler through it)."""

    approvals: Approvals
