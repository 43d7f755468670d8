"""Downloading what a platform says is attached, safely: its own hosts only, capped while streaming.

The caller names the hosts (Slack's ``files.slack.com``, Discord's CDN) and the headers
(Slack's bot token). A URL elsewhere is never fetched, a redirect is followed only to
another allowed host, and the per-file and per-message byte caps and the time cap are
checked as the bytes arrive, so a huge or endless file costs at most the cap. HTTPS is
required except on a loopback host (a local fake in tests). Contents are never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import yarl

from core.conversations.files import too_big, too_many, too_much
from core.types import Attachment, Unread

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["Offer", "download_all"]

_log = logging.getLogger(__name__)

_REDIRECTS = 3
_CHUNK = 64 * 1024
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class Offer:
    """A file a platform says a message carries, before it is downloaded."""

    name: str
    url: str | None
    size: int | None = None
    mime: str | None = None


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _allowed(url: yarl.URL, hosts: frozenset[str]) -> bool:
    host = (url.host or "").lower()
    if url.scheme != "https" and not (url.scheme == "http" and host in _LOOPBACK):
        return False
    return host in hosts or f"{host}:{url.port}" in hosts


async def _fetch(
    session: aiohttp.ClientSession, url: str, hosts: frozenset[str], headers: Mapping[str, str], cap: int,
    over: str,
) -> bytes:
    target = yarl.URL(url)
    if not _allowed(target, hosts):
        raise _Refused("it is not stored on the platform's own file servers, so it was not downloaded")
    for _ in range(_REDIRECTS + 1):
        async with session.get(target, headers=dict(headers), allow_redirects=False) as response:
            if response.status in (301, 302, 303, 307, 308):
                target = target.join(yarl.URL(response.headers.get("Location", "")))
                if not _allowed(target, hosts):
                    raise _Refused("its download redirected away from the platform's file servers")
                continue
            if response.status != 200:
                raise _Refused(f"the download failed (HTTP {response.status})")
            if (response.content_length or 0) > cap:
                raise _Refused(over)
            data = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                data += chunk
                if len(data) > cap:
                    raise _Refused(over)
            return bytes(data)
    raise _Refused("its download redirected too many times")


async def download_all(
    offers: Sequence[Offer], settings: Settings, hosts: frozenset[str],
    headers: Mapping[str, str] | None = None,
) -> list[Attachment | Unread]:
    """Every offered file downloaded, or the reason it was not; caps from the settings."""
    results: list[Attachment | Unread] = []
    total = 0
    timeout = aiohttp.ClientTimeout(total=settings.download_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for n, offer in enumerate(offers):
            left = settings.attachments_max_total_bytes - total
            per_file = settings.attachment_max_bytes
            if n >= settings.attachments_per_message:
                results.append(Unread(offer.name, too_many(settings)))
                continue
            if offer.url is None:
                results.append(Unread(offer.name, "the platform did not share its contents with the bot"))
                continue
            if offer.size is not None and offer.size > per_file:
                results.append(Unread(offer.name, too_big(settings)))
                continue
            over = too_big(settings) if left >= per_file else too_much(settings)
            try:
                async with asyncio.timeout(settings.download_timeout):
                    data = await _fetch(session, offer.url, hosts, headers or {}, min(per_file, left), over)
            except _Refused as refused:
                _log.info("attachment not downloaded: %s", refused.reason)
                results.append(Unread(offer.name, refused.reason))
                continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                _log.info("attachment download failed: %r", exc)
                results.append(Unread(offer.name, "its download failed or took too long"))
                continue
            total += len(data)
            results.append(Attachment(offer.name, offer.mime, data))
    return results
