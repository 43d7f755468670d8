"""The API's per-place settings: ``GET``/``PUT /api/places/{place}``, token-protected."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bots.api import build_app
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from tests.fakes.http import serving
from tests.fakes.openai_server import FakeOpenAI

TOKEN = "s3cret"


@pytest.fixture
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[tuple[Any, aiohttp.ClientSession, str]]:
    settings = make_settings(API_TOKEN=TOKEN, BACKTRACK_MODELS="gpt-4o-mini,big-model")
    async with open_service(settings) as service, serving(build_app(settings, service)) as url, \
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        yield service, session, url


async def test_put_sets_the_persona_and_model_of_the_next_turn_and_get_shows_them(
    api: tuple[Any, aiohttp.ClientSession, str], fake_llm: FakeOpenAI
) -> None:
    service, session, url = api
    guild = uuid.uuid4().int % 10**17
    place = f"discord:{guild}"
    body = {"persona": "Server voice.", "model": "big-model", "user": "ops"}
    async with session.put(f"{url}/api/places/{place}", json=body) as r:
        assert r.status == 200
        shown = await r.json()
    assert shown["persona"] == "Server voice." and shown["updated_by"] == "ops"
    await service.ask(ThreadKey.discord(guild, 42), "hi", user="1")
    sent = fake_llm.requests[-1]
    assert sent["model"] == "big-model" and sent["messages"][0]["content"] == "Server voice."

    async with session.get(f"{url}/api/places/discord:{guild}:42") as r:
        channel = await r.json()
    assert channel["persona"] is None and channel["effective"] == {
        "persona": "Server voice.", "persona_from": place, "model": "big-model", "model_from": place,
        "servers": None,
    }
    async with session.put(f"{url}/api/places/{place}", json={"persona": None}) as r:
        reset = await r.json()
    assert reset["persona"] is None and reset["model"] == "big-model"


@pytest.mark.parametrize(("place", "body", "code"), [
    ("slack:T1:C1", {"model": "gpt-5-ultra"}, "invalid_input"),
    ("slack:T1:C1", {"persona": 5}, "invalid_input"),
    ("slack:T1:C1", {}, "invalid_input"),
    ("slack:T1:C1", {"servers": ["tickets"]}, "invalid_input"),  # no MCP server is configured
    ("slack:T1:C1", {"servers": "tickets"}, "invalid_input"),
    ("slack:nope", {"persona": "x"}, "invalid_key"),
])
async def test_bad_requests_are_refused_and_change_nothing(
    api: tuple[Any, aiohttp.ClientSession, str], place: str, body: dict[str, Any], code: str
) -> None:
    _, session, url = api
    async with session.put(f"{url}/api/places/{place}", json=body) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == code
    if place == "slack:T1:C1":
        async with session.get(f"{url}/api/places/{place}") as r:
            assert (await r.json())["updated_at"] is None


async def test_the_places_api_needs_the_token(api: tuple[Any, aiohttp.ClientSession, str]) -> None:
    _, _, url = api
    async with aiohttp.ClientSession() as anonymous:
        for method in ("GET", "PUT"):
            async with anonymous.request(method, f"{url}/api/places/api", json={"persona": "x"}) as r:
                assert r.status == 401
