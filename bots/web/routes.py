"""The viewer's routes, mounted on the API's app: same port, same ``API_TOKEN`` rule.

The page itself (``/ui`` and its script and style) holds no data, so it is served to
anyone: without a valid token it can only show its login form. Every call that reads or
changes data is under ``/api/ui/``, where the API's bearer-token check applies. Actions go
through the service verbs the chat commands use, recorded as user ``web``.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from aiohttp import web

from bots.api.access import grant_of, require
from bots.api.render import approval
from bots.api.requests import json_body, key_of
from bots.serving import SERVICE
from bots.web.render import conversation_page, tool_call, tree, turn_steps
from core.errors import InvalidInput, StaleApproval
from core.keys import ThreadKey

__all__ = ["WEB_USER", "add_viewer"]

WEB_USER = "web"
"""Who the viewer's actions are recorded as (rewinds, replays, approval decisions)."""

_STATIC = files("bots.web") / "static"
_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
_PAGE = 50
_NO_STORE = {"Cache-Control": "no-store"}
_PAGE_HEADERS = {
    **_NO_STORE,
    # the page runs only its own script and styles, sends no referrer, is never framed
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


_LARGEST = 2**63 - 1
"""PostgreSQL's bigint: a larger number cannot name a turn or a page."""


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _LARGEST:
        raise InvalidInput(f"{name} must be a whole number from 0 to {_LARGEST}")
    return int(raw)


def _reach(request: web.Request, raw: Any) -> ThreadKey:
    """The conversation a call names, if the caller's token reaches it (403 otherwise)."""
    key = key_of(raw)
    require(request, str(key))
    return key


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"field {name!r} must be a non-empty string")
    return value


async def _page(request: web.Request) -> web.Response:
    html = (_STATIC / "index.html").read_bytes()
    return web.Response(body=html, content_type="text/html", headers=_PAGE_HEADERS)


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _FILES:
        raise web.HTTPNotFound()
    body = (_STATIC / name).read_bytes()
    return web.Response(body=body, content_type=_FILES[name], headers={"X-Content-Type-Options": "nosniff"})


async def _conversations(request: web.Request) -> web.Response:
    page = await request.app[SERVICE].viewer.conversations(
        grant=grant_of(request),
        search=request.query.get("q") or None,
        platform=request.query.get("platform") or None,
        offset=_int(request, "offset") or 0,
        limit=_PAGE if (limit := _int(request, "limit")) is None else limit,
    )
    return web.json_response(conversation_page(page), headers=_NO_STORE)


async def _tool_calls(request: web.Request) -> web.Response:
    key = _reach(request, request.query.get("key"))
    found = await request.app[SERVICE].viewer.tool_calls(key)
    return web.json_response({"tool_calls": [tool_call(c) for c in found]}, headers=_NO_STORE)


async def _tree(request: web.Request) -> web.Response:
    key = _reach(request, request.query.get("key"))
    found = await request.app[SERVICE].viewer.tree(key, before=_int(request, "before"))
    return web.json_response(tree(found), headers=_NO_STORE)


async def _steps(request: web.Request) -> web.Response:
    key = _reach(request, request.query.get("key"))
    checkpoint = request.query.get("checkpoint_id") or ""
    if not checkpoint:
        raise InvalidInput("missing checkpoint_id")
    found = await request.app[SERVICE].viewer.steps(key, checkpoint)
    return web.json_response(turn_steps(found), headers=_NO_STORE)


async def _rewind(request: web.Request) -> web.Response:
    body = await json_body(request)
    key, checkpoint = _reach(request, body.get("key")), _text(body, "checkpoint_id")
    result = await request.app[SERVICE].rewind_to(key, checkpoint, user=WEB_USER)
    return web.json_response({"removed": len(result.removed)})


async def _replay(request: web.Request) -> web.Response:
    body = await json_body(request)
    key, checkpoint = _reach(request, body.get("key")), _text(body, "checkpoint_id")
    answer = await request.app[SERVICE].replay(key, checkpoint, user=WEB_USER)
    return web.json_response({"answer": answer.text, "checkpoint_id": answer.checkpoint_id})


async def _resolve(request: web.Request) -> web.Response:
    body = await json_body(request)
    key, approve, approval_id = _reach(request, body.get("key")), body.get("approve"), body.get("approval_id")
    if not isinstance(approve, bool) or not isinstance(approval_id, int) or isinstance(approval_id, bool):
        raise InvalidInput("approve must be true or false and approval_id a number")
    service = request.app[SERVICE]
    pending = await service.pending(key)
    if pending is None or pending.id != approval_id:
        raise StaleApproval("That request is not waiting for a decision any more.")
    answer = await service.resolve(key, approval_id, approve, user=WEB_USER)
    return web.json_response(
        {"answer": answer.text, "approval": approval(answer.approval) if answer.approval else None}
    )


async def _forget(request: web.Request) -> web.Response:
    body = await json_body(request)
    await request.app[SERVICE].forget(_reach(request, body.get("key")))
    return web.json_response({"deleted": True})


def add_viewer(app: web.Application) -> None:
    """Mount ``/ui`` and ``/api/ui/*`` on ``app`` (whose middleware checks tokens on ``/api/``)."""
    app.router.add_get("/ui", _page)
    app.router.add_get("/ui/", _page)
    app.router.add_get("/ui/static/{name}", _asset)
    app.router.add_get("/api/ui/conversations", _conversations)
    app.router.add_get("/api/ui/tree", _tree)
    app.router.add_get("/api/ui/tool_calls", _tool_calls)
    app.router.add_get("/api/ui/steps", _steps)
    app.router.add_post("/api/ui/rewind", _rewind)
    app.router.add_post("/api/ui/replay", _replay)
    app.router.add_post("/api/ui/resolve", _resolve)
    app.router.add_post("/api/ui/forget", _forget)
