"""The conversation routes, ``/api/graph/*``: ask, resume, replay, edit, retry, versions, branch,
history, rewind, rate, forget.

Every route names its conversation by ``thread_id`` (the key ``api:<thread_id>``) and
calls one service verb; what it answers is shaped by ``bots/api/render.py``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bots.api import render
from bots.api.access import require
from bots.api.requests import attachments, field, json_body, request_id
from bots.serving import SERVICE
from core.errors import ConversationNotFound
from core.keys import ThreadKey
from core.types import Answer

__all__ = ["add_graph_routes"]


def _key(request: web.Request, thread_id: str) -> ThreadKey:
    key = ThreadKey.api(thread_id)
    require(request, str(key))
    return key


async def ask(request: web.Request) -> web.Response:
    body = await json_body(request)
    query, thread_id = field(body, "query", str), field(body, "thread_id", str)
    user, files = field(body, "user", str, None), attachments(body)
    team = field(body, "team", bool, None)
    service, key = request.app[SERVICE], _key(request, thread_id)
    once = request_id(request)
    if team is not None:  # the conversation's mode from now on, as /team on|off sets it
        await service.team(key, team, user=user)
    if once is None:
        answer = await service.ask(key, query, user=user, files=files)
    else:
        answer = await service.ask_once(key, query, request_id=once, user=user, files=files)
    return web.json_response(render.answer(thread_id, answer))


async def resume(request: web.Request) -> web.Response:
    body = await json_body(request)
    thread_id, approve = field(body, "thread_id", str), field(body, "approve", bool)
    user, approval_id = field(body, "user", str, None), field(body, "approval_id", int, None)
    service, key = request.app[SERVICE], _key(request, thread_id)
    if approval_id is None:
        pending = await service.pending(key)
        if pending is None:
            raise ConversationNotFound("this conversation has no request waiting for approval")
        approval_id = pending.id
    answer = await service.resolve(key, approval_id, approve, user=user)
    return web.json_response(render.answer(thread_id, answer))


async def replay(request: web.Request) -> web.Response:
    """The turn that ended at ``checkpoint_id`` asked again (with ``query``: edited), a new version."""
    body = await json_body(request)
    thread_id, checkpoint = field(body, "thread_id", str), field(body, "checkpoint_id", str)
    user, query = field(body, "user", str, None), field(body, "query", str, None)
    answer = await request.app[SERVICE].replay(_key(request, thread_id), checkpoint, user=user, text=query)
    return web.json_response(_versioned(thread_id, answer))


async def edit(request: web.Request) -> web.Response:
    """Turn ``index`` of the live branch (as history numbers it) asked again as ``query``."""
    body = await json_body(request)
    thread_id, index = field(body, "thread_id", str), field(body, "index", int)
    query = field(body, "query", str)
    service, key = request.app[SERVICE], _key(request, thread_id)
    turn = await service.turn_on_branch(key, index)
    answer = await service.replay(key, turn.checkpoint_id, user=field(body, "user", str, None), text=query)
    return web.json_response(_versioned(thread_id, answer))


async def retry(request: web.Request) -> web.Response:
    """The last question answered again: another version of the last turn."""
    body = await json_body(request)
    thread_id = field(body, "thread_id", str)
    service, key = request.app[SERVICE], _key(request, thread_id)
    last = await service.history(key, 1)
    if not last:
        raise ConversationNotFound("this conversation has no turn to try again yet")
    answer = await service.replay(key, last[0].checkpoint_id, user=field(body, "user", str, None))
    return web.json_response(_versioned(thread_id, answer))


def _versioned(thread_id: str, answer: Answer) -> dict[str, Any]:
    shown = render.answer(thread_id, answer)
    if answer.turn is not None:
        shown |= {"version": answer.turn.version, "versions": answer.turn.versions}
    return shown


async def versions(request: web.Request) -> web.Response:
    body = await json_body(request)
    thread_id, checkpoint = field(body, "thread_id", str), field(body, "checkpoint_id", str)
    found = await request.app[SERVICE].versions(_key(request, thread_id), checkpoint)
    return web.json_response({"thread_id": thread_id, "versions": [render.turn(t) for t in found]})


async def branch(request: web.Request) -> web.Response:
    """Continue on the version that ended at ``checkpoint_id`` (and what was asked after it)."""
    body = await json_body(request)
    thread_id, checkpoint = field(body, "thread_id", str), field(body, "checkpoint_id", str)
    service, key = request.app[SERVICE], _key(request, thread_id)
    result = await service.switch(key, checkpoint, user=field(body, "user", str, None))
    return web.json_response({
        "thread_id": thread_id,
        "checkpoint_id": result.head.checkpoint_id if result.head else None,
        "turns": [render.turn(t) for t in await service.history(key, 10)],
    })


async def history(request: web.Request) -> web.Response:
    body = await json_body(request)
    thread_id, limit = field(body, "thread_id", str), field(body, "limit", int, 10)
    service, key = request.app[SERVICE], _key(request, thread_id)
    if not field(body, "all_branches", bool, False):
        turns = await service.history(key, limit)
        return web.json_response({"thread_id": thread_id, "turns": [render.turn(t) for t in turns]})
    audit = await service.audit(key, limit, steps=field(body, "steps", bool, False))
    return web.json_response({
        "thread_id": thread_id,
        "turns": [
            {
                **render.turn(b.turn), "live": b.live, "parent_checkpoint_id": b.parent_checkpoint_id,
                **({"steps": [render.step_summary(s) for s in b.steps]} if b.steps else {}),
            }
            for b in audit.turns
        ],
        "rewinds": [render.rewind(r) for r in audit.rewinds],
    })


async def rewind(request: web.Request) -> web.Response:
    body = await json_body(request)
    thread_id, steps = field(body, "thread_id", str), field(body, "steps_back", int)
    user = field(body, "user", str, None)
    service, key = request.app[SERVICE], _key(request, thread_id)
    result = await service.rewind(key, steps, user=user)
    turns = await service.history(key, 10)
    return web.json_response({
        "thread_id": thread_id,
        "checkpoint_id": result.head.checkpoint_id if result.head else None,
        "removed": [render.turn(t) for t in result.removed],
        "turns": [render.turn(t) for t in turns],
    })


async def feedback(request: web.Request) -> web.Response:
    """A 👍/👎 (``up``/``down``) on a turn, as the chat buttons give it: one per user and turn."""
    body = await json_body(request)
    thread_id, checkpoint = field(body, "thread_id", str), field(body, "checkpoint_id", str)
    user, value = field(body, "user", str), field(body, "value", str)
    changed = await request.app[SERVICE].feedback(_key(request, thread_id), checkpoint, user, value)
    return web.json_response({"thread_id": thread_id, "checkpoint_id": checkpoint, "changed": changed})


async def forget(request: web.Request) -> web.Response:
    thread_id = request.match_info["thread_id"]
    await request.app[SERVICE].forget(_key(request, thread_id))
    return web.json_response({"thread_id": thread_id, "deleted": True})


def add_graph_routes(app: web.Application) -> None:
    app.router.add_post("/api/graph", ask)
    app.router.add_post("/api/graph/history", history)
    app.router.add_post("/api/graph/rewind", rewind)
    app.router.add_post("/api/graph/resume", resume)
    app.router.add_post("/api/graph/replay", replay)
    app.router.add_post("/api/graph/edit", edit)
    app.router.add_post("/api/graph/retry", retry)
    app.router.add_post("/api/graph/versions", versions)
    app.router.add_post("/api/graph/branch", branch)
    app.router.add_post("/api/graph/feedback", feedback)
    app.router.add_delete("/api/graph/{thread_id}", forget)
