"""The safe downloader against small real servers: hosts, redirects, caps and time, checked while streaming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import yarl
from aiohttp import web

from bots.downloads import Offer, download_all
from core.settings import Settings
from core.types import Attachment, Unread
from tests.fakes.http import serving


@pytest.fixture
async def host() -> AsyncIterator[str]:
    """A file host: ``/ok``, ``/hop`` (a redirect to ``/ok`` on itself), ``/endless`` (never ends
    and sends no length), ``/slow`` (answers after 5 s)."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"hello", content_type="text/plain")

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            while True:
                await response.write(b"x" * 65536)
        except (ConnectionResetError, RuntimeError):
            return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=b"late")

    app = web.Application()
    for path, handler in (("/ok", ok), ("/hop", hop), ("/endless", endless), ("/slow", slow)):
        app.router.add_get(path, handler)
    async with serving(app, access_log=None) as url:
        yield url


async def test_allowed_host_and_its_own_redirect_are_fetched(
    host: str, make_settings: Callable[..., Settings]
) -> None:
    allowed = frozenset({yarl.URL(host).raw_authority})
    got = await download_all([Offer("a.txt", f"{host}/ok"), Offer("b.txt", f"{host}/hop")], make_settings(), allowed)
    assert got == [Attachment("a.txt", None, b"hello"), Attachment("b.txt", None, b"hello")]


async def test_an_endless_download_stops_at_the_cap_and_a_slow_one_at_the_time_limit(
    host: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(BACKTRACK_ATTACHMENT_MAX_BYTES=200_000, BACKTRACK_DOWNLOAD_TIMEOUT=0.5)
    allowed = frozenset({yarl.URL(host).raw_authority})
    got = await download_all([Offer("e.bin", f"{host}/endless"), Offer("s.bin", f"{host}/slow")], settings, allowed)
    assert got == [Unread("e.bin", "it is larger than the 200 kB limit per file"),
                   Unread("s.bin", "its download failed or took too long")]


async def test_plain_http_off_loopback_and_files_past_the_count_are_never_fetched(
    host: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(BACKTRACK_ATTACHMENTS_PER_MESSAGE=1)
    offers = [Offer("x.txt", "http://files.slack.com/x.txt"), Offer("y.txt", f"{host}/ok")]
    got = await download_all(offers, settings, frozenset({"files.slack.com", yarl.URL(host).raw_authority}))
    assert got == [
        Unread("x.txt", "it is not stored on the platform's own file servers, so it was not downloaded"),
        Unread("y.txt", "I read at most 1 file per message"),
    ]
