"""The health and metrics port: what an orchestrator's probe and Prometheus see.

``health_port`` is set with ``model_copy`` until the lead adds ``BACKTRACK_HEALTH_PORT``
to core/settings.py; then these become ``make_settings(BACKTRACK_HEALTH_PORT=...)``. The Discord fixtures (a fake
gateway and REST API) are imported from test_discord.py rather than copied.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any

import aiohttp
import pytest

from bots.discord import run as run_discord
from bots.serving import serve_health
from bots.slack import run as run_slack
from bots.slack.app import SlackBot
from core.agents.agent import build_agent
from core.conversations.service import ConversationService
from core.settings import Settings
from core.storage.checkpointer import PooledPostgresSaver
from core.storage.db import open_pool
from tests.bots.discord.harness import Discord, said
from tests.bots.discord.harness import discord_settings as discord_settings  # a fixture, shared
from tests.bots.discord.harness import world as world  # a fixture, shared
from tests.fakes.http import serving
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack_server import FakeSlack, wait_until


def with_health_port(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"health_port": port})  # BACKTRACK_HEALTH_PORT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def until_healthy(url: str, task: asyncio.Task[Any]) -> None:
    deadline = time.monotonic() + 15
    while True:
        with suppress(aiohttp.ClientConnectionError):
            if (await get(url + "/healthz"))[0] == 200:
                return
        assert not task.done(), task.exception() if not task.cancelled() else "cancelled"
        assert time.monotonic() < deadline, "the health port did not come up"
        await asyncio.sleep(0.05)


@pytest.fixture
async def unreachable(make_settings: Callable[..., Settings]) -> AsyncIterator[ConversationService]:
    """A service whose database does not answer (nothing listens on its port)."""
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    settings = make_settings(DATABASE_URL=url, BACKTRACK_DB_TIMEOUT=0.5, BACKTRACK_DB_POOL_MIN=0)
    pool = await open_pool(settings, url, wait=False)
    checkpointer = PooledPostgresSaver(pool)
    service = ConversationService(settings, pool, checkpointer, build_agent(settings, checkpointer))
    try:
        yield service
    finally:
        await pool.close()


async def test_health_port_reports_ok_and_serves_metrics(settings: Settings, service: ConversationService) -> None:
    async with serve_health(with_health_port(settings, 0), service) as port:
        assert port
        url = f"http://127.0.0.1:{port}"
        status, body = await get(url + "/healthz")
        assert status == 200 and '"ok"' in body
        status, text = await get(url + "/metrics")
    assert status == 200
    assert 'backtrack_db_pool_connections{state="idle"}' in text
    assert "backtrack_queued_messages 0.0" in text
    assert "# TYPE backtrack_turns_total counter" in text
    # the gauge counts the pending requests of the whole (shared test) database: any number
    assert re.search(r"^backtrack_pending_approvals \d+\.0$", text, re.MULTILINE)


async def test_health_port_says_503_when_the_database_is_unreachable(
    settings: Settings, unreachable: ConversationService
) -> None:
    async with serve_health(with_health_port(settings, 0), unreachable) as port:
        status, body = await get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503 and "unreachable" in body
        status, text = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and 'backtrack_db_pool_connections{state="idle"} 0.0' in text


async def test_no_health_port_means_no_server(settings: Settings, service: ConversationService) -> None:
    async with serve_health(settings, service) as port:
        assert port is None


async def test_slack_http_mode_serves_metrics_beside_its_events(
    make_settings: Callable[..., Settings], service: ConversationService
) -> None:
    settings = make_settings(SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET="s" * 32)
    async with serving(SlackBot(settings, service).web_app(settings.max_body_bytes)) as url:
        status, text = await get(f"{url}/metrics")
    assert status == 200 and "backtrack_db_pool_connections" in text


async def test_slack_socket_mode_opens_the_health_port(make_settings: Callable[..., Settings]) -> None:
    fake = FakeSlack()
    await fake.start()
    port = free_port()
    settings = make_settings(
        SLACK_BOT_TOKEN="xoxb-test-token", SLACK_APP_TOKEN="xapp-test-token", SLACK_API_URL=fake.api_url
    )
    task = asyncio.create_task(run_slack(with_health_port(settings, port), argparse.Namespace(host=None, port=None)))
    try:
        await wait_until(lambda: fake.connected or task.done(), what="socket connection")
        await until_healthy(f"http://127.0.0.1:{port}", task)
        status, text = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "backtrack_queued_messages" in text
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await fake.stop()


async def test_discord_opens_the_health_port(
    world: Discord,
    discord_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bots.discord.client")
    port = free_port()
    task = asyncio.create_task(run_discord(with_health_port(discord_settings(), port), argparse.Namespace()))
    try:
        await until_healthy(f"http://127.0.0.1:{port}", task)
        status, text = await get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "backtrack_db_pool_connections" in text
        # The health port answers before the gateway is up: talk once discord.py is ready
        # (which also keeps its delayed "ready" from firing on a closed client).
        await wait_until(
            lambda: any(r.message.startswith("connected to Discord") for r in caplog.records),
            what="the bot's ready event",
        )
        await world.fake.say(world.lounge, "still there?", author=world.ada)
        await said(world.fake, world.lounge, "heard: still there?")
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_discord_sigterm_finishes_the_running_turn_then_returns_zero(
    world: Discord,
    discord_settings: Callable[..., Settings],
    fake_llm: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bots.discord.client")
    task = asyncio.create_task(run_discord(discord_settings(), argparse.Namespace()))
    try:
        await wait_until(
            lambda: any(r.message.startswith("connected to Discord") for r in caplog.records),
            what="the bot's ready event",
        )
        fake_llm.queue(Reply("finished after SIGTERM", delay=1.0))
        await world.fake.say(world.lounge, "slow one", author=world.ada)
        await fake_llm.wait_for_requests(1)
        os.kill(os.getpid(), signal.SIGTERM)  # run() has its handler installed by now
        assert await asyncio.wait_for(task, 20) == 0
        await said(world.fake, world.lounge, "finished after SIGTERM")
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
