"""The viewer's page data for a long conversation, timed through HTTP against the real app.

Opening a conversation in ``/ui`` costs three calls: the conversation list, the turn tree
and the steps of the selected (last) turn. This serves ``backtrack api``'s app on a free
loopback port and times the three together, as a browser would make them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from bots.api import build_app

if TYPE_CHECKING:
    from core.conversations.service import ConversationService
    from core.keys import ThreadKey

__all__ = ["page_data"]


async def _get(session: aiohttp.ClientSession, url: str, **query: str) -> dict[str, object]:
    async with session.get(url, params=query) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}: {await response.text()}")
        body: dict[str, object] = await response.json()
        return body


async def page_data(service: ConversationService, key: ThreadKey, repeats: int) -> list[float]:
    """Seconds per page load (list + tree + last turn's steps), after one warm-up load."""
    runner = web.AppRunner(build_app(service.settings, service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}/api/ui"
    samples: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(repeats + 1):
                started = time.perf_counter()
                await _get(session, f"{base}/conversations", q=key.parts[-1])
                tree = await _get(session, f"{base}/tree", key=str(key))
                head = tree["head_checkpoint_id"]
                if isinstance(head, str):
                    await _get(session, f"{base}/steps", key=str(key), checkpoint_id=head)
                samples.append(time.perf_counter() - started)
    finally:
        await runner.cleanup()
    return samples[1:]
