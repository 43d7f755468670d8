"""The place routes, ``/api/places/{place}``: read and change a place's persona, model, MCP servers.

The API's token is the operator's, so a change here needs no admin list; the values are
checked as ``/persona`` and ``/model`` check them.
"""

from __future__ import annotations

from aiohttp import web

from bots.api.access import require
from bots.api.requests import field, json_body, optional_text
from bots.serving import SERVICE
from core.errors import InvalidInput
from core.records import KEEP

__all__ = ["add_place_routes"]


async def _place(request: web.Request, place: str) -> web.Response:
    require(request, place)
    own, choice = await request.app[SERVICE].place(place)
    return web.json_response({
        "place": place,
        "persona": own.persona if own else None,
        "model": own.model if own else None,
        "servers": list(own.servers) if own and own.servers is not None else None,
        "updated_by": own.updated_by if own else None,
        "updated_at": own.updated_at.isoformat() if own else None,
        "effective": {
            "persona": choice.persona,
            "persona_from": choice.persona_from.place if choice.persona_from else None,
            "model": choice.model,
            "model_from": choice.model_from.place if choice.model_from else None,
            "servers": list(choice.servers) if choice.servers is not None else None,
        },
    })


async def get_place(request: web.Request) -> web.Response:
    """A place's own persona and model, and what its turns run with (a guild's, the default)."""
    return await _place(request, request.match_info["place"])


async def put_place(request: web.Request) -> web.Response:
    """Set (a string) or reset (null) a place's ``persona`` and ``model``, and its MCP ``servers``
    (a list of names, or null for the default ones); absent fields stay."""
    body = await json_body(request)
    persona, model = optional_text(body, "persona"), optional_text(body, "model")
    raw = body.get("servers", KEEP)
    if raw is not KEEP and raw is not None and not (
        isinstance(raw, list) and len(raw) <= 50 and all(isinstance(s, str) for s in raw)
    ):
        raise InvalidInput("'servers' is a list of MCP server names, or null for the default ones")
    servers = tuple(raw) if isinstance(raw, list) else raw
    if persona is KEEP and model is KEEP and servers is KEEP:
        raise InvalidInput("give 'persona', 'model' or 'servers' (a value to set it, null to reset it)")
    user = field(body, "user", str, "api")
    place = request.match_info["place"]
    require(request, place)
    await request.app[SERVICE].change_place(place, user, persona=persona, model=model, servers=servers)
    return await _place(request, place)


def add_place_routes(app: web.Application) -> None:
    app.router.add_get("/api/places/{place}", get_place)
    app.router.add_put("/api/places/{place}", put_place)
