"""What comes in: whether a message is for the bot, whether it was handled already, its text.

Platforms deliver at least once and to every instance that listens, so the first delivery
to claim a message's ids (on any instance) handles it and every other one stays silent. A
message is for the bot when it is addressed (a DM, a mention) or is a follow-up in a
conversation that exists. ``clean_message`` is the one rule for text a turn stores.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import TYPE_CHECKING

from core.conversations.commands import parse_command
from core.errors import InvalidInput, StorageUnavailable
from core.logs import span
from core.storage.db import storage_errors
from core.types import Received

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.storage.conversations import ConversationStore
    from core.storage.deliveries import Deliveries
    from core.storage.generations import Generations
    from core.types import Incoming

__all__ = ["Intake", "clean_message", "is_blank"]

_log = logging.getLogger(__name__)

_KNOWN_CONVERSATIONS = 10_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone halves (e.g. from JSON "\udcff") cannot be stored


def is_blank(text: str) -> bool:
    """Whether nothing would be left of ``text`` to answer (only spaces and control characters)."""
    return not _CONTROL.sub("", text).strip()


def clean_message(text: object, max_chars: int) -> str:
    """The text a turn stores: control characters removed, never empty, never huge."""
    if not isinstance(text, str):
        raise InvalidInput("the message must be text")
    cleaned = _SURROGATE.sub("\ufffd", _CONTROL.sub("", text)).strip()
    if not cleaned:
        raise InvalidInput("the message is empty")
    if len(cleaned) > max_chars:
        raise InvalidInput(
            f"the message is too long ({len(cleaned):,} characters; the limit is {max_chars:,})"
        )
    return cleaned


class Intake:
    def __init__(self, store: ConversationStore, deliveries: Deliveries, generations: Generations) -> None:
        self._store = store
        self._deliveries = deliveries
        self._generations = generations
        self._known: OrderedDict[str, None] = OrderedDict()

    async def receive(self, message: Incoming) -> Received | None:
        """Whether an incoming message is answered, and as what; None: stay silent.

        A storage failure is raised only where the user surely spoke to the bot and this
        delivery is the one to tell them; elsewhere an outage stays silent, so it never
        makes the bot reply to every thread it can read.
        """
        tell = message.addressed and not message.echo
        try:
            key = await self.current(message.key)  # the place may have moved on (/new)
            if not message.addressed:
                if not await self.exists(key):
                    return None
                tell = not message.echo
            with span("backtrack.dedupe", **{"backtrack.conversation": str(key)}) as claimed:
                event_id = await self.claim(key, message.deliveries)
                claimed.set_attribute("backtrack.duplicate", event_id is None and bool(message.deliveries))
            if event_id is None and message.deliveries:
                return None
        except StorageUnavailable:
            if tell:
                raise
            _log.info("storage unavailable; %s left unanswered", message.key)
            return None
        prefixes = message.command_prefixes
        command = parse_command(message.text, prefixes) if prefixes else None
        return Received(key, message.text, command, event_id)

    async def current(self, key: ThreadKey) -> ThreadKey:
        """The conversation a place's messages belong to now (``core/storage/generations.py``).

        A key that ``/new`` cannot move on (a thread) is returned as it is, without a query.
        """
        if not key.renewable:
            return key
        async with storage_errors():
            return await self._generations.current(key.nth(0))

    async def claim(self, key: ThreadKey, deliveries: tuple[tuple[str, str], ...]) -> str | None:
        """The first delivery's id if every id is new; None if any was handled already."""
        ids = [f"{key.platform}:{kind}:{value}" for kind, value in deliveries]
        async with storage_errors():
            for event_id in ids:
                if not await self._deliveries.claim(event_id):
                    _log.info("event %s already handled", event_id)
                    return None
        return ids[0] if ids else None

    async def exists(self, key: ThreadKey) -> bool:
        """Whether the conversation has begun (adapters answer follow-ups only there).

        Conversations this process has seen are remembered (a bounded LRU), so during a
        database outage a follow-up in a known thread still gets the "storage unavailable"
        answer instead of silence.
        """
        name = str(key)
        if name in self._known:
            self._known.move_to_end(name)
            return True
        async with storage_errors():
            found = await self._store.head(key) is not None
        if found:
            self.remember(key)
        return found

    def remember(self, key: ThreadKey) -> None:
        self._known[str(key)] = None
        self._known.move_to_end(str(key))
        if len(self._known) > _KNOWN_CONVERSATIONS:
            self._known.popitem(last=False)

    def forget(self, key: ThreadKey) -> None:
        self._known.pop(str(key), None)

    async def start_new(self, key: ThreadKey, user: str | None) -> ThreadKey:
        """``/new``: bump the place's generation; its previous conversations stay as they are."""
        if not key.renewable:
            raise InvalidInput(
                "/new works where one conversation runs on (a direct message, a Discord channel); "
                "a thread is a conversation of its own: start a new thread instead"
            )
        async with storage_errors():
            new = await self._generations.bump(key.nth(0), user)
        _log.info("new conversation %s after %s", new, key)
        return new
