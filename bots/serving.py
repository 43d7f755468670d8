"""HTTP next to the bots: ``/healthz`` and ``/metrics`` everywhere, and stopping on signals.

The API and Slack's HTTP mode add the two routes to their own server; Slack in Socket Mode
and Discord only dial out, so they serve them on ``BACKTRACK_HEALTH_PORT`` (on
``BACKTRACK_HOST``). ``/metrics`` carries no secrets and no message text, and Prometheus
scrapes from inside the network without credentials, so like ``/healthz`` it needs no token.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING

from aiohttp import web

from core.metrics import register_pool, register_queue, render

if TYPE_CHECKING:
    from core.conversations.service import ConversationService
    from core.settings import Settings

__all__ = ["SERVICE", "add_health_routes", "serve_health", "serve_until_stopped", "stop_signals"]

_log = logging.getLogger(__name__)

SERVICE: web.AppKey[ConversationService] = web.AppKey("service")
"""The service an app's handlers call: the API's, the viewer's and the health routes alike."""


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _healthz(request: web.Request) -> web.Response:
    if await request.app[SERVICE].healthy():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)


def add_health_routes(app: web.Application, service: ConversationService) -> None:
    """``/healthz`` (503 while the database does not answer) and ``/metrics`` for ``service``."""
    register_pool(service.pool)
    register_queue(service.queued)
    app[SERVICE] = service
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", _metrics)


@asynccontextmanager
async def serve_health(settings: Settings, service: ConversationService) -> AsyncIterator[int | None]:
    """Serve health and metrics on ``BACKTRACK_HEALTH_PORT`` while inside; yields the bound port.

    Does nothing (and yields None) when the port is not set. Port 0 picks a free port.
    """
    if settings.health_port is None:
        yield None
        return
    app = web.Application()
    add_health_routes(app, service)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.health_port)
        await site.start()
        bound = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        _log.info("health and metrics at http://%s:%d/healthz and /metrics", settings.host, bound)
        yield bound
    finally:
        await runner.cleanup()


@asynccontextmanager
async def stop_signals() -> AsyncIterator[asyncio.Event]:
    """An event that SIGTERM or SIGINT sets while inside (a deploy, or Ctrl-C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def serve_until_stopped(
    app: web.Application, host: str, port: int, *, grace: float, reuse_port: bool = False
) -> None:
    """Serve until SIGTERM/SIGINT; then stop listening and let running requests finish (up to ``grace`` s).

    ``reuse_port`` lets the workers of ``backtrack api --workers`` share one port (bots/workers.py).
    """
    runner = web.AppRunner(app, shutdown_timeout=grace, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        async with stop_signals() as stop:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
            _log.info("listening on http://%s:%d", host, port)
            await stop.wait()
            _log.info("stopping: finishing running requests (up to %.0f s)", grace)
    finally:
        await runner.cleanup()
