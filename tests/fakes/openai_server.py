"""A fake OpenAI-compatible chat completions server, driven by the real langchain-openai client.

Tests queue scripted replies (text, tool calls, failures); with nothing queued it answers
``heard: <every user message it was sent>``, which lets a test see exactly what context
the model received. Streaming requests get real server-sent events. Every request body
is kept in ``requests``; ``content_parts`` reads the exact parts of its user messages
(attached files arrive as ``image_url`` and ``text`` parts).

Like the real servers it refuses a ``tool_choice`` without ``tools`` or of an unknown kind,
a message ``name`` outside OpenAI's pattern, and ``stream_options`` on a request that does
not stream. Every answer reports its usage as OpenAI does (in the body, or in a last chunk
with no choices when a stream asks ``stream_options.include_usage``): prompt tokens are
the request's messages at about four characters a token, completion tokens the answer's;
``reported`` keeps each (prompt, completion) pair it sent, so a test can add them up.
Team mode's agents can be scripted apart: ``queue_for("researcher", ...)`` answers only
requests whose system prompt names that role ("You are the researcher …"), before the
shared script; ``requests_of(role)`` lists what that role was sent.

Two behaviours of local servers can be switched on: ``context_limit`` answers a request
longer than that many tokens (about four characters each) with the 400 that llama-server
(``overflow_style="llama"``) or OpenAI (``"openai"``) sends, and ``drop_tools_without_choice``
ignores ``tools`` unless ``tool_choice`` is present, as llama-cpp-python does: a queued
``ToolCall`` then becomes a plain answer, since the model was offered no tools.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.http import start_app

__all__ = ["Fail", "FakeOpenAI", "Reply", "ToolCall", "content_parts", "user_texts"]


@dataclass(frozen=True)
class Reply:
    text: str
    delay: float = 0.0
    chunk_delay: float = 0.0
    """Pause between streamed chunks, so a test can watch an answer arrive piece by piece."""
    cut_after: int | None = None
    """Drop the connection after this many streamed chunks of text (no end, no ``[DONE]``)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    text: str = ""
    """What the model writes before calling the tool ("Let me look that up."), streamed first."""


@dataclass(frozen=True)
class Fail:
    status: int = 500
    message: str = "the fake model is down"


Step = Reply | ToolCall | Fail


def user_texts(request: dict[str, Any]) -> list[str]:
    """Each user message's text; of a message with content parts, its text parts, and
    ``[image]`` for each image part (never a whole ``data:`` URL in an answer)."""
    return [
        m["content"] if isinstance(m["content"], str) else " ".join(
            p["text"] if p.get("type") == "text" else "[image]" if p.get("type") == "image_url"
            else f"[{p.get('type')}]" for p in m["content"]
        )
        for m in request["messages"]
        if m["role"] == "user"
    ]


