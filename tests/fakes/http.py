"""Serving an aiohttp app on a free 127.0.0.1 port: every fake server and test app does it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

__all__ = ["serving", "start_app"]


async def start_app(app: web.Application, **runner_options: Any) -> tuple[web.AppRunner, str]:
    """Start ``app``; returns its runner (``cleanup()`` stops it) and its base URL."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def serving(app: web.Application, **runner_options: Any) -> AsyncIterator[str]:
    """``app`` served for the block; yields its base URL."""
    runner, url = await start_app(app, **runner_options)
    try:
        yield url
    finally:
        await runner.cleanup()
