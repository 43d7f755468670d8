"""``/healthz`` and ``/metrics`` for the adapters that serve no HTTP of their own.

Slack in Socket Mode and Discord only dial out, so an orchestrator's probe and a
Prometheus scrape need a port of their own: ``BACKTRACK_HEALTH_PORT``, on
``BACKTRACK_HOST``. The API and Slack's HTTP mode add ``metrics`` to their own server.
``/metrics`` carries no secrets and no message text, and Prometheus scrapes from inside
the network without credentials, so it is served without authentication like ``/healthz``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aiohttp import web

from core.metrics import register_pool, register_queue, render

if TYPE_CHECKING:
    from core.service import ConversationService
    from core.settings import Settings

__all__ = ["health_app", "metrics", "serve_health", "watch"]

_log = logging.getLogger(__name__)

_SERVICE: web.AppKey[ConversationService] = web.AppKey("service")


def watch(service: ConversationService) -> None:
    """Report this service's database pool and queued messages on ``/metrics``."""
    register_pool(service.store.pool)
    register_queue(service.locks.queued)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = render()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _healthz(request: web.Request) -> web.Response:
    if await request.app[_SERVICE].healthy():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)


def health_app(service: ConversationService) -> web.Application:
    watch(service)
    app = web.Application()
    app[_SERVICE] = service
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/metrics", metrics)
    return app


@asynccontextmanager
async def serve_health(settings: Settings, service: ConversationService) -> AsyncIterator[int | None]:
    """Serve the health app on ``BACKTRACK_HEALTH_PORT`` while inside; yields the bound port.

    Does nothing (and yields None) when the port is not set. Port 0 picks a free port.
    """
    port = settings.health_port
    if port is None:
        yield None
        return
    runner = web.AppRunner(health_app(service), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, port)
        await site.start()
        bound = _bound_port(site, port)
        _log.info("health and metrics at http://%s:%d/healthz and /metrics", settings.host, bound)
        yield bound
    finally:
        await runner.cleanup()


def _bound_port(site: web.TCPSite, asked: int) -> int:
    server = site._server  # aiohttp exposes no public accessor for the bound socket
    sockets = getattr(server, "sockets", None)
    return int(sockets[0].getsockname()[1]) if sockets else asked
