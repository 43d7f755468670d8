"""Who a Slack user is, by name: ``users.info`` once per person, then a bounded cache.

The name goes to the model so it can tell people apart in a shared thread
(``core/agents/speakers.py``, which also makes it fit a prefix). A failed lookup (no
``users:read`` scope, a deleted user, Slack down) falls back to the user id and is not
cached, so the next message tries again.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from bots.slack.replies import SLACK_ERRORS

if TYPE_CHECKING:
    from collections.abc import Callable

    from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["People"]

_log = logging.getLogger(__name__)


class People:
    """Display names by user id, at most ``size`` of them, each kept ``ttl`` seconds."""

    def __init__(
        self, *, size: int = 2000, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._ttl = ttl
        self._clock = clock
        self._names: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def name(self, user: str, client: AsyncWebClient) -> str:
        """``client``: one with the token of the workspace ``user`` is in."""
        cached = self._names.get(user)
        if cached is not None and self._clock() - cached[1] < self._ttl:
            self._names.move_to_end(user)
            return cached[0]
        try:
            found = (await client.users_info(user=user)).get("user") or {}
        except SLACK_ERRORS as exc:
            _log.info("no name for %s (%s); using the id", user, type(exc).__name__)
            return user
        profile = found.get("profile") or {}
        shown = profile.get("display_name") or profile.get("real_name") or found.get("name")
        name = shown if isinstance(shown, str) and shown.strip() else user  # the core makes it fit a prefix
        self._names[user] = (name, self._clock())
        self._names.move_to_end(user)
        while len(self._names) > self._size:
            self._names.popitem(last=False)
        return name
