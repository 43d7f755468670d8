"""LangGraph's checkpointer conformance suite, run on the pool ``core/storage/db.py`` builds.

``PooledPostgresSaver`` changes how the stock saver locks, versions and memoises, so it
must still keep the saver contract: every capability upstream defines, with the same
results as the stock ``AsyncPostgresSaver`` on the same pool. When an upstream release
changes what the stock saver passes, the comparison shows it as a plain diff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from core.settings import Settings
from core.storage.checkpointer import PooledPostgresSaver
from core.storage.db import Pool, open_pool
from core.storage.migrations import apply_migrations


async def _run(name: str, make: type[AsyncPostgresSaver], pool: Pool) -> dict[str, Any]:
    async def factory() -> AsyncIterator[BaseCheckpointSaver[Any]]:
        yield make(pool)

    report = await validate(checkpointer_test(name=name)(factory))
    results: dict[str, Any] = report.to_dict()["results"]
    return results


async def test_pooled_saver_passes_every_capability_the_stock_saver_passes(
    settings: Settings, pg_url: str
) -> None:
    pool = await open_pool(settings, pg_url)
    try:
        await apply_migrations(pool, PooledPostgresSaver(pool).setup)
        stock = await _run("AsyncPostgresSaver", AsyncPostgresSaver, pool)
        ours = await _run("PooledPostgresSaver", PooledPostgresSaver, pool)
    finally:
        await pool.close()

    assert set(ours) == {c.value for c in Capability}
    failed = {cap: r["failures"] for cap, r in ours.items() if r["detected"] and not r["passed"]}
    assert failed == {}
    assert {cap for cap, r in ours.items() if r["detected"]} >= {"put", "put_writes", "get_tuple",
                                                                   "list", "delete_thread", "prune"}
    assert ours == stock
