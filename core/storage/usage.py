"""Token usage: what each run of the model cost, ``/usage``, and the optional daily caps.

Every run's tokens (from the replies' ``usage_metadata``, summed over its model calls) go
three ways: the Prometheus counter ``backtrack_tokens_total``, the turn row it produced,
and a daily ledger (``token_usage``: one row per place, UTC day, person and model). The
ledger is what ``/usage`` and the caps read: it also counts a run that paused for an
approval (that turn's row holds only the part after the decision), and it keeps counting
after a ``/forget`` or a rewind, since those tokens were spent all the same. It holds
counts and ids, never text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import UsageCapReached
from core.metrics import TOKENS
from core.records import Usage
from core.storage.db import STORAGE_ERRORS

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.settings import Settings
    from core.storage.db import Pool

__all__ = ["BUMP", "UsageLedger", "UsageReport", "usage_of"]

_log = logging.getLogger(__name__)

_TODAY = "(now() AT TIME ZONE 'UTC')::date"

BUMP = f"""
INSERT INTO token_usage (day, platform, place, user_id, model, input_tokens, output_tokens)
SELECT {_TODAY}, %(u_platform)s, %(u_place)s, %(u_user)s, %(u_model)s, %(u_input)s, %(u_output)s
WHERE %(u_input)s::bigint + %(u_output)s::bigint > 0
ON CONFLICT (place, day, user_id, model) DO UPDATE SET
    input_tokens = token_usage.input_tokens + EXCLUDED.input_tokens,
    output_tokens = token_usage.output_tokens + EXCLUDED.output_tokens
"""
"""The ledger's row of today grows: alone for a paused run, as a CTE of the turn's record otherwise."""

_MINE = "platform = %(platform)s AND user_id = %(user)s"
_HERE = "place = %(place)s"
_COLUMNS = ", ".join(
    f"coalesce(sum({kind}_tokens) FILTER (WHERE {who}{today}), 0) AS {name}_{span}_{kind}"
    for name, who in (("user", _MINE), ("place", _HERE))
    for span, today in (("today", f" AND day = {_TODAY}"), ("month", ""))
    for kind in ("input", "output")
)
_FIGURES = f"""
SELECT {_COLUMNS}
FROM token_usage
WHERE day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date
  AND (({_MINE}) OR {_HERE})
"""


def usage_of(message: object) -> Usage:
    """The tokens one model reply reports (nothing when the server reported none)."""
    metadata: Any = getattr(message, "usage_metadata", None)
    if not metadata:
        return Usage()
    return Usage(int(metadata.get("input_tokens") or 0), int(metadata.get("output_tokens") or 0))


@dataclass(frozen=True, slots=True)
class UsageReport:
    """``/usage``: a person's (None when nobody is named) and a place's tokens, with the caps."""

    user_today: Usage | None
    user_month: Usage | None
    place_today: Usage
    place_month: Usage
    user_cap: int | None
    place_cap: int | None


class UsageLedger:
    def __init__(self, pool: Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings

    def counted(self, key: ThreadKey, user: str | None, model: str, usage: Usage) -> dict[str, Any]:
        """Count one run's tokens in the metrics; the parameters of ``BUMP`` for the ledger."""
        for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens)):
            TOKENS.labels(platform=key.platform, model=model, kind=kind).inc(count)
        return {
            "u_platform": key.platform, "u_place": key.scopes[0], "u_user": user or "", "u_model": model,
            "u_input": usage.input_tokens, "u_output": usage.output_tokens,
        }

    async def record(self, key: ThreadKey, user: str | None, model: str, usage: Usage) -> None:
        """Count a run that recorded no turn (one that paused). A storage failure here is
        logged, never raised: the approval it belongs to is already stored."""
        params = self.counted(key, user, model, usage)
        if not usage.total:
            return
        try:
            async with self._pool.connection() as conn:
                await conn.execute(BUMP, params)
        except STORAGE_ERRORS:
            _log.warning("could not record the token usage of a turn on %s", key)

    async def report(self, key: ThreadKey, user: str | None) -> UsageReport:
        params = {"platform": key.platform, "place": key.scopes[0], "user": user or ""}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_FIGURES, params)).fetchone()
        assert row is not None

        def figures(name: str, span: str) -> Usage:
            return Usage(int(row[f"{name}_{span}_input"]), int(row[f"{name}_{span}_output"]))

        return UsageReport(
            user_today=figures("user", "today") if user else None,
            user_month=figures("user", "month") if user else None,
            place_today=figures("place", "today"),
            place_month=figures("place", "month"),
            user_cap=self._settings.daily_tokens_per_user,
            place_cap=self._settings.daily_tokens_per_place,
        )

    async def check(self, key: ThreadKey, user: str | None) -> None:
        """Refuse a new question once today's tokens reach a cap; free when no cap is set."""
        user_cap, place_cap = self._settings.daily_tokens_per_user, self._settings.daily_tokens_per_place
        if not (place_cap or (user_cap and user)):
            return
        report = await self.report(key, user)
        if user_cap and report.user_today is not None and report.user_today.total >= user_cap:
            raise UsageCapReached(
                f"you have used today's {user_cap:,} tokens; new questions work again after "
                "midnight UTC (history and rewind still work)"
            )
        if place_cap and report.place_today.total >= place_cap:
            raise UsageCapReached(
                f"this place has used today's {place_cap:,} tokens; new questions work again "
                "after midnight UTC (history and rewind still work)"
            )
