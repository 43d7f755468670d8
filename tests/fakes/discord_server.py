"""A fake Discord on 127.0.0.1, driven by the real discord.py client.

It speaks enough of the real wire protocol for a bot's life: REST under ``/api/v10``
(login, command sync, messages with their buttons, edits, typing, interaction callbacks
and webhook follow-ups) and the gateway websocket (HELLO, IDENTIFY, READY, GUILD_CREATE,
heartbeats, then dispatches a test injects: messages, edits, slash commands, button clicks).
Every REST call is recorded, and messages are kept with their edits applied, so a test
asserts what a user in the channel would finally see.

As strict as Discord where a bot can get it wrong: only a message's author may edit it
(403, code 50005); content past 2000 characters, more than 5 rows of buttons or 5 buttons
in a row, a ``custom_id`` past 100 characters or used twice in a message, a label past 80
characters are refused with Discord's "Invalid Form Body" (400, code 50035, the field path
under ``errors``); an interaction is answered once (400, code 40060); a disabled button
cannot be clicked. Every edit, the bot's own included, goes out as MESSAGE_UPDATE.

Attachments: ``attachment`` makes the payload a message carries and serves its bytes at
``/attachments/...`` on the fake's own host, as Discord's CDN does: only with the signed
query (``ex``, ``is``, ``hm``), else "This content is no longer available." (404).

Two details matter to discord.py: it parses a REST reply as JSON only when Content-Type
is exactly ``application/json``, and it retries a 429 only when the reply carries a
``Via`` header (without one it assumes a Cloudflare ban).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.http import start_app

__all__ = ["Call", "FakeDiscord", "Place"]

_EPOCH_MS = 1420070400000
_TEXT, _DM, _CATEGORY, _PUBLIC_THREAD = 0, 1, 4, 11
_ALL_PERMISSIONS = str((1 << 47) - 1)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass
class Call:
    """One REST request the bot made, and the status the fake answered with."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 200


@dataclass
class Place:
    """A channel, thread or DM channel the fake knows."""

    id: int
    type: int
    name: str
    guild_id: int | None = None
    parent_id: int | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": str(self.id), "type": self.type, "name": self.name}
        if self.guild_id is not None:
            data |= {
                "guild_id": str(self.guild_id),
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": str(self.parent_id) if self.parent_id else None,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
            }
        if self.type == _PUBLIC_THREAD:
            data |= {
                "owner_id": "1",
                "message_count": 0,
                "member_count": 1,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": _now(),
                    "locked": False,
                },
            }
        if self.type == _DM:
            data["recipients"] = []
        return data


@dataclass
class _Limit:
    method: str
    path: re.Pattern[str]
    retry_after: float


