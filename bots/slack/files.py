"""Files shared in Slack messages: the ``files`` of a ``file_share`` message or an ``app_mention``.

Slack serves a file only with the bot token (the ``files:read`` scope), from
``url_private_download`` or ``url_private`` on ``files.slack.com``; ``SLACK_FILE_HOSTS``
names the hosts allowed, and ``bots/downloads.py`` fetches within the caps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bots.downloads import Offer, download_all

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.settings import Settings
    from core.types import Attachment, Unread

__all__ = ["SlackFiles", "offers"]


def offers(files: Sequence[Any]) -> list[Offer]:
    """What a message's file objects offer; one Slack keeps from the bot has no URL."""
    found = []
    for file in files:
        if not isinstance(file, dict):
            continue
        name = file.get("name") or file.get("title") or file.get("id") or "a file"
        url = file.get("url_private_download") or file.get("url_private")
        size, mime = file.get("size"), file.get("mimetype")
        found.append(Offer(
            str(name), url if isinstance(url, str) and url else None,
            size if isinstance(size, int) else None, mime if isinstance(mime, str) else None,
        ))
    return found


class SlackFiles:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def fetch(self, files: Sequence[Any], token: str | None) -> list[Attachment | Unread]:
        """``token``: the bot token of the workspace the files were shared in."""
        if not files:
            return []
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return await download_all(offers(files), self._settings, self._settings.slack_file_hosts, auth)
