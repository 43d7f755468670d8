"""Everything through a real PgBouncer in transaction pooling mode (tests/pgbouncer.py).

The pool goes through PgBouncer with prepared statements off; the advisory locks take the
direct ``BACKTRACK_LOCK_DATABASE_URL``. A setup that would run the locks through the
pooler is refused at start.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from core.errors import SettingsError
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from core.storage.db import connection_kwargs
from core.storage.migrations import MIGRATIONS
from core.storage.pooling import detect_transaction_pooling
from tests import ROOT
from tests.conftest import FakeWebhook
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.pgbouncer import PgBouncer
from tests.processes import BacktrackProcess, check_one_writer, instances


def _env(bouncer: PgBouncer, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": bouncer.url(), "BACKTRACK_DB_PREPARE_THRESHOLD": "off",
        "BACKTRACK_LOCK_DATABASE_URL": bouncer.direct_url, **extra,
    }


@pytest.fixture
def pooled(make_settings: Callable[..., Settings], pgbouncer: PgBouncer) -> Callable[..., Settings]:
    return lambda **extra: make_settings(**{**_env(pgbouncer), **extra})


async def test_turns_history_and_rewind_through_pgbouncer(
    pooled: Callable[..., Settings], unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("bouncer"))
    async with open_service(pooled()) as service:
        for question in ("one", "two", "three", "four", "five", "six", "seven"):  # past any prepare threshold
            await service.ask(key, question)
        assert [t.question for t in await service.history(key)] == [
            "one", "two", "three", "four", "five", "six", "seven"]
        await service.rewind(key, 2)
        assert (await service.ask(key, "again")).text == "heard: one | two | three | four | five | again"
        assert [t.question for t in await service.history(key)][-2:] == ["five", "again"]


async def test_an_approval_through_pgbouncer(
    pooled: Callable[..., Settings], fake_llm: FakeOpenAI, fake_webhook: FakeWebhook, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("bouncer-ok"))
    async with open_service(pooled(BACKTRACK_WEBHOOK_URL=fake_webhook.url)) as service:
        fake_llm.queue(ToolCall("post_to_webhook", {"message": "ship it"}), Reply("Posted it."))
        paused = await service.ask(key, "announce", user="ada")
        assert paused.approval is not None and fake_webhook.posts == []
        done = await service.resolve(key, paused.approval.id, True, user="ada")
        assert done.text == "Posted it." and fake_webhook.posts == [{"text": "ship it", "content": "ship it"}]
        assert [t.question for t in await service.history(key)] == ["announce"]


async def test_migrations_on_a_fresh_database_through_pgbouncer(
    pooled: Callable[..., Settings], pgbouncer: PgBouncer, unique: Callable[[str], str]
) -> None:
    name = unique("fresh").replace("-", "_")
    async with await psycopg.AsyncConnection.connect(pgbouncer.direct_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    direct = psycopg.conninfo.make_conninfo(pgbouncer.direct_url, dbname=name)
    settings = pooled(DATABASE_URL=pgbouncer.url(name), BACKTRACK_LOCK_DATABASE_URL=direct)
    async with asyncio.timeout(60):
        starts = [open_service(settings), open_service(settings)]  # two at once: one migrates
        async with starts[0] as one, starts[1] as two:
            assert (await one.ask(ThreadKey.api("a"), "hello")).text == "heard: hello"
            assert [t.question for t in await two.history(ThreadKey.api("a"))] == ["hello"]
    async with await psycopg.AsyncConnection.connect(direct) as conn:
        rows = await (await conn.execute("SELECT version FROM backtrack_migrations ORDER BY 1")).fetchall()
    assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))


async def test_transaction_pooling_is_detected_only_through_the_pooler(
    settings: Settings, pgbouncer: PgBouncer
) -> None:
    kwargs = connection_kwargs(settings)
    assert await detect_transaction_pooling(pgbouncer.url(), kwargs)
    assert not await detect_transaction_pooling(pgbouncer.direct_url, kwargs)


async def test_unsafe_setups_are_refused_at_start(
    make_settings: Callable[..., Settings], pgbouncer: PgBouncer
) -> None:
    with pytest.raises(SettingsError, match="BACKTRACK_LOCK_DATABASE_URL is not set"):
        async with open_service(make_settings(DATABASE_URL=pgbouncer.url())):  # detected
            pass
    with pytest.raises(SettingsError, match="BACKTRACK_LOCK_DATABASE_URL is not set"):
        async with open_service(make_settings(DATABASE_URL=pgbouncer.url(), BACKTRACK_DB_PREPARE_THRESHOLD="off")):
            pass
    with pytest.raises(SettingsError, match="BACKTRACK_LOCK_DATABASE_URL goes through a transaction-mode pooler"):
        async with open_service(make_settings(**{**_env(pgbouncer), "BACKTRACK_LOCK_DATABASE_URL": pgbouncer.url()})):
            pass
    with pytest.raises(SettingsError, match="set BACKTRACK_DB_PREPARE_THRESHOLD=off"):
        async with open_service(make_settings(**{**_env(pgbouncer), "BACKTRACK_DB_PREPARE_THRESHOLD": "5"})):
            pass


def test_the_program_refuses_to_start_behind_pgbouncer_without_a_lock_url(
    pgbouncer: PgBouncer, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:
    env = BacktrackProcess({"DATABASE_URL": pgbouncer.url(), "OPENAI_BASE_URL": fake_llm.url,
                            "OPENAI_API_KEY": "k", "BACKTRACK_DATA_DIR": str(tmp_path)}, tmp_path / "log").env
    done = subprocess.run([sys.executable, "-m", "bots", "api"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)
    assert done.returncode != 0
    assert "BACKTRACK_LOCK_DATABASE_URL is not set: advisory locks do not survive transaction pooling" in done.stderr
    assert "Traceback" not in done.stderr


async def test_two_instances_through_pgbouncer_one_writer(
    pgbouncer: PgBouncer, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    env = {**_env(pgbouncer), "OPENAI_BASE_URL": fake_llm.url, "OPENAI_API_KEY": "k"}
    async with instances(env, tmp_path) as procs:
        await check_one_writer(procs, unique("bouncer-scale"), fake_llm.requests)
