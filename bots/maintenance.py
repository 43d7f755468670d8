"""``backtrack migrate``, ``prune`` and ``token``: one-shot maintenance commands."""

from __future__ import annotations

import argparse

from core.errors import InvalidInput
from core.runtime import open_service
from core.settings import Settings

__all__ = ["migrate", "prune", "tokens"]


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
        f"{report.checkpoints} abandoned checkpoints, {report.events} expired event ids, "
        f"{report.files} unreferenced files, {report.feedback} ratings, {report.audit} audit rows; "
        f"folded {report.usage_rows} per-person usage rows into their places' totals"
    )
    return 0


async def tokens(settings: Settings, args: argparse.Namespace) -> int:
    """``token create NAME --scope S…`` prints the new token once; ``list``; ``revoke ID``."""
    async with open_service(settings, maintenance=False) as service:
        if args.action == "create":
            if not args.target:
                raise InvalidInput("token create needs a name: token create ops --scope slack:T0123")
            made, token = await service.access.create(args.target, args.scope)
            print(f"backtrack: token {made.id} ({made.name}) reaches {', '.join(made.scopes)}")
            print(token)  # shown this once: only its hash is stored
            return 0
        if args.action == "revoke":
            if not (args.target or "").isdigit():
                raise InvalidInput("token revoke needs the token's id (backtrack token list shows them)")
            done = await service.access.revoke(int(args.target))
            print(f"backtrack: token {args.target} {'revoked' if done else 'was not active'}")
            return 0 if done else 1
        for row in await service.access.all():
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            print(f"{row.id}\t{row.name}\t{','.join(row.scopes)}\t{row.created_at:%Y-%m-%d}\t{state}")
    return 0