@dataclass
class _Gateway:
    ws: web.WebSocketResponse
    shard: tuple[int, int]
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class FakeDiscord:
    """One guild with text channels, a category, a thread, plus DM channels; one bot user."""

    def __init__(self, token: str = "fake-bot-token") -> None:
        self.token = token
        self._ids = itertools.count(1)
        self.bot = self.user("backtrack", bot=True)
        self.application_id = self.snowflake()
        self.guild_id = self.snowflake()
        self.role_id = self.snowflake()
        """A role in the guild besides @everyone, for allow-list tests."""
        self.places: dict[int, Place] = {}
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}
        """Every message (injected or posted by the bot), edits applied, by id."""
        self.followups: list[dict[str, Any]] = []
        """Interaction follow-ups and edits of the original response, in order."""
        self.commands: dict[str, list[dict[str, Any]]] = {}
        """Registered application commands: "global" or the guild id → the command list."""
        self.identified: list[dict[str, Any]] = []
        self.close_gateway_with: int | None = None
        """When set, the gateway closes with this code right after IDENTIFY (4014: intents)."""
        self._limits: list[_Limit] = []
        self._failures: list[tuple[str, re.Pattern[str], int]] = []
        self._interactions: dict[str, int] = {}
        """Interaction token → the channel it happened in."""
        self._interaction_types: dict[str, int] = {}
        self._clicked: dict[str, int] = {}
        """Interaction token → the message whose button was clicked (what type 7 updates)."""
        self._acknowledged: set[str] = set()
        self._gateways: list[_Gateway] = []
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._cdn: dict[str, tuple[bytes, str | None, str | None]] = {}
        self.downloads: list[str] = []
        """The file name of every attachment download, in order."""

    # -- ids and payloads --------------------------------------------------------------

    def snowflake(self) -> int:
        return ((int(time.time() * 1000) - _EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    def user(self, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(self.snowflake()),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
        }

    def attachment(
        self, filename: str, data: bytes, content_type: str | None, *, size: int | None = None,
        redirect: str | None = None, url: str | None = None,
    ) -> dict[str, Any]:
        """An attachment's payload; ``redirect``: the CDN answers 302 there; ``url``: it lives elsewhere."""
        attachment_id = str(self.snowflake())
        self._cdn[attachment_id] = (data, content_type, redirect)
        signed = f"{self.url}/attachments/1/{attachment_id}/{filename}?ex=6a0b2c3d&is=6a09dabd&hm=ab12cd"
        payload = {"id": attachment_id, "filename": filename, "size": len(data) if size is None else size,
                   "url": url or signed, "proxy_url": url or signed}
        if content_type is not None:
            payload["content_type"] = content_type
        return payload

    def add_place(self, kind: str, name: str, *, parent: int | None = None) -> int:
        """A text channel, category, thread (``parent`` is its channel) or DM channel."""
        types = {"text": _TEXT, "category": _CATEGORY, "thread": _PUBLIC_THREAD, "dm": _DM}
        place = Place(self.snowflake(), types[kind], name, None if kind == "dm" else self.guild_id, parent)
        self.places[place.id] = place
        return place.id

    def _guild_create(self) -> dict[str, Any]:
        everyone = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": _ALL_PERMISSIONS,
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        in_guild = [p for p in self.places.values() if p.guild_id is not None]
        return {
            "id": str(self.guild_id),
            "name": "Fake Guild",
            "icon": None,
            "owner_id": self.bot["id"],
            "unavailable": False,
            "large": False,
            "member_count": 2,
            "joined_at": _now(),
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [everyone, {**everyone, "id": str(self.role_id), "name": "helpers"}],
            "channels": [p.payload() for p in in_guild if p.type != _PUBLIC_THREAD],
            "threads": [p.payload() for p in in_guild if p.type == _PUBLIC_THREAD],
            "members": [self._member(self.bot)],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
        }

    def _member(self, user: dict[str, Any], roles: list[int] | None = None) -> dict[str, Any]:
        return {
            "user": user,
            "roles": [str(r) for r in roles or []],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": _ALL_PERMISSIONS,
        }

    def _message(self, channel_id: int, author: dict[str, Any], content: str, **extra: Any) -> dict[str, Any]:
        message = {
            "id": str(self.snowflake()),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            **extra,
        }
        place = self.places.get(channel_id)
        if place is not None and place.guild_id is not None:
            message["guild_id"] = str(place.guild_id)
        self.messages[int(message["id"])] = message
        return message

    # -- what tests read -----------------------------------------------------------------

    def bot_messages(self, channel_id: int) -> list[dict[str, Any]]:
        """What the bot has said in a channel, oldest first, as it reads now."""
        return [
            m
            for _, m in sorted(self.messages.items())
            if m["channel_id"] == str(channel_id) and m["author"]["id"] == self.bot["id"]
        ]

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.fullmatch(pattern, c.path)]

    def rate_limit_once(self, method: str, pattern: str, retry_after: float = 0.2) -> None:
        """Answer the next matching REST call with a 429, as Discord does."""
        self._limits.append(_Limit(method, re.compile(pattern), retry_after))

    def fail_once(self, method: str, pattern: str, status: int = 500) -> None:
        """Answer the next matching REST call with a server error, doing nothing."""
        self._failures.append((method, re.compile(pattern), status))

    # -- what tests inject ---------------------------------------------------------------

    async def say(
        self,
        channel_id: int,
        content: str,
        *,
        author: dict[str, Any] | None = None,
        mention_bot: bool = False,
        reply_to: int | None = None,
        ping: bool = False,
        roles: list[int] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> int:
        """A user posts a message (``ping``: a reply that notifies the replied-to author)."""
        author = author or self.user("ada")
        extra: dict[str, Any] = {"attachments": attachments or []}
        if mention_bot:
            content = f"<@{self.bot['id']}> {content}"
            extra["mentions"] = [self.bot]
        if reply_to is not None:
            referenced = self.messages[reply_to]
            extra |= {
                "type": 19,
                "message_reference": {
                    "type": 0,
                    "message_id": str(reply_to),
                    "channel_id": str(channel_id),
                },
                "referenced_message": referenced,
            }
            if ping:
                extra["mentions"] = [*extra.get("mentions", []), referenced["author"]]
        message = self._message(channel_id, author, content, **extra)
        if "guild_id" in message:
            message["member"] = {k: v for k, v in self._member(author, roles).items() if k != "user"}
        await self.dispatch("MESSAGE_CREATE", message)
        return int(message["id"])

    async def edit(self, message_id: int, content: str) -> dict[str, Any]:
        """Its author edits a message: the fake's copy changes, and MESSAGE_UPDATE goes out as
        Discord sends it (the whole message, ``edited_timestamp`` set). Returns that payload,
        so a test can deliver it again, as a gateway resume may."""
        message = self.messages[message_id]
        message |= {"content": content, "edited_timestamp": _now()}
        payload = copy.deepcopy(message)
        await self.dispatch("MESSAGE_UPDATE", payload)
        return payload

    async def unfurl(self, message_id: int, *, partial: bool) -> None:
        """Discord adds a link preview to a message: MESSAGE_UPDATE with embeds and no edit,
        either the whole message (``edited_timestamp`` as it was) or, ``partial``, only the
        id, the channel and the embeds, as Discord sends for some updates."""
        message = self.messages[message_id]
        message["embeds"] = [{"type": "link", "url": "https://example.com/", "title": "Example"}]
        payload = copy.deepcopy(message)
        if partial:
            payload = {k: payload[k] for k in ("id", "channel_id", "guild_id", "embeds") if k in payload}
        await self.dispatch("MESSAGE_UPDATE", payload)

    async def slash(
        self,
        channel_id: int,
        name: str,
        options: Mapping[str, int | bool | str] | None = None,
        *,
        user: dict[str, Any] | None = None,
    ) -> str:
        """A user runs an application command; returns the interaction token.

        As Discord's client does, only options the command registered can be given, each
        sent with its registered type (3 string, 4 integer, 5 boolean).
        """
        place = self.places[channel_id]
        scope = str(place.guild_id) if str(place.guild_id) in self.commands else "global"
        registered = {c["name"]: c for c in self.commands.get(scope, [])}
        types = {o["name"]: o["type"] for o in registered[name].get("options", [])}
        if unknown := set(options or {}) - types.keys():
            raise ValueError(f"/{name} has no option {sorted(unknown)}")
        command = {
            "id": registered[name]["id"],
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": types[k], "value": v} for k, v in (options or {}).items()],
        }
        return await self._interact(channel_id, 2, command, user or self.user("ada"))

    async def message_command(
        self, message_id: int, name: str, *, user: dict[str, Any] | None = None
    ) -> str:
        """A user picks a message command (right-click → Apps → ``name``); the interaction token.

        As Discord does: only a registered command of type 3 can be picked, and the
        interaction names the message by ``target_id`` and carries it in ``resolved``.
        """
        message = copy.deepcopy(self.messages[message_id])
        channel_id = int(message["channel_id"])
        place = self.places[channel_id]
        scope = str(place.guild_id) if str(place.guild_id) in self.commands else "global"
        registered = {(c["name"], c.get("type", 1)): c for c in self.commands.get(scope, [])}
        if (name, 3) not in registered:
            raise ValueError(f"no message command {name!r} is registered")
        data = {
            "id": registered[(name, 3)]["id"],
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): message}},
        }
        return await self._interact(channel_id, 2, data, user or self.user("ada"))

    async def click(
        self,
        message_id: int,
        custom_id: str,
        *,
        user: dict[str, Any] | None = None,
        seen: dict[str, Any] | None = None,
    ) -> str:
        """A user clicks a button on a message; returns the interaction token.

        ``seen`` is the message as the clicker's screen still shows it (a copy taken
        earlier): two people clicking the same button at once both send that version.
        """
        message = copy.deepcopy(seen or self.messages[message_id])
        buttons = [c for row in message.get("components", []) for c in row.get("components", [])]
        button = next((b for b in buttons if b.get("custom_id") == custom_id), None)
        if button is None:
            raise ValueError(f"message {message_id} shows no button {custom_id!r}")
        if button.get("disabled"):
            raise ValueError(f"the button {custom_id!r} of message {message_id} is disabled")
        component = {"custom_id": custom_id, "component_type": 2}
        channel_id = int(message["channel_id"])
        return await self._interact(
            channel_id, 3, component, user or self.user("ada"), clicked=message_id, message=message
        )

    async def _interact(
        self, channel_id: int, kind: int, data: dict[str, Any], user: dict[str, Any],
        clicked: int | None = None, **extra: Any,
    ) -> str:
        place = self.places[channel_id]
        token = f"itoken-{uuid.uuid4().hex}"
        self._interactions[token] = channel_id
        if clicked is not None:
            self._clicked[token] = clicked
        payload: dict[str, Any] = {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": place.payload(),
            "locale": "en-US",
            "app_permissions": _ALL_PERMISSIONS,
            "entitlements": [],
            "attachment_size_limit": 8 * 1024 * 1024,
            "context": 0 if place.guild_id else 1,
            "data": data,
            **extra,
        }
        if place.guild_id is not None:
            payload |= {"guild_id": str(place.guild_id), "member": self._member(user)}
        else:
            payload["user"] = user
        self._interaction_types[payload["id"]] = kind
        await self.dispatch("INTERACTION_CREATE", payload)
        return token

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        gateway = self._gateway_for(data.get("guild_id"))
        await gateway.ws.send_json({"op": 0, "t": event, "s": next(gateway.seq), "d": data})

    def _gateway_for(self, guild_id: str | None) -> _Gateway:
        live = [g for g in self._gateways if not g.ws.closed]
        if not live:
            raise RuntimeError("no bot is connected to the fake gateway")
        count = live[0].shard[1]
        shard = 0 if guild_id is None else (int(guild_id) >> 22) % count
        return next(g for g in live if g.shard[0] == shard)

    # -- server --------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"{self.url.replace('http', 'ws', 1)}/gateway"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        app.router.add_get(r"/attachments/{channel}/{attachment_id}/{filename}", self._attachment)
        self._runner, self.url = await start_app(app)

    async def stop(self) -> None:
        for gateway in self._gateways:
            await gateway.ws.close()
        if self._runner:
            await self._runner.cleanup()

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": 41250}})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            if frame["op"] == 1:
                await ws.send_json({"op": 11, "s": None, "t": None, "d": None})
            elif frame["op"] == 2:
                self.identified.append(frame["d"])
                if self.close_gateway_with is not None:
                    await ws.close(code=self.close_gateway_with, message=b"Disallowed intent(s).")
                    break
                await self._welcome(ws, tuple(frame["d"].get("shard") or (0, 1)))
        return ws

    async def _welcome(self, ws: web.WebSocketResponse, shard: tuple[int, int]) -> None:
        gateway = _Gateway(ws, (int(shard[0]), int(shard[1])))
        mine = (self.guild_id >> 22) % gateway.shard[1] == gateway.shard[0]
        ready = {
            "v": 10,
            "user": self.bot,
            "session_id": uuid.uuid4().hex,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "guilds": [{"id": str(self.guild_id), "unavailable": True}] if mine else [],
            "private_channels": [],
            "relationships": [],
            "shard": list(gateway.shard),
        }
        await ws.send_json({"op": 0, "t": "READY", "s": next(gateway.seq), "d": ready})
        if mine:
            payload = self._guild_create()
            await ws.send_json({"op": 0, "t": "GUILD_CREATE", "s": next(gateway.seq), "d": payload})
        self._gateways.append(gateway)

    async def _attachment(self, request: web.Request) -> web.Response:
        found = self._cdn.get(request.match_info["attachment_id"])
        if found is None or not {"ex", "is", "hm"} <= request.query.keys():
            return web.Response(status=404, text="This content is no longer available.")
        data, content_type, redirect = found
        self.downloads.append(request.match_info["filename"])
        if redirect:
            raise web.HTTPFound(redirect)
        return web.Response(body=data, content_type=content_type or "application/octet-stream")

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if request.content_type == "application/json" else raw
        call = Call(request.method, path, dict(request.query), body)
        self.calls.append(call)
        webhook = path.startswith(("/interactions/", "/webhooks/"))  # the token is in the path
        if not webhook and request.headers.get("Authorization") != f"Bot {self.token}":
            call.status = 401
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        for failure in self._failures:
            if failure[0] == request.method and failure[1].fullmatch(path):
                self._failures.remove(failure)
                call.status = failure[2]
                return _json({"message": f"{failure[2]}: Internal Server Error", "code": 0}, failure[2])
        for limit in self._limits:
            if limit.method == request.method and limit.path.fullmatch(path):
                self._limits.remove(limit)
                call.status = 429
                return _json(
                    {
                        "message": "You are being rate limited.",
                        "retry_after": limit.retry_after,
                        "global": False,
                    },
                    429,
                    {
                        "Retry-After": str(limit.retry_after),
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset-After": str(limit.retry_after),
                        "X-RateLimit-Bucket": "fakebucket",
                        "X-RateLimit-Scope": "user",
                        "Via": "1.1 google",
                    },
                )
        for method, pattern, handler in self._routes():
            if method == request.method and (match := re.fullmatch(pattern, path)):
                status, reply = await handler(body, *match.groups())
                call.status = status
                return web.Response(status=204) if status == 204 else _json(reply, status)
        call.status = 404
        return _json({"message": "404: Not Found", "code": 0}, 404)

    def _routes(self) -> list[tuple[str, str, Callable[..., Awaitable[tuple[int, Any]]]]]:
        return [
            ("GET", r"/users/@me", self._me),
            ("GET", r"/oauth2/applications/@me", self._app_info),
            ("PUT", r"/applications/(\d+)/commands", self._sync),
            ("PUT", r"/applications/(\d+)/guilds/(\d+)/commands", self._sync),
            ("POST", r"/channels/(\d+)/typing", self._typing),
            ("POST", r"/channels/(\d+)/messages", self._post_message),
            ("PATCH", r"/channels/(\d+)/messages/(\d+)", self._edit_message),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._followup),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._edit_original),
        ]

    async def _me(self, _body: None) -> tuple[int, Any]:
        return 200, self.bot

    async def _typing(self, _body: None, _channel_id: str) -> tuple[int, Any]:
        return 204, None

    async def _app_info(self, _body: None) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id),
            "name": "backtrack",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.user("owner"),
            "verify_key": "0" * 64,
            "flags": 0,
        }

    async def _sync(
        self, commands: list[dict[str, Any]], _app: str, guild: str = "global"
    ) -> tuple[int, Any]:
        scope = guild
        registered = [
            {
                "id": str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
                "default_member_permissions": None,
                "options": [],
                "type": 1,
                "description": "",  # Discord answers "" for message and user commands
                **command,
                **({"guild_id": scope} if scope != "global" else {}),
            }
            for command in commands
        ]
        self.commands[scope] = registered
        return 200, registered

    async def _post_message(self, body: dict[str, Any], channel_id: str) -> tuple[int, Any]:
        if invalid := _invalid_form(body):
            return 400, invalid
        extra: dict[str, Any] = {}
        if reference := body.get("message_reference"):
            reference = {k: str(v) if k.endswith("_id") else v for k, v in reference.items()}
            extra["message_reference"] = reference
            extra["type"] = 19
            referenced = self.messages.get(int(reference["message_id"]))
            if referenced is not None:
                extra["referenced_message"] = referenced
        if components := body.get("components"):
            extra["components"] = components
        message = self._message(int(channel_id), self.bot, body.get("content") or "", **extra)
        if any(not g.ws.closed for g in self._gateways):
            await self.dispatch("MESSAGE_CREATE", message)  # Discord echoes the bot's own posts
        return 200, message

    async def _edit_message(self, body: dict[str, Any], channel_id: str, message_id: str) -> tuple[int, Any]:
        message = self.messages.get(int(message_id))
        if message is None or message["channel_id"] != channel_id:
            return 404, {"message": "Unknown Message", "code": 10008}
        if message["author"]["id"] != self.bot["id"]:
            return 403, {"message": "Cannot edit a message authored by another user", "code": 50005}
        if invalid := _invalid_form(body):
            return 400, invalid
        await self._apply_edit(message, body)
        return 200, message

    async def _apply_edit(self, message: dict[str, Any], body: dict[str, Any]) -> None:
        if "content" in body:
            message["content"] = body["content"] or ""
            message["edited_timestamp"] = _now()
        if "components" in body:  # an empty list removes the buttons
            message["components"] = body["components"] or []
        if any(not g.ws.closed for g in self._gateways):
            await self.dispatch("MESSAGE_UPDATE", copy.deepcopy(message))  # the bot hears its own edits

    async def _callback(self, body: dict[str, Any], interaction_id: str, token: str) -> tuple[int, Any]:
        if interaction_id in self._acknowledged:
            return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
        data = body.get("data") or {}
        if invalid := _invalid_form(data):
            return 400, invalid
        if body["type"] == 7:  # UPDATE_MESSAGE: the clicked message changes in place
            clicked = self._clicked.get(token)
            if clicked is None:
                return 400, {"message": "Invalid interaction response type", "code": 50035}
            await self._apply_edit(self.messages[clicked], data)
        self._acknowledged.add(interaction_id)
        flags = data.get("flags", 0)
        return 200, {
            "interaction": {
                "id": interaction_id,
                "type": self._interaction_types.get(interaction_id, 2),
                "response_message_loading": body["type"] == 5,
                "response_message_ephemeral": bool(flags & 64),
            }
        }

    async def _followup(self, body: dict[str, Any], app: str, token: str) -> tuple[int, Any]:
        """A follow-up message: one in the channel, unless only the interaction's user sees it."""
        if invalid := _invalid_form(body):
            return 400, invalid
        channel = self._interactions[token]
        extra = {"components": body["components"]} if body.get("components") else {}
        message = self._message(channel, self.bot, body.get("content") or "", webhook_id=app, **extra)
        if body.get("flags", 0) & 64:
            self.messages.pop(int(message["id"]))
        self.followups.append({"token": token, "id": message["id"], **body})
        return 200, message

    async def _edit_original(self, body: dict[str, Any], app: str, token: str) -> tuple[int, Any]:
        if invalid := _invalid_form(body):
            return 400, invalid
        message = self._message(self._interactions[token], self.bot, body.get("content") or "", webhook_id=app)
        self.messages.pop(int(message["id"]))
        self.followups.append({"token": token, **body})
        return 200, message


