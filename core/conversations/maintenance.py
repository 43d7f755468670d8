"""``backtrack prune`` and the periodic prune: the retention settings applied to what is stored.

Safe to run from every instance at once: each conversation is pruned under its own lock,
and every delete is a statement that finds its rows again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import ConversationNotFound
from core.storage.db import storage_errors

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.settings import Settings
    from core.storage.conversations import ConversationStore
    from core.storage.files import FileStore
    from core.storage.locks import ConversationLocks
    from core.storage.retention import Retention

__all__ = ["Maintenance", "PruneReport"]

_log = logging.getLogger(__name__)


@dataclass
class PruneReport:
    conversations: int = 0
    checkpoints: int = 0
    events: int = 0
    files: int = 0
    usage_rows: int = 0
    """Per-person usage rows folded into their place's daily totals."""
    feedback: int = 0
    audit: int = 0
    """Rewind records, decided approval requests and revoked tokens."""
    memories: int = 0
    """Memory records of conversations that no longer exist."""


class Maintenance:
    def __init__(
        self, settings: Settings, retention: Retention, files: FileStore, locks: ConversationLocks,
        store: ConversationStore, forget: Callable[[ThreadKey], Awaitable[None]],
    ) -> None:
        self._settings = settings
        self._retention = retention
        self._files = files
        self._locks = locks
        self._store = store
        self._forget = forget

    async def prune(self) -> PruneReport:
        """Apply the retention settings; returns what was removed."""
        report = PruneReport()
        settings = self._settings
        async with storage_errors():
            report.events = await self._retention.expire_events(settings.event_ttl_hours * 3600)
            report.files = await self._files.sweep(settings.file_grace_hours * 3600)
            report.usage_rows = await self._retention.fold_usage(settings.usage_detail_days)
            if settings.feedback_days is not None:
                report.feedback = await self._retention.expire_feedback(settings.feedback_days * 86400)
            if settings.audit_days is not None:
                report.audit = await self._retention.expire_audit(settings.audit_days * 86400)
            if settings.retention_days is not None:
                for key in await self._retention.idle_conversations(settings.retention_days * 86400):
                    try:
                        await self._forget(key)
                        report.conversations += 1
                    except ConversationNotFound:
                        pass
            report.memories = await self._retention.orphan_memories()
            if settings.max_checkpoints is not None:
                for key in await self._retention.over_checkpoint_cap(settings.max_checkpoints):
                    async with self._locks.hold(key):
                        head = await self._store.head(key)
                        if head is not None and head.checkpoint_id is not None:
                            report.checkpoints += await self._retention.prune_checkpoints(
                                key, head.checkpoint_id, settings.max_checkpoints
                            )
        _log.info(
            "pruned %d conversations, %d checkpoints, %d event ids, %d files, %d usage rows folded, "
            "%d ratings, %d audit rows, %d memories", report.conversations, report.checkpoints, report.events,
            report.files, report.usage_rows, report.feedback, report.audit, report.memories,
        )
        return report
