"""``backtrack api``: the app, its middleware and the server.

Every error becomes a JSON body with a status from one table; a request that fails
validation never reaches the service, so it changes nothing. The routes are in
``bots/api/graph.py``, ``bots/api/places.py`` and, for the viewer, ``bots/web/routes.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bots.api.access import authenticate, guard, is_loopback
from bots.api.graph import add_graph_routes
from bots.api.places import add_place_routes
from bots.serving import SERVICE, add_health_routes, serve_until_stopped
from bots.web import add_viewer
from bots.workers import supervise, watch_supervisor
from core.conversations.service import ConversationService
from core.errors import (
    AgentFailed,
    ApprovalPending,
    BacktrackError,
    ConversationBusy,
    ConversationNotFound,
    InvalidInput,
    InvalidKey,
    MessageTooLong,
    NotPermitted,
    RewindOutOfRange,
    SettingsError,
    ShuttingDown,
    StaleApproval,
    StorageUnavailable,
    TurnInterrupted,
    UsageCapReached,
)
from core.logs import inbound
from core.metrics import count_error
from core.runtime import open_service
from core.settings import Settings

__all__ = ["build_app", "run"]

_log = logging.getLogger(__name__)

_STATUS: dict[type[BacktrackError], int] = {
    InvalidInput: 400,
    InvalidKey: 400,
    NotPermitted: 403,
    ConversationNotFound: 404,
    ConversationBusy: 409,
    TurnInterrupted: 409,
    ApprovalPending: 409,
    StaleApproval: 409,
    RewindOutOfRange: 422,
    UsageCapReached: 429,
    MessageTooLong: 422,
    AgentFailed: 502,
    StorageUnavailable: 503,
    ShuttingDown: 503,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _status(exc: BacktrackError) -> int:
    return next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BacktrackError as exc:
        return _error(_status(exc), exc.code, exc.message)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "too_large", "the request body is too large")
    except web.HTTPException as exc:
        return _error(exc.status, "http_error", exc.reason)
    except Exception:  # the outermost boundary: log it, tell the client nothing internal
        _log.exception("unhandled error on %s %s", request.method, request.path)
        count_error("internal")
        return _error(500, "internal", "internal error")


@web.middleware
async def _traced(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Each request continues its caller's trace (``traceparent``), or starts one."""
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unknown"
    attributes = {"http.request.method": request.method}
    with inbound(request.headers, f"{request.method} {route}", **attributes) as s:
        response = await handler(request)
        s.set_attribute("http.response.status_code", response.status)
        return response


def build_app(settings: Settings, service: ConversationService, host: str | None = None) -> web.Application:
    """The API on ``host`` (default ``BACKTRACK_HOST``): its Host rule depends on where it listens."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    where = host or settings.host
    middlewares = [_traced, _errors, guard(settings, where, _error), authenticate(token, _error)]
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    app[SERVICE] = service
    add_graph_routes(app)
    add_place_routes(app)
    add_health_routes(app, service)  # no token needed: see bots/serving.py
    add_viewer(app)  # /ui; its data calls are under /api/, so the token check covers them
    return app


async def run(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if not settings.api_token and not is_loopback(host):
        raise SettingsError(f"API_TOKEN must be set to listen on the non-loopback address {host}")
    if args.workers != 1:
        return await supervise(settings, host, port, args.workers)
    worker = args.supervisor is not None  # started by ``--workers``: shares the port
    watching = asyncio.create_task(watch_supervisor(args.supervisor)) if worker else None
    async with open_service(settings) as service:
        app = build_app(settings, service, host)
        await serve_until_stopped(app, host, port, grace=settings.shutdown_grace, reuse_port=worker)
    if watching is not None:
        watching.cancel()
    return 0
