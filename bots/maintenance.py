"""``backtrack migrate`` and ``backtrack prune``: one-shot maintenance commands."""

from __future__ import annotations

import argparse

from core.runtime import open_service
from core.settings import Settings

__all__ = ["migrate", "prune"]


async def migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Apply pending migrations (every bot also does it at start)."""
    async with open_service(settings, maintenance=False):
        print("backtrack: database is up to date")
    return 0


async def prune(settings: Settings, args: argparse.Namespace) -> int:
    """Apply BACKTRACK_RETENTION_DAYS, BACKTRACK_MAX_CHECKPOINTS and the event-id expiry now."""
    async with open_service(settings, maintenance=False) as service:
        report = await service.prune()
    print(
        f"backtrack: pruned {report.conversations} idle conversations, "
        f"{report.checkpoints} abandoned checkpoints, {report.events} expired event ids"
    )
    return 0
