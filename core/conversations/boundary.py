"""The outermost edge of handling one platform event, the same for every adapter.

A typed error is the user's to read (``user_message``); anything else is a bug: it is
logged with its traceback, counted in ``backtrack_errors_total{kind="internal"}``, and the
user reads only the short apology. Cancellation passes through: a stopping bot is not a bug.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from core.conversations.wording import SORRY, user_message
from core.errors import BacktrackError
from core.metrics import count_error

__all__ = ["Tell", "boundary"]

_log = logging.getLogger(__name__)

Tell = Callable[[str], Awaitable[None]]
"""Shows one line to the user where the event came from (a thread, an ephemeral reply, …)."""


@asynccontextmanager
async def boundary(tell: Tell, what: str) -> AsyncIterator[None]:
    """Run one event's handling; ``what`` names it in the log ("slack message C1/1700.1")."""
    try:
        yield
    except BacktrackError as exc:
        _log.info("%s refused: %s", what, exc.code)
        await _safely(tell, user_message(exc), what)
    except Exception:
        _log.error("%s failed", what, exc_info=True)
        count_error("internal")
        await _safely(tell, SORRY, what)


async def _safely(tell: Tell, text: str, what: str) -> None:
    """Telling the user may fail too (the platform is down): that is logged, never raised."""
    try:
        await tell(text)
    except Exception as exc:
        _log.warning("could not answer %s: %r", what, exc)
