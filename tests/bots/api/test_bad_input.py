"""Bad input to the HTTP API and the viewer's calls, one table: a clear 4xx, nothing changed, no secret logged.

Every row runs against a conversation that already has one turn; afterwards it has exactly
that turn, and nothing the process logged while refusing the row contains the token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bots.api import build_app
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.settings import Settings
from tests.fakes.http import serving

TOKEN = "s3cret-bad-input-token"
T = "{thread}"
"""Stands for the row's conversation (its thread id, or its key in the viewer's calls)."""

# (method, path, body: a JSON value or raw bytes, status, error code)
ROWS: list[tuple[str, str, Any, int, str]] = [
    # malformed or mistyped bodies
    ("POST", "/api/graph", b"{not json", 400, "invalid_input"),
    ("POST", "/api/graph", b'{"query": "hi", "thread_id": "' + b"\xff\xfe" + b'"}', 400, "invalid_input"),
    ("POST", "/api/graph", [1, 2], 400, "invalid_input"),
    ("POST", "/api/graph", "a string", 400, "invalid_input"),
    ("POST", "/api/graph", {"query": 5, "thread_id": T}, 400, "invalid_input"),
    ("POST", "/api/graph", {"query": "hi", "thread_id": T, "files": "nope"}, 400, "invalid_input"),
    ("POST", "/api/graph", {"query": "hi", "thread_id": T, "files": [{"name": "a.txt", "data": "!!"}]},
     400, "invalid_input"),
    ("POST", "/api/graph", {"query": "hi", "thread_id": T, "team": "yes"}, 400, "invalid_input"),
    ("POST", "/api/graph/history", {"thread_id": T, "all_branches": 1}, 400, "invalid_input"),
    # oversize
    ("POST", "/api/graph", {"query": "x" * 16_001, "thread_id": T}, 400, "invalid_input"),
    ("POST", "/api/graph", {"query": "x" * 300_000, "thread_id": T}, 413, "too_large"),
    # NUL bytes and lone surrogates where they cannot be stored
    ("POST", "/api/graph", {"query": "hi", "thread_id": "a\u0000b"}, 400, "invalid_key"),
    ("POST", "/api/graph", b'{"query": "hi", "thread_id": "\\udcff"}', 400, "invalid_key"),
    ("POST", "/api/graph", {"query": "\u0000\u0000", "thread_id": T}, 400, "invalid_input"),
    ("GET", "/api/ui/tree?key=api:a%00b", None, 400, "invalid_key"),
    ("GET", "/api/ui/conversations?limit=%00", None, 400, "invalid_input"),
    ("PUT", "/api/places/api", {"persona": "\u0000"}, 400, "invalid_input"),
    # unknown ids
    ("POST", "/api/graph/history", {"thread_id": "never-was-here"}, 404, "not_found"),
    ("POST", "/api/graph/replay", {"thread_id": T, "checkpoint_id": "1f000000-0000-6000-8000-000000000000"},
     422, "rewind_out_of_range"),
    ("POST", "/api/graph/resume", {"thread_id": T, "approve": True, "approval_id": 999_999_999}, 409, "stale_approval"),
    ("POST", "/api/graph/resume", {"thread_id": T, "approve": True}, 404, "not_found"),
    ("POST", "/api/graph/feedback", {"thread_id": T, "checkpoint_id": "nope", "user": "u", "value": "up"},
     404, "not_found"),
    ("POST", "/api/graph/feedback", {"thread_id": T, "checkpoint_id": "nope", "user": "u", "value": "meh"},
     400, "invalid_input"),
    ("GET", "/api/ui/tree?key=api:never-was-here", None, 404, "not_found"),
    ("GET", "/api/ui/steps?key=" + T + "&checkpoint_id=nope", None, 422, "rewind_out_of_range"),
    ("POST", "/api/ui/rewind", {"key": T, "checkpoint_id": "nope"}, 422, "rewind_out_of_range"),
    ("POST", "/api/ui/resolve", {"key": T, "approval_id": 12, "approve": True}, 409, "stale_approval"),
    ("GET", "/api/places/slack:lower:case", None, 400, "invalid_key"),
    ("GET", "/api/ui/tree?key=nokey", None, 400, "invalid_key"),
    # negative and huge rewind targets, and limits
    ("POST", "/api/graph/rewind", {"thread_id": T, "steps_back": -1}, 422, "rewind_out_of_range"),
    ("POST", "/api/graph/rewind", {"thread_id": T, "steps_back": 0}, 422, "rewind_out_of_range"),
    ("POST", "/api/graph/rewind", {"thread_id": T, "steps_back": 2}, 422, "rewind_out_of_range"),
    ("POST", "/api/graph/rewind", {"thread_id": T, "steps_back": 10**30}, 422, "rewind_out_of_range"),
    ("POST", "/api/graph/history", {"thread_id": T, "limit": 10**9}, 400, "invalid_input"),
    ("POST", "/api/graph/history", {"thread_id": T, "limit": -5}, 400, "invalid_input"),
    ("GET", "/api/ui/conversations?limit=0", None, 400, "invalid_input"),
    ("GET", "/api/ui/conversations?offset=-1", None, 400, "invalid_input"),
    ("GET", "/api/ui/tree?key=" + T + "&before=99999999999999999999999", None, 400, "invalid_input"),
    ("GET", "/api/ui/tree?key=" + T + "&before=%C2%B2", None, 400, "invalid_input"),
    ("GET", "/api/ui/conversations?limit=1e3", None, 400, "invalid_input"),
]


@pytest.fixture
async def api(make_settings: Callable[..., Settings], service: ConversationService) -> AsyncIterator[str]:
    async with serving(build_app(make_settings(API_TOKEN=TOKEN), service)) as url:
        yield url


def _fill(value: Any, thread: str, key: str) -> Any:
    if isinstance(value, str):
        return value.replace(T, thread)
    if isinstance(value, dict):
        return {k: (key if k == "key" and v == T else _fill(v, thread, key)) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), ROWS)
async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    api: str, service: ConversationService, unique: Callable[[str], str], caplog: pytest.LogCaptureFixture,
    method: str, path: str, body: Any, status: int, code: str,
) -> None:
    thread = unique("bad")
    key = ThreadKey.api(thread)
    await service.ask(key, "keep me")
    caplog.set_level(logging.DEBUG)
    path = path.replace(T, str(key))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    data = body if isinstance(body, bytes) else (json.dumps(_fill(body, thread, str(key))) if body is not None else None)
    async with aiohttp.ClientSession() as session, session.request(
        method, api + path, data=data, headers=headers
    ) as response:
        got = response.status
        answer = await response.json()
    assert got == status, answer
    if status >= 400:
        assert answer["error"]["code"] == code and answer["error"]["message"], answer
        assert "Traceback" not in answer["error"]["message"]
    assert [t.question for t in await service.history(key)] == ["keep me"]  # nothing changed
    assert not [r for r in caplog.records if TOKEN in r.getMessage()], "the token was logged"
