"""``backtrack api``: the HTTP API (aiohttp).

Every error becomes a JSON body with a status from one table; a request that fails
validation never reaches the service, so it changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bots.serving import add_health_routes, serve_until_stopped
from bots.web import add_viewer
from bots.workers import supervise, watch_supervisor
from core.agents.attachments import Attachment
from core.conversations.service import ConversationService
from core.conversations.wording import preview
from core.errors import (
    AgentFailed,
    ApprovalPending,
    BacktrackError,
    ConversationBusy,
    ConversationNotFound,
    InvalidInput,
    InvalidKey,
    NotPermitted,
    RewindOutOfRange,
    SettingsError,
    ShuttingDown,
    StaleApproval,
    StorageUnavailable,
    TurnInterrupted,
    UsageCapReached,
)
from core.keys import ThreadKey
from core.metrics import count_error
from core.runtime import open_service
from core.settings import Settings
from core.storage.places import KEEP, Keep
from core.types import Answer, Approval, Step, Turn

__all__ = ["build_app", "run"]

_log = logging.getLogger(__name__)

SERVICE: web.AppKey[ConversationService] = web.AppKey("service", ConversationService)

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
    AgentFailed: 502,
    StorageUnavailable: 503,
    ShuttingDown: 503,
}

_REQUEST_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_KINDS = {int: "an integer", str: "a string", bool: "true or false"}

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


def _auth(token: str | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and request.path.startswith("/api/"):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return _error(401, "unauthorized", "missing or wrong bearer token")
        return await handler(request)

    return check


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, default: Any = ...) -> Any:
    if name not in body:
        if default is ...:
            raise InvalidInput(f"missing field {name!r}")
        return default
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"field {name!r} must be {_KINDS[kind]}")
    return value


def _files(body: dict[str, Any]) -> list[Attachment]:
    """``files``: ``[{"name": "chart.png", "data": "<base64>", "mime": "image/png"}]`` (mime optional)."""
    files = _field(body, "files", list, [])
    found = []
    for n, file in enumerate(files):
        name, data = file.get("name") if isinstance(file, dict) else None, None
        mime = file.get("mime") if isinstance(file, dict) else None
        if isinstance(file, dict) and isinstance(file.get("data"), str):
            try:
                data = base64.b64decode(file["data"], validate=True)
            except (binascii.Error, ValueError):
                data = None
        if not (isinstance(name, str) and name.strip()) or data is None or not isinstance(mime, str | None):
            raise InvalidInput(f"files[{n}] must be an object with a \"name\" and base64 \"data\"")
        found.append(Attachment(name.strip(), mime, data))
    return found


def _key(thread_id: str) -> ThreadKey:
    return ThreadKey.api(thread_id)


def _turn(turn: Turn) -> dict[str, Any]:
    return {
        "index": turn.index,
        "user": turn.user,
        "question": turn.question,
        "answer": turn.answer,
        "time": turn.at.isoformat(),
        "checkpoint_id": turn.checkpoint_id,
        "feedback": [{"user": f.user, "value": f.value, "time": f.at.isoformat()} for f in turn.feedback],
    }


def _step(step: Step) -> dict[str, Any]:
    """One step of a turn, as the audit lists it: who ran, what it called, how long, what it said."""
    said = [m.content for m in step.added if m.type in ("ai", "tool") and m.content]
    return {
        "agent": step.agent,
        "node": step.node,
        "tool_calls": [{"name": c["name"], "args": c["args"]} for m in step.added for c in m.tool_calls],
        "returned": preview(said[-1], 200) if said else None,
        "started_at": step.started_at.isoformat(),
        "duration_ms": step.duration_ms,
    }


def _approval(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "tool": approval.tool,
        "args": approval.args,
        "status": approval.status,
        "requested_by": approval.requested_by,
        "decided_by": approval.decided_by,
    }


def _answer(thread_id: str, answer: Answer) -> web.Response:
    """A finished turn, or a paused one: then ``approval`` says what waits for a decision."""
    return web.json_response(
        {
            "answer": answer.text,
            "thread_id": thread_id,
            "checkpoint_id": answer.checkpoint_id,
            "approval": _approval(answer.approval) if answer.approval else None,
        }
    )


async def ask(request: web.Request) -> web.Response:
    body = await _body(request)
    query, thread_id = _field(body, "query", str), _field(body, "thread_id", str)
    user, files = _field(body, "user", str, None), _files(body)
    team = _field(body, "team", bool, None)
    service, key = request.app[SERVICE], _key(thread_id)
    if team is not None:  # the conversation's mode from now on, as /team on|off sets it
        await service.team(key, team, user=user)
    request_id = request.headers.get("Idempotency-Key")
    if request_id is None:
        return _answer(thread_id, await service.ask(key, query, user=user, files=files))
    if not _REQUEST_ID.fullmatch(request_id):
        raise InvalidInput("the Idempotency-Key header must be 1 to 128 letters, digits, '-', '_' or '.'")
    answer = await service.ask_once(key, query, request_id=request_id, user=user, files=files)
    return _answer(thread_id, answer)


async def resume(request: web.Request) -> web.Response:
    body = await _body(request)
    thread_id, approve = _field(body, "thread_id", str), _field(body, "approve", bool)
    user, approval_id = _field(body, "user", str, None), _field(body, "approval_id", int, None)
    service, key = request.app[SERVICE], _key(thread_id)
    if approval_id is None:
        pending = await service.pending(key)
        if pending is None:
            raise ConversationNotFound("this conversation has no request waiting for approval")
        approval_id = pending.id
    return _answer(thread_id, await service.resolve(key, approval_id, approve, user=user))


async def replay(request: web.Request) -> web.Response:
    body = await _body(request)
    thread_id, checkpoint = _field(body, "thread_id", str), _field(body, "checkpoint_id", str)
    user = _field(body, "user", str, None)
    return _answer(thread_id, await request.app[SERVICE].replay(_key(thread_id), checkpoint, user=user))


async def history(request: web.Request) -> web.Response:
    body = await _body(request)
    thread_id, limit = _field(body, "thread_id", str), _field(body, "limit", int, 10)
    service, key = request.app[SERVICE], _key(thread_id)
    if not _field(body, "all_branches", bool, False):
        turns = await service.history(key, limit)
        return web.json_response({"thread_id": thread_id, "turns": [_turn(t) for t in turns]})
    audit = await service.audit(key, limit, steps=_field(body, "steps", bool, False))
    return web.json_response(
        {
            "thread_id": thread_id,
            "turns": [
                {
                    **_turn(b.turn), "live": b.live, "parent_checkpoint_id": b.parent_checkpoint_id,
                    **({"steps": [_step(s) for s in b.steps]} if b.steps else {}),
                }
                for b in audit.turns
            ],
            "rewinds": [
                {
                    "user": r.user,
                    "time": r.at.isoformat(),
                    "from_checkpoint_id": r.from_checkpoint_id,
                    "to_checkpoint_id": r.to_checkpoint_id,
                }
                for r in audit.rewinds
            ],
        }
    )


async def rewind(request: web.Request) -> web.Response:
    body = await _body(request)
    thread_id, steps = _field(body, "thread_id", str), _field(body, "steps_back", int)
    user = _field(body, "user", str, None)
    service, key = request.app[SERVICE], _key(thread_id)
    result = await service.rewind(key, steps, user=user)
    turns = await service.history(key, 10)
    return web.json_response(
        {
            "thread_id": thread_id,
            "checkpoint_id": result.head.checkpoint_id if result.head else None,
            "removed": [_turn(t) for t in result.removed],
            "turns": [_turn(t) for t in turns],
        }
    )


async def feedback(request: web.Request) -> web.Response:
    """A 👍/👎 (``up``/``down``) on a turn, as the chat buttons give it: one per user and turn."""
    body = await _body(request)
    thread_id, checkpoint = _field(body, "thread_id", str), _field(body, "checkpoint_id", str)
    user, value = _field(body, "user", str), _field(body, "value", str)
    changed = await request.app[SERVICE].feedback(_key(thread_id), checkpoint, user, value)
    return web.json_response({"thread_id": thread_id, "checkpoint_id": checkpoint, "changed": changed})


async def forget(request: web.Request) -> web.Response:
    await request.app[SERVICE].forget(_key(request.match_info["thread_id"]))
    return web.json_response({"thread_id": request.match_info["thread_id"], "deleted": True})


def _optional_text(body: dict[str, Any], name: str) -> str | Keep | None:
    """A field that may be a string (set it), null (reset it) or absent (keep it)."""
    if name not in body:
        return KEEP
    value = body[name]
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"field {name!r} must be a string, or null to reset it")
    return value


async def _place(request: web.Request, place: str) -> web.Response:
    own, choice = await request.app[SERVICE].place(place)
    return web.json_response({
        "place": place,
        "persona": own.persona if own else None,
        "model": own.model if own else None,
        "updated_by": own.updated_by if own else None,
        "updated_at": own.updated_at.isoformat() if own else None,
        "effective": {
            "persona": choice.persona,
            "persona_from": choice.persona_from.place if choice.persona_from else None,
            "model": choice.model,
            "model_from": choice.model_from.place if choice.model_from else None,
        },
    })


async def get_place(request: web.Request) -> web.Response:
    """A place's own persona and model, and what its turns run with (a guild's, the default)."""
    return await _place(request, request.match_info["place"])


async def put_place(request: web.Request) -> web.Response:
    """Set (a string) or reset (null) a place's ``persona`` and ``model``; absent fields stay."""
    body = await _body(request)
    persona, model = _optional_text(body, "persona"), _optional_text(body, "model")
    if persona is KEEP and model is KEEP:
        raise InvalidInput("give 'persona' or 'model' (a string to set it, null to reset it)")
    user = _field(body, "user", str, "api")
    place = request.match_info["place"]
    await request.app[SERVICE].change_place(place, user, persona=persona, model=model)
    return await _place(request, place)


