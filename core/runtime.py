"""Assembles the core once per process: settings → pool → migrations → graph → service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from core.agent import build_agent
from core.checkpointer import PooledPostgresSaver
from core.db import apply_migrations, database_url, open_pool
from core.demo_model import OFFLINE_NOTICE
from core.service import ConversationService

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from core.settings import Settings

__all__ = ["open_service"]

_log = logging.getLogger(__name__)


@asynccontextmanager
async def open_service(
    settings: Settings, *, model: BaseChatModel | None = None
) -> AsyncIterator[ConversationService]:
    if model is None and settings.offline_model:
        _log.warning(OFFLINE_NOTICE)
    url = await asyncio.to_thread(database_url, settings)
    pool = await open_pool(settings, url)
    try:
        checkpointer = PooledPostgresSaver(pool)
        await apply_migrations(pool, checkpointer.setup)
        graph = build_agent(settings, checkpointer, model)
        yield ConversationService(settings, pool, checkpointer, graph)
    finally:
        await pool.close()
