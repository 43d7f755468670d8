"""Approve and Reject buttons under a paused tool call.

The buttons are discord.py dynamic items: the approval id lives in the ``custom_id`` and
the request itself in PostgreSQL, so a button still works after a restart with nothing
kept in memory. A click is handed to the client's ``approvals`` handler.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import discord

if TYPE_CHECKING:
    from core.records import Approval

__all__ = ["MESSAGE_LIMIT", "ApprovalButton", "approval_view", "decided_text"]

MESSAGE_LIMIT = 2000

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


class _OnClick(Protocol):
    async def on_click(
        self, interaction: discord.Interaction[Any], approval_id: int, approve: bool
    ) -> None: ...


@runtime_checkable
class _Approving(Protocol):
    """A client that handles approval clicks (``bots/discord/approvals.py``): the button
    finds its handler through the client, so this module needs nothing of that one."""

    approvals: _OnClick
