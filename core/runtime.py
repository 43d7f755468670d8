"""Assembles the core once per process: settings → pool → migrations → graph → service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from langgraph.store.postgres.aio import AsyncPostgresStore

from core.agents.agent import build_agent
from core.agents.attachments import resolver
from core.agents.demo_model import OFFLINE_NOTICE
from core.agents.mcp import Toolbox
from core.agents.mcp_config import load_servers
from core.agents.model_probe import check_server_context
from core.agents.team import build_team
from core.conversations.memory import PersonalMemory
from core.conversations.service import ConversationService
from core.errors import BacktrackError
from core.logs import configure_tracing
from core.storage.checkpointer import PooledPostgresSaver
from core.storage.db import connection_kwargs, database_url, open_pool, storage_errors
from core.storage.files import FileStore
from core.storage.memories import MemoryStore
from core.storage.migrations import apply_migrations
from core.storage.pooling import check_pooling
from core.storage.tool_calls import ToolCalls

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from core.settings import Settings

__all__ = ["open_service", "resolve_database"]

_log = logging.getLogger(__name__)


async def _prune_periodically(service: ConversationService, every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await service.prune()
        except BacktrackError as exc:
            _log.warning("periodic prune skipped: %s", exc.message)



async def open_toolbox(settings: Settings, ledger: ToolCalls) -> Toolbox | None:
    """The MCP servers of ``BACKTRACK_MCP_CONFIG``, listed once (None: no file configured)."""
    if settings.mcp_config is None:
        return None
    toolbox = Toolbox(load_servers(settings.mcp_config), ledger, timeout=settings.mcp_timeout,
                      refresh=settings.mcp_refresh)
    await toolbox.start()
    return toolbox


async def resolve_database(settings: Settings) -> str:
    """``DATABASE_URL``, or the URL of the embedded PostgreSQL, started if it is not running."""
    return await asyncio.to_thread(database_url, settings)


@asynccontextmanager
async def open_service(
    settings: Settings, *, model: BaseChatModel | None = None, maintenance: bool = True
) -> AsyncIterator[ConversationService]:
    """The service, ready; with ``maintenance`` it also prunes every few minutes in the background."""
    if model is None and settings.offline_model:
        _log.warning(OFFLINE_NOTICE)
    elif model is None:
        await check_server_context(settings)
    configure_tracing()  # OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set
    url = await resolve_database(settings)
    await check_pooling(settings, url, connection_kwargs(settings))
    async with storage_errors():  # an unreachable database at start is a sentence, not a traceback
        pool = await open_pool(settings, url)
    try:
        checkpointer = PooledPostgresSaver(pool)
        store = AsyncPostgresStore(pool)

        async def setup() -> None:  # LangGraph's own tables, under the migration lock
            await checkpointer.setup()
            await store.setup()

        async with storage_errors():
            await apply_migrations(pool, setup, lock_url=settings.lock_database_url)
        resolve = resolver(FileStore(pool).load, settings)
        toolbox = await open_toolbox(settings, ToolCalls(pool))
        memory = PersonalMemory(MemoryStore(store, pool))
        graph = build_agent(settings, checkpointer, model, resolve=resolve, toolbox=toolbox, memory=memory)
        team = build_team(settings, checkpointer, model, resolve=resolve, toolbox=toolbox, memory=memory)
        service = ConversationService(settings, pool, checkpointer, graph, team, toolbox, memory)
        pruning = None
        if maintenance:
            pruning = asyncio.create_task(
                _prune_periodically(service, settings.prune_interval_minutes * 60)
            )
        try:
            yield service
        finally:
            if pruning is not None:
                pruning.cancel()
            await service.drain(settings.shutdown_grace)
            await service.close()
    finally:
        await pool.close()
