"""The console's own viewer: served on loopback with a token made for the run, printed once
as a ready-to-open URL; the page reaches the console's conversations, nothing without the token."""

from __future__ import annotations

import io
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from bots.console import Console, viewer
from core.conversations.service import ConversationService
from core.settings import Settings


async def test_the_printed_url_opens_the_viewer_on_the_consoles_conversation(
    service: ConversationService, settings: Settings, unique: Callable[[str], str]
) -> None:
    thread = unique("tree")
    console = Console(service, thread, io.StringIO())
    await console.handle("hello there\n")
    async with viewer(settings, service) as url, aiohttp.ClientSession() as http:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.path == "/ui" and parts.fragment.startswith("token=")
        base, token = f"{parts.scheme}://{parts.netloc}", parts.fragment.removeprefix("token=")
        async with http.get(f"{base}/ui") as r:
            assert r.status == 200 and "viewer" in (await r.text()).lower()
        listing = f"{base}/api/ui/conversations?q={thread}"
        async with http.get(listing) as r:
            assert r.status == 401  # the token is the only way in
        async with http.get(listing, headers={"Authorization": f"Bearer {token}"}) as r:
            found = await r.json()
        assert [c["key"] for c in found["conversations"]] == [f"console:{thread}"]
        async with http.get(listing, headers={"Authorization": f"Bearer {token}", "Host": "evil.example"}) as r:
            assert r.status in (400, 403, 421)  # a rebinding page cannot read it either
    async with viewer(settings, service) as other:
        assert urlsplit(other).fragment != parts.fragment  # a new token for every run
