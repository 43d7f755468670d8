"""A fake Slack: the Web API, ``response_url`` endpoints and a Socket Mode websocket.

The bot's real slack-sdk client talks to it through ``SLACK_API_URL``. It keeps the
messages the bot posted (with ``chat.update`` applied), so a test reads a thread the way
a user would see it. ``rate_limit(method, n)`` answers the next ``n`` calls of a method
with HTTP 429 and ``Retry-After: 1``. Socket Mode: ``apps.connections.open`` hands out
the websocket URL, ``send_envelope`` pushes an ``events_api`` envelope and the client's
acknowledgements are recorded in ``acks``. Block Kit ``blocks`` are kept with each
message (``chat.update`` replaces them when it sends some, as Slack does), so a test can
find the buttons a user would click.

Slack's agent surface, as strict as Slack: ``chat.startStream`` needs a thread (and, in a
channel, the recipient team and user), ``chat.appendStream`` / ``chat.stopStream`` need a
stream that is still open, a stream ends by itself ``STREAM_LIFETIME`` seconds after it
started (by ``clock``, which a test may replace to simulate time), ``markdown_text`` is
limited to 12,000 characters. ``refuse_streaming`` makes ``chat.startStream`` fail as in a
workspace without it; ``refuse_status`` makes ``assistant.threads.*`` fail as for an app
without the agent feature. ``statuses``, ``prompts`` and ``titles`` record what they set.

Files: ``add_file`` makes the file object an event carries and serves its bytes at its
``url_private(_download)``, as Slack does, only with a bearer token: without one Slack
redirects to its login page (on another host). ``downloads`` records each download and
its token.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.http import start_app

__all__ = ["STREAM_LIFETIME", "Call", "FakeSlack", "Posted", "wait_until"]

STREAM_LIFETIME = 300.0
_STREAM_TEXT = 12_000


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    status: int = 200
    error: str | None = None
    """The ``error`` Slack answered with, if it refused the call."""


@dataclass
class Posted:
    channel: str
    ts: str
    thread_ts: str | None
    text: str
    edits: list[str] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    streaming: bool = False
    opened: float = 0.0
    """When its stream started (by the fake's clock)."""
    closed: float | None = None

    def feedback(self) -> dict[str, Any] | None:
        """The message's 👍/👎 element (a ``feedback_buttons`` in a ``context_actions`` block)."""
        found = [e for b in self.blocks if b.get("type") == "context_actions"
                 for e in b.get("elements", []) if e.get("type") == "feedback_buttons"]
        return found[0] if found else None

    def buttons(self) -> list[dict[str, Any]]:
        """The buttons of the message's ``actions`` blocks, as shown now."""
        return [e for b in self.blocks if b.get("type") == "actions" for e in b.get("elements", [])
                if e.get("type") == "button"]


async def wait_until(predicate: Callable[[], object], within: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


class FakeSlack:
    def __init__(self, team: str = "T0FAKE", bot_user: str = "UBOT", bot_id: str = "BBOT") -> None:
        self.team = team
        self.bot_user = bot_user
        self.bot_id = bot_id
        self.calls: list[Call] = []
        self.messages: list[Posted] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self.acks: list[dict[str, Any]] = []
        self.homes: dict[str, dict[str, Any]] = {}
        """The App Home view last published for each user."""
        self._limited: dict[str, int] = {}
        self._failing: dict[str, tuple[int, int]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._clock = itertools.count(1)
        self._epoch = int(time.time())
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.clock: Callable[[], float] = time.monotonic
        self.refuse_streaming = False
        self.refuse_status = False
        self.statuses: list[tuple[str, str, str]] = []
        self.prompts: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.titles: dict[tuple[str, str], str] = {}
        self.users: dict[str, dict[str, Any]] = {}
        """The workspace's people, by id, as ``users.info`` returns them (``add_user``)."""
        self._files: dict[str, _File] = {}
        self.client_id, self.client_secret = "1234.5678", "client-secret"
        self._codes: dict[str, tuple[str, str, str | None]] = {}
        self.revoked: set[str] = set()
        """Bot tokens revoked (an uninstalled app's): Slack answers them ``invalid_auth``."""
        self.ephemerals: list[tuple[str, str, str]] = []
        """(channel, user, text) of every ``chat.postEphemeral``."""
        self.downloads: list[tuple[str, str | None]] = []
        """(file name, bearer token or None) of every file download."""

    # -- test controls ---------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self) -> str:
        name = uuid.uuid4().hex
        self.responses[name] = []
        return f"{self.url}/response/{name}"

    def responded(self, url: str) -> list[dict[str, Any]]:
        return self.responses[url.rsplit("/", 1)[1]]

    def rate_limit(self, method: str, times: int = 1) -> None:
        self._limited[method] = times

    def fail(self, method: str, times: int = 1, status: int = 500) -> None:
        """Answer the next ``times`` calls of ``method`` with an HTTP error, posting nothing."""
        self._failing[method] = (times, status)

    def add_user(self, user: str, display_name: str, real_name: str = "") -> None:
        self.users[user] = {
            "id": user, "team_id": self.team, "name": user.lower(), "deleted": False,
            "real_name": real_name or display_name, "is_bot": False,
            "profile": {"display_name": display_name, "real_name": real_name or display_name},
        }

    def install(self, team: str, name: str = "", *, enterprise: str | None = None) -> str:
        """What Slack does when someone approves the install in ``team``: a one-time code for
        ``oauth.v2.access``, which hands that workspace its own bot token."""
        code = uuid.uuid4().hex
        self._codes[code] = (team, name or team, enterprise)
        return code

    def token_of(self, team: str) -> str:
        return f"xoxb-{team.lower()}-{self.bot_user.lower()}"

    def made(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str | None) -> list[str]:
        """The bot's messages in a thread (``None``: a channel's top level), as shown now."""
        return [m.text for m in self.messages if m.channel == channel and m.thread_ts == thread_ts]

    def status_of(self, channel: str, thread_ts: str) -> list[str]:
        """Every status set in a thread, in order ("" clears it)."""
        return [status for c, t, status in self.statuses if (c, t) == (channel, thread_ts)]

    def streaming(self) -> bool:
        return any(m.streaming for m in self.messages)

    def posted(self, channel: str, thread_ts: str | None) -> list[Posted]:
        """Like ``thread``, with each message's ts and blocks."""
        return [m for m in self.messages if m.channel == channel and m.thread_ts == thread_ts]

    def next_ts(self) -> str:
        return f"{self._epoch}.{next(self._clock):06d}"

    @property
    def connected(self) -> int:
        return len(self._sockets)

    async def send_envelope(self, payload: dict[str, Any], kind: str = "events_api") -> str:
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return envelope_id

    def add_file(
        self, name: str, data: bytes, mimetype: str, *, redirect: str | None = None,
        size: int | None = None, chunked: bool = False, url: str | None = None,
    ) -> dict[str, Any]:
        """A hosted file's object as events carry it. ``redirect``: its download answers 302
        there; ``size``: what the object claims; ``chunked``: sent without a length;
        ``url``: the file lives at that URL instead (another host)."""
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self._files[file_id] = _File(name, data, mimetype, redirect, chunked)
        base = url or f"{self.url}/files-pri/{self.team}-{file_id}"
        return {
            "id": file_id, "created": int(time.time()), "timestamp": int(time.time()), "name": name,
            "title": name, "mimetype": mimetype, "filetype": name.rsplit(".", 1)[-1], "user": "U0",
            "size": len(data) if size is None else size, "mode": "hosted", "is_external": False,
            "url_private": base if url else f"{base}/{name}",
            "url_private_download": base if url else f"{base}/download/{name}",
            "permalink": f"https://fake.slack.com/files/U0/{file_id}/{name}",
        }

    # -- server ----------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # slack-sdk sends some reads (users.info) as GET
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/socket", self._socket)
        app.router.add_get(r"/files-pri/{team}-{file_id}/{rest:.*}", self._file)
        self._runner, self.url = await start_app(app, access_log=None)
        return self.url

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        else:
            params.update(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth else params.get("token")
        call = Call(method, params, token)
        self.calls.append(call)
        if self._limited.get(method):
            self._limited[method] -= 1
            call.status = 429
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        times, status = self._failing.get(method, (0, 0))
        if times:
            self._failing[method] = (times - 1, status)
            call.status = status
            return web.json_response({"ok": False, "error": "internal_error"}, status=status)
        if not token:
            return web.json_response({"ok": False, "error": "not_authed"})
        answer = self._answer(method, params, token)
        call.error = None if answer.get("ok") else str(answer.get("error"))
        return web.json_response(answer)

    def _answer(self, method: str, params: dict[str, Any], token: str) -> dict[str, Any]:
        if method == "oauth.v2.access":
            return self._exchange(params, token)
        if token in self.revoked:
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            teams = [t for (t, _, _) in self._codes.values() if self.token_of(t) == token]
            return {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "backtrack",
                "team_id": teams[0] if teams else self.team,
                "user_id": self.bot_user,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        if method == "users.info":  # a bot token with users:read, and a user of this workspace
            if not token.startswith("xoxb-"):
                return {"ok": False, "error": "not_allowed_token_type"}
            found = self.users.get(str(params.get("user", "")))
            return {"ok": True, "user": found} if found else {"ok": False, "error": "user_not_found"}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http://", "ws://") + "/socket"}
        if method in ("chat.postMessage", "chat.update") and (error := _check_blocks(_blocks(params))):
            return {"ok": False, "error": "invalid_blocks", "errors": [error]}
        if method == "views.publish":
            return self._publish(params)
        if method == "chat.postMessage":
            channel, ts = str(params["channel"]), self.next_ts()
            thread_ts = params.get("thread_ts")
            self.messages.append(
                Posted(channel, ts, thread_ts, str(params.get("text", "")), blocks=_blocks(params))
            )
            message = {"type": "message", "user": self.bot_user, "bot_id": self.bot_id,
                       "text": params.get("text", ""), "ts": ts}
            if thread_ts:
                message["thread_ts"] = thread_ts
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method in _AGENT_METHODS:
            return self._agent(method, params)
        if method == "chat.getPermalink":  # only for a message that exists
            where, at = params.get("channel"), params.get("message_ts")
            if not any(m.channel == where and m.ts == at for m in self.messages):
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": where,
                    "permalink": f"https://fake.slack.com/archives/{where}/p{str(at).replace('.', '')}"}
        if method == "chat.postEphemeral":  # to one member: a channel and a user are required
            if not params.get("channel") or not params.get("user") or not params.get("text"):
                return {"ok": False, "error": "invalid_arguments"}
            self.ephemerals.append((str(params["channel"]), str(params["user"]), str(params["text"])))
            return {"ok": True, "message_ts": self.next_ts()}
        if method == "chat.update":
            for posted in self.messages:
                if posted.channel == params["channel"] and posted.ts == params["ts"]:
                    if posted.streaming:
                        return {"ok": False, "error": "message_not_found"}
                    posted.edits.append(posted.text)
                    posted.text = str(params.get("text", ""))
                    if "blocks" in params:
                        posted.blocks = _blocks(params)
                    return {"ok": True, "channel": posted.channel, "ts": posted.ts,
                            "text": posted.text}
            return {"ok": False, "error": "message_not_found"}
        return {"ok": False, "error": "unknown_method"}

    def _exchange(self, params: dict[str, Any], auth: str) -> dict[str, Any]:
        """``oauth.v2.access`` as Slack checks it: the app's credentials (HTTP Basic, or form
        fields), a code issued by ``install`` and used once, the same redirect URI."""
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
        else:
            client_id, secret = str(params.get("client_id", "")), str(params.get("client_secret", ""))
        if (client_id, secret) != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id" if client_id != self.client_id else "bad_client_secret"}
        found = self._codes.pop(str(params.get("code", "")), None)
        if found is None:
            return {"ok": False, "error": "invalid_code"}
        team, name, enterprise = found
        self._codes[f"used-{uuid.uuid4().hex}"] = found  # keeps the team for auth.test of its token
        return {
            "ok": True, "app_id": "A0FAKE", "access_token": self.token_of(team), "token_type": "bot",
            "scope": "app_mentions:read,chat:write,commands", "bot_user_id": self.bot_user,
            "team": {"id": team, "name": name},
            "enterprise": {"id": enterprise, "name": enterprise} if enterprise else None,
            "is_enterprise_install": False, "authed_user": {"id": "UINSTALLER"},
        }

    def _publish(self, params: dict[str, Any]) -> dict[str, Any]:
        """``views.publish`` as Slack checks it: a user id, a ``home`` view of at most 100 blocks."""
        user, raw = params.get("user_id"), params.get("view")
        if not isinstance(user, str) or not user or raw is None:
            return {"ok": False, "error": "invalid_arguments"}
        view = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {
                "messages": ["[ERROR] must be a home view [json-pointer:/view/type]"]}}
        blocks = view.get("blocks")
        if not isinstance(blocks, list) or len(blocks) > 100 or _check_blocks(blocks):
            return {"ok": False, "error": "invalid_blocks"}
        self.homes[user] = view
        return {"ok": True, "view": {"id": "V" + uuid.uuid4().hex[:10].upper(), **view}}

    def _agent(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The streaming and assistant-thread methods (JSON bodies, as slack-sdk sends them)."""
        if method.startswith("assistant."):
            channel, thread_ts = params.get("channel_id"), params.get("thread_ts")
            if not isinstance(channel, str) or not channel or not isinstance(thread_ts, str) or not thread_ts:
                return {"ok": False, "error": "invalid_arguments"}
            if self.refuse_status:
                return {"ok": False, "error": "missing_scope", "needed": "assistant:write"}
            if method == "assistant.threads.setStatus":
                if not isinstance(params.get("status"), str):
                    return {"ok": False, "error": "invalid_arguments"}
                self.statuses.append((channel, thread_ts, params["status"]))
            elif method == "assistant.threads.setSuggestedPrompts":
                prompts = params.get("prompts")
                if (not isinstance(prompts, list) or not 1 <= len(prompts) <= 4
                        or not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts)):
                    return {"ok": False, "error": "invalid_arguments"}
                self.prompts[(channel, thread_ts)] = prompts
            else:
                if not params.get("title"):
                    return {"ok": False, "error": "invalid_arguments"}
                self.titles[(channel, thread_ts)] = str(params["title"])
            return {"ok": True}
        text = str(params.get("markdown_text") or "") + "".join(
            str(c.get("text", "")) for c in params.get("chunks") or [] if isinstance(c, dict)
        )
        if len(text) > _STREAM_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        channel = params.get("channel")
        if method == "chat.startStream":
            if self.refuse_streaming:
                return {"ok": False, "error": "feature_not_enabled"}
            thread_ts = params.get("thread_ts")
            if not isinstance(channel, str) or not channel or not isinstance(thread_ts, str) or not thread_ts:
                return {"ok": False, "error": "invalid_arguments"}
            if not channel.startswith("D") and not (params.get("recipient_team_id")
                                                    and params.get("recipient_user_id")):
                return {"ok": False, "error": "invalid_arguments"}
            ts = self.next_ts()
            self.messages.append(Posted(channel, ts, thread_ts, text, streaming=True, opened=self.clock()))
            return {"ok": True, "channel": channel, "ts": ts}
        found = [m for m in self.messages if m.channel == channel and m.ts == params.get("ts")]
        if not found:
            return {"ok": False, "error": "message_not_found"}
        [posted] = found
        if posted.streaming and self.clock() - posted.opened > STREAM_LIFETIME:
            posted.streaming, posted.closed = False, posted.opened + STREAM_LIFETIME  # Slack ended it
        if not posted.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if method == "chat.appendStream" and not text:
            return {"ok": False, "error": "invalid_arguments"}
        posted.text += text
        if method == "chat.stopStream":
            posted.streaming, posted.closed = False, self.clock()
            if "blocks" in params:
                posted.blocks = _blocks(params)
        return {"ok": True, "channel": posted.channel, "ts": posted.ts}

    async def _file(self, request: web.Request) -> web.StreamResponse:
        file = self._files.get(request.match_info["file_id"])
        if file is None or request.match_info["team"] != self.team:
            return web.Response(status=404, text="file not found")
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        self.downloads.append((file.name, token))
        if token is None:  # Slack sends a browser to its sign-in page
            raise web.HTTPFound(f"https://{self.team.lower()}.slack.com/?redir={request.path}")
        if file.redirect:
            raise web.HTTPFound(file.redirect)
        if not file.chunked:
            return web.Response(body=file.data, content_type=file.mimetype)
        response = web.StreamResponse(headers={"Content-Type": file.mimetype})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for i in range(0, len(file.data), 16384):
                await response.write(file.data[i:i + 16384])
        except ConnectionResetError:  # the bot stopped reading at its cap
            return response
        await response.write_eof()
        return response

    async def _response_url(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.responses:
            return web.Response(status=404, text="no_service")
        self.responses[name].append(await request.json())
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": 1,
            "debug_info": {"host": "fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A0FAKE"},
        }))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self.acks.append(json.loads(message.data))
        finally:
            self._sockets.remove(ws)
        return ws


@dataclass
class _File:
    name: str
    data: bytes
    mimetype: str
    redirect: str | None
    chunked: bool


_AGENT_METHODS = frozenset({
    "chat.startStream", "chat.appendStream", "chat.stopStream", "assistant.threads.setStatus",
    "assistant.threads.setSuggestedPrompts", "assistant.threads.setTitle",
})


def _blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Blocks arrive as a JSON list, or as a JSON string in a form-encoded call."""
    blocks = params.get("blocks") or []
    parsed: list[dict[str, Any]] = json.loads(blocks) if isinstance(blocks, str) else list(blocks)
    return parsed


_CONTEXT_ACTIONS = frozenset({"feedback_buttons", "icon_button"})


def _check_blocks(blocks: list[dict[str, Any]]) -> str | None:
    """What Slack refuses in blocks we use: too many, a section over 3000 characters, a
    ``context_actions`` block with other elements or more than 5, a feedback button whose
    text passes 75 characters or whose value passes 2000."""
    if len(blocks) > 50:
        return "no more than 50 items allowed [json-pointer:/blocks]"
    for n, block in enumerate(blocks):
        if block.get("type") == "actions" and (error := _check_actions(block, n)):
            return error
        text = block.get("text")
        if block.get("type") == "section" and isinstance(text, dict) and len(text.get("text", "")) > 3000:
            return f"must be less than 3001 characters [json-pointer:/blocks/{n}/text]"
        if block.get("type") != "context_actions":
            continue
        elements = block.get("elements", [])
        if not elements or len(elements) > 5 or any(e.get("type") not in _CONTEXT_ACTIONS for e in elements):
            return f"invalid context_actions elements [json-pointer:/blocks/{n}/elements]"
        for e in elements:
            for side in ("positive_button", "negative_button") if e["type"] == "feedback_buttons" else ():
                button = e.get(side) or {}
                if len(button.get("text", {}).get("text", "")) > 75 or not 0 < len(button.get("value", "")) <= 2000:
                    return f"invalid feedback button [json-pointer:/blocks/{n}/elements/0/{side}]"
    return None


def _check_actions(block: dict[str, Any], n: int) -> str | None:
    """An ``actions`` block as Slack checks it: 1 to 25 elements, unique action ids, a button's
    text at most 75 characters and its value at most 2000."""
    elements = block.get("elements", [])
    if not 0 < len(elements) <= 25:
        return f"must have 1 to 25 elements [json-pointer:/blocks/{n}/elements]"
    ids = [e.get("action_id") for e in elements]
    if len(set(ids)) != len(ids):
        return f"action_id must be unique [json-pointer:/blocks/{n}/elements]"
    for i, e in enumerate(elements):
        if e.get("type") == "button" and (
            not 0 < len(e.get("text", {}).get("text", "")) <= 75 or len(e.get("value", "")) > 2000
        ):
            return f"invalid button [json-pointer:/blocks/{n}/elements/{i}]"
    return None
