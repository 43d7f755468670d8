"""Refuse at start to run behind a transaction-mode pooler without a safe lock setup.

Session advisory locks (conversation locks, the migration lock) need a session: through
PgBouncer in transaction mode the lock and the unlock can land on different server
connections, and a lock held by a pooled server connection is "held" by whichever client
uses it next. So such a deployment must name a direct connection for the locks
(``BACKTRACK_LOCK_DATABASE_URL``) and turn prepared statements off.

What is detectable: PgBouncer looks like PostgreSQL on the wire, so nothing names it. But
transaction pooling leaks session state between clients: a ``SET`` made in autocommit by
one client is seen by the next client handed the same server connection (PgBouncer reuses
the most recently released one). ``detect_transaction_pooling`` does exactly that with two
connections; it never reports pooling on a direct connection or a session pooler, and may
miss it on a busy pooler. So the explicit signal counts too: ``BACKTRACK_DB_PREPARE_THRESHOLD=off``
is what docs/pgbouncer.md says to set for a transaction pooler, and with it the lock URL is required.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

import psycopg

from core.errors import SettingsError
from core.storage.db import BoundedConnection, connection_class

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["check_pooling", "detect_transaction_pooling"]

_log = logging.getLogger(__name__)

_PROBE = "backtrack.pooling_probe"

NEEDS_LOCK_URL = (
    "{why}, but BACKTRACK_LOCK_DATABASE_URL is not set: advisory locks do not survive transaction"
    " pooling. Set BACKTRACK_LOCK_DATABASE_URL to a direct connection to PostgreSQL (or a"
    " session-mode pool); see docs/pgbouncer.md"
)
NEEDS_PREPARE_OFF = (
    "DATABASE_URL goes through a transaction-mode pooler (PgBouncer?): set"
    " BACKTRACK_DB_PREPARE_THRESHOLD=off, prepared statements do not survive transaction pooling"
)


async def detect_transaction_pooling(
    url: str, kwargs: dict[str, Any], connection: type[psycopg.AsyncConnection[Any]] = BoundedConnection
) -> bool:
    """Whether a session setting made by one client shows up in another client's session.

    An unreachable server is not a pooler: the caller starts as before and the pool reports
    the outage its usual way. The probe sends no startup ``options`` (PgBouncer refuses
    them), so a pooler is recognised even when the settings do not say it is there.
    """
    try:
        return await _leaks_session_state(url, kwargs, connection)
    except psycopg.OperationalError as exc:
        _log.warning("could not check for a transaction pooler: %s", type(exc).__name__)
        return False


async def _leaks_session_state(
    url: str, kwargs: dict[str, Any], connection: type[psycopg.AsyncConnection[Any]]
) -> bool:
    nonce = secrets.token_hex(8)
    kwargs = {k: v for k, v in kwargs.items() if k != "options"} | {"prepare_threshold": None}
    async with await connection.connect(url, **kwargs) as one:
        await one.execute(f"SET {_PROBE} = '{nonce}'")  # nonce is hex: safe to inline
        async with await connection.connect(url, **kwargs) as two:
            cursor = await two.execute("SELECT current_setting(%s, true) AS v", (_PROBE,))
            row = await cursor.fetchone()
        await one.execute(f"RESET {_PROBE}")
    value = row["v"] if isinstance(row, dict) else (row[0] if row else None)
    return value == nonce


async def check_pooling(settings: Settings, url: str, kwargs: dict[str, Any]) -> None:
    """Raise ``SettingsError`` for a configuration that would run the locks unsafely."""
    probe = connection_class(settings)
    if settings.lock_database_url:
        if await detect_transaction_pooling(settings.lock_database_url, kwargs, probe):
            raise SettingsError(
                "BACKTRACK_LOCK_DATABASE_URL goes through a transaction-mode pooler; it must be"
                " a direct connection to PostgreSQL (or a session-mode pool)"
            )
        if await detect_transaction_pooling(url, kwargs, probe) and settings.db_prepare_threshold is not None:
            raise SettingsError(NEEDS_PREPARE_OFF)
        return
    if settings.db_prepare_threshold is None:
        why = "BACKTRACK_DB_PREPARE_THRESHOLD=off says a transaction pooler is in front"
        raise SettingsError(NEEDS_LOCK_URL.format(why=why))
    if await detect_transaction_pooling(url, kwargs, probe):
        why = "DATABASE_URL goes through a transaction-mode pooler (PgBouncer?)"
        raise SettingsError(NEEDS_LOCK_URL.format(why=why))
