"""A fake OpenAI-compatible chat completions server, driven by the real langchain-openai client.

Tests queue scripted replies (text, tool calls, failures); with nothing queued it answers
``heard: <every user message it was sent>``, which lets a test see exactly what context
the model received. Streaming requests get real server-sent events.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.http import start_app

__all__ = ["Fail", "FakeOpenAI", "Reply", "ToolCall"]


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


@dataclass(frozen=True)
class Fail:
    status: int = 500
    message: str = "the fake model is down"


Step = Reply | ToolCall | Fail


def user_texts(request: dict[str, Any]) -> list[str]:
    return [
        m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
        for m in request["messages"]
        if m["role"] == "user"
    ]


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: deque[Step] = deque()
        self.hold: asyncio.Event | None = None
        """When set, every request waits for it: lets a test catch a turn mid-flight."""
        self._runner: web.AppRunner | None = None
        self.url = ""

    def queue(self, *steps: Step) -> None:
        self.script.extend(steps)

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Until the model has been asked ``count`` times in all (a turn is then mid-flight)."""
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                await asyncio.sleep(0.01)

    def reset(self) -> None:
        self.requests.clear()
        self.script.clear()
        self.hold = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
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
        step = self.script.popleft() if self.script else Reply("heard: " + " | ".join(user_texts(body)))
        if isinstance(step, Fail):
            return web.json_response(
                {"error": {"message": step.message, "type": "server_error", "code": None}},
                status=step.status,
            )
        if step.delay:
            await asyncio.sleep(step.delay)
        if body.get("stream"):
            return await self._stream(request, body, step)
        return web.json_response(_completion(body, step))

    async def _stream(self, request: web.Request, body: dict[str, Any], step: Step) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", "fake")}

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        if isinstance(step, ToolCall):
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
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _completion(body: dict[str, Any], step: Step) -> dict[str, Any]:
    if isinstance(step, ToolCall):
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [
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
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
