"""The App Home tab: the user's recent conversations with backtrack, newest first.

Published with ``views.publish`` each time the user opens the tab (``app_home_opened``),
so it is as fresh as the database and nothing is cached here. A conversation is listed
for a user who asked at least one of its questions, in the workspace the tab belongs
to; at most ``SHOWN`` of them, so the view stays far below Slack's 100 blocks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bots.slack.replies import SLACK_ERRORS, escape
from core.conversations.boundary import boundary

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from core.conversations.service import ConversationService
    from core.records import ConversationInfo

__all__ = ["SHOWN", "HomeTab", "home_view"]

_log = logging.getLogger(__name__)

SHOWN = 20
_LOOKED_AT = 100  # conversations read to find SHOWN of this workspace


def _link(info: ConversationInfo) -> tuple[str, str]:
    """Where the conversation lives (as Slack renders it) and a link that opens it."""
    _team, channel, thread = info.key.parts
    if thread.startswith("dm"):
        return "Direct message", f"https://slack.com/app_redirect?channel={channel}"
    return f"<#{channel}>", f"https://slack.com/archives/{channel}/p{thread.replace('.', '')}"


def _row(info: ConversationInfo) -> dict[str, Any]:
    place, url = _link(info)
    when = int(info.last_active_at.timestamp())
    fallback = info.last_active_at.strftime("%Y-%m-%d %H:%M UTC")
    title = escape(info.title or "(untitled)")[:200]
    text = (f"*{title}*\n{place} · {info.turns} turn{'s' if info.turns != 1 else ''} · "
            f"last active <!date^{when}^{{date_short_pretty}} {{time}}|{fallback}> · <{url}|Open>")
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def home_view(conversations: list[ConversationInfo]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your recent conversations"}}
    ]
    if not conversations:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            "None yet. Send me a direct message, or mention me in a channel to start a thread.")}})
    blocks += [_row(info) for info in conversations]
    return {"type": "home", "blocks": blocks}


class HomeTab:
    def __init__(self, service: ConversationService) -> None:
        self._service = service

    async def opened(self, event: dict[str, Any], team: str, client: AsyncWebClient) -> None:
        user = event.get("user")
        if event.get("tab") != "home" or not isinstance(user, str) or not user:
            return

        async def tell(text: str) -> None:
            error = {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}}
            await client.views_publish(user_id=user, view={"type": "home", "blocks": [error]})

        async with boundary(tell, f"slack home tab of {user}"):
            found = await self._service.threads(platform="slack", user=user, limit=_LOOKED_AT)
            mine = [info for info in found if info.key.parts[0] == team][:SHOWN]
            try:
                await client.views_publish(user_id=user, view=home_view(mine))
            except SLACK_ERRORS as exc:
                _log.warning("could not publish the home tab of %s: %s", user, type(exc).__name__)