def _invalid_form(body: Any) -> dict[str, Any] | None:
    """Discord's 400 "Invalid Form Body" (code 50035) for a message past its limits, or None."""
    if not isinstance(body, dict):
        return None
    if len(body.get("content") or "") > 2000:
        return _form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    rows = body.get("components") or []
    if len(rows) > 5:
        return _form_error(["components"], "BASE_TYPE_BAD_LENGTH", "Must be between 0 and 5 in length.")
    seen: set[str] = set()
    for r, row in enumerate(rows):
        items = row.get("components") or []
        if not 1 <= len(items) <= 5:
            path: list[str | int] = ["components", r, "components"]
            return _form_error(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        for i, item in enumerate(items):
            at: list[str | int] = ["components", r, "components", i]
            custom_id = item.get("custom_id")
            if custom_id is not None and len(custom_id) > 100:
                return _form_error([*at, "custom_id"], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
            if custom_id in seen:
                return _form_error([*at, "custom_id"], "COMPONENT_CUSTOM_ID_DUPLICATED",
                                   "Component custom id cannot be duplicated")
            if len(item.get("label") or "") > 80:
                return _form_error([*at, "label"], "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length.")
            if custom_id is not None:
                seen.add(custom_id)
    return None


def _form_error(path: list[str | int], code: str, message: str) -> dict[str, Any]:
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path):
        errors = {str(part): errors}
    return {"message": "Invalid Form Body", "code": 50035, "errors": errors}
