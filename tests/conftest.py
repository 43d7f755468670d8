"""Shared fixtures: a real PostgreSQL for the whole session and a fake OpenAI server.

``TEST_DATABASE_URL`` points the suite at an existing server; otherwise the session starts
a throwaway PostgreSQL (the ``pgserver`` wheel, which also works as root) and stops it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.conversations.service import ConversationService
from core.runtime import open_service
from core.settings import Settings, load_settings
from tests.fakes.http import serving
from tests.fakes.openai_server import FakeOpenAI
from tests.pgbouncer import pgbouncer  # noqa: F401  (a session fixture, used by tests/core/storage/test_pgbouncer.py)


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    import pgserver

    server = pgserver.get_server(
        tmp_path_factory.mktemp("pg") / "data", cleanup_mode="stop")
    yield str(server.get_uri())
    server.cleanup()


@pytest.fixture(scope="session")
async def _llm_server() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def fake_llm(_llm_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    _llm_server.reset()
    yield _llm_server
    _llm_server.reset()


@pytest.fixture
def make_settings(pg_url: str, fake_llm: FakeOpenAI, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: the test database and the fake model, never the developer's .env."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "DATABASE_URL": pg_url,
            "OPENAI_BASE_URL": fake_llm.url,
            "OPENAI_API_KEY": "test-key",
            "BACKTRACK_DATA_DIR": str(tmp_path / "data"),
            "BACKTRACK_LLM_MAX_RETRIES": 0,
            "BACKTRACK_LLM_TIMEOUT": 10,
            **overrides,
        }
        return load_settings(_env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[ConversationService]:
    async with open_service(settings) as svc:
        yield svc


@pytest.fixture
def unique() -> Callable[[str], str]:
    """A fresh name per call, so tests sharing the database never share a conversation."""

    def fresh(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return fresh


class FakeWebhook:
    """An incoming-webhook receiver: what the approval-gated tool posts lands in ``posts``."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.url = ""


@pytest.fixture(scope="session")
async def _webhook_server() -> AsyncIterator[FakeWebhook]:
    from aiohttp import web

    hook = FakeWebhook()

    async def receive(request: web.Request) -> web.Response:
        hook.posts.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    async with serving(app) as url:
        hook.url = f"{url}/hook"
        yield hook


@pytest.fixture
def fake_webhook(_webhook_server: FakeWebhook) -> FakeWebhook:
    _webhook_server.posts.clear()
    return _webhook_server


@pytest.fixture
def own_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Callable[[], None], Callable[[], None]]:
    """A PostgreSQL of this test's own, which it can stop and start again."""
    import pgserver

    data = tmp_path_factory.mktemp("outage") / "pg"
    server = pgserver.get_server(data, cleanup_mode="stop")
    url = str(server.get_uri())

    def stop() -> None:
        pgserver.get_server(data).cleanup()

    def start() -> None:
        assert str(pgserver.get_server(data, cleanup_mode="stop").get_uri()) == url

    return url, stop, start