def content_parts(request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The exact content parts of each user message of a request (a text-only one: one text part)."""
    return [
        [{"type": "text", "text": m["content"]}] if isinstance(m["content"], str) else m["content"]
        for m in request["messages"]
        if m["role"] == "user"
    ]


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: deque[Step] = deque()
        self.roles: dict[str, deque[Step]] = {}
        """Scripts per role, chosen by the words "You are the <role>" in the system prompt."""
        self.hold: asyncio.Event | None = None
        """When set, every request waits for it: lets a test catch a turn mid-flight."""
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.context_limit: int | None = None
        self.overflow_style: str = "llama"
        self.drop_tools_without_choice = False
        self.reported: list[tuple[int, int]] = []

    def queue(self, *steps: Step) -> None:
        self.script.extend(steps)

    def queue_for(self, role: str, *steps: Step) -> None:
        self.roles.setdefault(role, deque()).extend(steps)

    def requests_of(self, role: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if _role_of(r) == role]

    def _next_step(self, body: dict[str, Any]) -> Step | None:
        role = self.roles.get(_role_of(body) or "")
        if role:
            return role.popleft()
        return self.script.popleft() if self.script else None

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Until the model has been asked ``count`` times in all (a turn is then mid-flight)."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                await asyncio.sleep(0.01)

    def reset(self) -> None:
        self.requests.clear()
        self.reported.clear()
        self.script.clear()
        self.roles.clear()
        self.hold = None
        self.context_limit = None
        self.overflow_style = "llama"
        self.drop_tools_without_choice = False

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)  # images arrive as data: URLs
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/props", self._props)
        self._runner, base = await start_app(app, shutdown_timeout=0.5)  # never wait on a held reply
        self.url = f"{base}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.hold is not None:
            await self.hold.wait()
        if (refused := self._refuse(body)) is not None:
            return refused
        step = self._next_step(body) or Reply("heard: " + " | ".join(user_texts(body)))
        if isinstance(step, ToolCall) and not _offers_tools(body, self.drop_tools_without_choice):
            step = Reply(f"(no tools were offered, so I cannot call {step.name})", delay=step.delay)
        if isinstance(step, Fail):
            return web.json_response(
                {"error": {"message": step.message, "type": "server_error", "code": None}},
                status=step.status,
            )
        if step.delay:
            await asyncio.sleep(step.delay)
        usage = _usage(body, step)
        if body.get("stream"):
            return await self._stream(request, body, step, usage)
        self.reported.append((usage["prompt_tokens"], usage["completion_tokens"]))
        return web.json_response({**_completion(body, step), "usage": usage})

    async def _props(self, request: web.Request) -> web.Response:
        """llama-server's ``/props``, which states the context only when one is set here."""
        if self.context_limit is None:
            raise web.HTTPNotFound()
        return web.json_response({"default_generation_settings": {"n_ctx": self.context_limit}})

    def _refuse(self, body: dict[str, Any]) -> web.Response | None:
        """The 400s the real servers send for a malformed or too-long request."""
        for n, message in enumerate(body["messages"]):
            if "name" in message and not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", str(message["name"])):
                return _bad_request(
                    f"Invalid 'messages[{n}].name': string does not match pattern. Expected a string "
                    "that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.", f"messages[{n}].name", "invalid_value",
                )
        if "stream_options" in body and not body.get("stream"):
            return _bad_request("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                                "stream_options")
        choice = body.get("tool_choice")
        if choice is not None and not body.get("tools"):
            return _bad_request("'tool_choice' is only allowed when 'tools' are specified", "tool_choice")
        if choice is not None and choice not in ("auto", "none", "required") and not isinstance(choice, dict):
            return _bad_request(f"Invalid value for 'tool_choice': {choice!r}", "tool_choice")
        tokens = len(json.dumps(body["messages"])) // 4
        if self.context_limit is None or tokens <= self.context_limit:
            return None
        if self.overflow_style == "openai":
            return _bad_request(
                f"This model's maximum context length is {self.context_limit} tokens. However, your "
                f"messages resulted in {tokens} tokens. Please reduce the length of the messages.",
                "messages", "context_length_exceeded",
            )
        return web.json_response({"error": {  # llama-server's exact reply
            "code": 400, "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error", "n_prompt_tokens": tokens, "n_ctx": self.context_limit,
        }}, status=400)

    async def _stream(
        self, request: web.Request, body: dict[str, Any], step: Step, usage: dict[str, int]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", "fake")}

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        if isinstance(step, ToolCall):
            if step.text:
                await send({"content": step.text})
            await send({"tool_calls": [{"index": 0, "id": f"call_{uuid.uuid4().hex[:12]}",
                                        "type": "function",
                                        "function": {"name": step.name, "arguments": json.dumps(step.args)}}]})
            await send({}, "tool_calls")
        else:
            assert isinstance(step, Reply)
            for i in range(0, len(step.text), 40):
                if step.cut_after is not None and i // 40 >= step.cut_after:
                    assert request.transport is not None
                    request.transport.close()  # the connection drops mid-answer
                    return response
                await send({"content": step.text[i:i + 40]})
                if step.chunk_delay:
                    await asyncio.sleep(step.chunk_delay)
            await send({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            last = {**base, "choices": [], "usage": usage}
            await response.write(f"data: {json.dumps(last)}\n\n".encode())
            self.reported.append((usage["prompt_tokens"], usage["completion_tokens"]))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _role_of(body: dict[str, Any]) -> str | None:
    """The role a system prompt gives ("You are the researcher of …" → "researcher")."""
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    match = re.match(r"You are the (\w+)", system if isinstance(system, str) else "")
    return match.group(1) if match else None


def _offers_tools(body: dict[str, Any], drop_without_choice: bool) -> bool:
    return bool(body.get("tools")) and body.get("tool_choice") != "none" and not (
        drop_without_choice and "tool_choice" not in body
    )


def _bad_request(message: str, param: str, code: str | None = None) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}},
        status=400,
    )


def _usage(body: dict[str, Any], step: Step) -> dict[str, int]:
    """What an answer costs, in OpenAI's terms."""
    written = json.dumps(step.args) if isinstance(step, ToolCall) else getattr(step, "text", "")
    prompt, completion = len(json.dumps(body["messages"])) // 4, len(written) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _completion(body: dict[str, Any], step: Step) -> dict[str, Any]:
    if isinstance(step, ToolCall):
        message: dict[str, Any] = {"role": "assistant", "content": step.text or None, "tool_calls": [
            {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
             "function": {"name": step.name, "arguments": json.dumps(step.args)}}]}
        finish = "tool_calls"
    else:
        assert isinstance(step, Reply)
        message, finish = {"role": "assistant", "content": step.text}, "stop"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
