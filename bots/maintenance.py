"""``backtrack migrate``: apply pending migrations (the bots also do it at start)."""

from __future__ import annotations

import argparse

from core.runtime import open_service
from core.settings import Settings

__all__ = ["run"]


async def run(settings: Settings, args: argparse.Namespace) -> int:
    async with open_service(settings):
        print("backtrack: database is up to date")
    return 0
