"""Attachments of Discord messages: downloaded from Discord's CDN, never from anywhere else.

Discord hands out signed attachment URLs on ``cdn.discordapp.com`` (or
``media.discordapp.net``); ``DISCORD_FILE_HOSTS`` names the hosts allowed and
``bots/downloads.py`` fetches within the caps. No token is sent: the URLs are signed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bots.downloads import Offer, download_all

if TYPE_CHECKING:
    from collections.abc import Sequence

    import discord

    from core.settings import Settings
    from core.types import Attachment, Unread

__all__ = ["fetch_attachments"]


async def fetch_attachments(
    attachments: Sequence[discord.Attachment], settings: Settings
) -> list[Attachment | Unread]:
    if not attachments:
        return []
    offers = [Offer(a.filename, a.url, a.size, a.content_type) for a in attachments]
    return await download_all(offers, settings, settings.discord_file_hosts)
