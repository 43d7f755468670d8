"""Time travel by gesture: editing a message that was answered, Try again, and "2/3".

The adapters report what a person did to a chat message; this turns it into the core's
verbs (``Forks.replay`` and ``Branches.switch``) and remembers which answer each message
has (``core/storage/messages.py``), so that:

- an edit of a message the bot answered forks at the turn before it and answers the new
  text; an edit of any other message, by anyone but its author, or one that leaves the
  text as it was (Slack sends ``message_changed`` for unfurls too) changes nothing;
- the same edit delivered twice forks once (claimed by the edit's own id), and an edit
  whose answer was never posted (a crash in between) is completed by repeating it: the
  stored answer is handed back, no second branch is made. Try again completes the same way;
- an edit queues behind a turn that is running, like any message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.conversations.intake import clean_message
from core.errors import RewindOutOfRange
from core.storage.db import storage_errors
from core.types import Answer

if TYPE_CHECKING:
    from core.conversations.branches import Branches
    from core.conversations.forks import Forks
    from core.keys import ThreadKey
    from core.records import Turn
    from core.settings import Settings
    from core.storage.conversations import ConversationStore
    from core.storage.deliveries import Deliveries
    from core.storage.messages import MessageAnswers

__all__ = ["Edited", "Edits", "Version"]


@dataclass(frozen=True, slots=True)
class Edited:
    """A new answer for a message (or a click), to post; then ``Edits.posted``."""

    answer: Answer
    source: str
    """What the answer is for: the edited message, or ``retry:<answer message>``."""
    superseded: str | None = None
    """The platform message of the answer it replaces, to mark as answering an earlier version."""


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a turn as "2/3" shows it: the turn and its neighbours' checkpoints."""

    turn: Turn
    previous: str | None
    next: str | None


class Edits:
    def __init__(
        self, messages: MessageAnswers, deliveries: Deliveries, store: ConversationStore, forks: Forks,
        branches: Branches, settings: Settings,
    ) -> None:
        self._messages = messages
        self._deliveries = deliveries
        self._store = store
        self._forks = forks
        self._branches = branches
        self._max_chars = settings.max_message_chars

    async def answered(
        self, key: ThreadKey, message_id: str, author: str, answer: Answer, reply_id: str | None
    ) -> None:
        """``message_id`` (by ``author``) is answered by ``answer``, posted as ``reply_id``."""
        if answer.turn is not None:
            async with storage_errors():
                await self._messages.answered(key, message_id, author, answer.checkpoint_id, reply_id)

    async def posted(self, key: ThreadKey, edited: Edited, reply_id: str) -> None:
        """The answer of an edit or a click is shown, as ``reply_id``: nothing is left to complete."""
        if edited.answer.turn is not None:
            async with storage_errors():
                await self._messages.posted(key, edited.source, edited.answer.checkpoint_id, reply_id)

    async def edit(
        self, key: ThreadKey, message_id: str, author: str, text: str, edit_id: str
    ) -> Edited | None:
        """``author`` changed ``message_id`` to ``text``; None: nothing to answer (see above)."""
        async with storage_errors():
            link = await self._messages.get(key, message_id)
            if link is None or link.author != author:
                return None
            asked = await self._store.turn_at(key, link.checkpoint_id)
        if asked is None:
            return None
        if clean_message(text, self._max_chars) == asked.question:
            if link.reply_id is not None:  # formatting, an unfurl, or this edit again
                return None
            shown = (await self.version(key, asked.checkpoint_id)).turn  # with its "2/3"
            return Edited(Answer(key, shown.answer, shown), message_id, link.replaced_reply_id)
        async with self._deliveries.once(f"edit:{key}:{message_id}:{edit_id}") as first:
            if not first:  # a redelivery of an edit in hand
                return None
            answer = await self._forks.replay(key, link.checkpoint_id, author, text)
        if answer.turn is not None:
            async with storage_errors():
                await self._messages.forked(key, message_id, author, answer.checkpoint_id, edit_id)
        return Edited(answer, message_id, link.reply_id or link.replaced_reply_id)

    async def retry(self, key: ThreadKey, checkpoint_id: str, origin: str, user: str) -> Edited:
        """Try again on the answer ``origin`` shows (its turn ended at ``checkpoint_id``)."""
        source = f"retry:{origin}"
        async with storage_errors():
            link = await self._messages.get(key, source)
            made = link.checkpoint_id if link and not link.reply_id else None  # a click's unposted answer
            unposted = await self._store.turn_at(key, made) if made else None
        if unposted is not None:
            shown = (await self.version(key, unposted.checkpoint_id)).turn
            return Edited(Answer(key, shown.answer, shown), source)
        answer = await self._forks.replay(key, checkpoint_id, user)
        if answer.turn is not None:
            async with storage_errors():
                await self._messages.forked(key, source, user, answer.checkpoint_id, origin)
        return Edited(answer, source)

    async def version(self, key: ThreadKey, checkpoint_id: str) -> Version:
        """The version ending at ``checkpoint_id`` with its neighbours, for the previous/next controls."""
        versions = await self._branches.versions(key, checkpoint_id)
        ids = [v.checkpoint_id for v in versions]
        if checkpoint_id not in ids:
            raise RewindOutOfRange("no turn of this conversation ends at that checkpoint")
        n = ids.index(checkpoint_id)
        return Version(versions[n], ids[n - 1] if n else None, ids[n + 1] if n + 1 < len(ids) else None)

    async def switch(self, key: ThreadKey, checkpoint_id: str, user: str) -> Version:
        """Previous or next: continue on the version ending at ``checkpoint_id``, to show in place."""
        await self._branches.switch(key, checkpoint_id, user)
        return await self.version(key, checkpoint_id)