def build_app(settings: Settings, service: ConversationService) -> web.Application:
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app = web.Application(
        middlewares=[_errors, _auth(token)], client_max_size=settings.max_body_bytes
    )
    app[SERVICE] = service
    app.router.add_post("/api/graph", ask)
    app.router.add_post("/api/graph/history", history)
    app.router.add_post("/api/graph/rewind", rewind)
    app.router.add_post("/api/graph/resume", resume)
    app.router.add_post("/api/graph/replay", replay)
    app.router.add_post("/api/graph/feedback", feedback)
    app.router.add_delete("/api/graph/{thread_id}", forget)
    app.router.add_get("/api/places/{place}", get_place)
    app.router.add_put("/api/places/{place}", put_place)
    add_health_routes(app, service)  # no token needed: see bots/serving.py
    add_viewer(app, service)  # /ui; its data calls are under /api/, so the token check covers them
    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if not settings.api_token and not _is_loopback(host):
        raise SettingsError(f"API_TOKEN must be set to listen on the non-loopback address {host}")
    if args.workers != 1:
        return await supervise(settings, host, port, args.workers)
    worker = args.supervisor is not None  # started by ``--workers``: shares the port
    watching = asyncio.create_task(watch_supervisor(args.supervisor)) if worker else None
    async with open_service(settings) as service:
        app = build_app(settings, service)
        await serve_until_stopped(app, host, port, grace=settings.shutdown_grace, reuse_port=worker)
    if watching is not None:
        watching.cancel()
    return 0
