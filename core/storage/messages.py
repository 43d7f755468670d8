"""Which answer a person's chat message has now: the ``message_answers`` table.

A platform message (a Slack ``channel:ts``, a Discord message id) or a Try again click
(``retry:<answer message>``) is linked to the checkpoint its answer ended at and to the
platform message showing that answer. Editing the message forks from that turn; the link
then moves to the new answer, keeping the reply it replaced (to mark it superseded) until
the new one is posted. The rows go with their conversation (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.keys import ThreadKey
    from core.storage.db import Pool

__all__ = ["MessageAnswer", "MessageAnswers"]

_GET = "SELECT * FROM message_answers WHERE conversation_key = %s AND message_id = %s"

_ANSWERED = """
INSERT INTO message_answers (conversation_key, message_id, author, checkpoint_id, reply_id)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (conversation_key, message_id) DO UPDATE
SET checkpoint_id = excluded.checkpoint_id, reply_id = excluded.reply_id,
    replaced_reply_id = NULL, edit_id = NULL
"""

# The message has a new answer, not posted yet: the reply it replaces is kept to mark it.
_FORKED = """
INSERT INTO message_answers (conversation_key, message_id, author, checkpoint_id, edit_id)
VALUES (%(key)s, %(message)s, %(author)s, %(checkpoint)s, %(edit)s)
ON CONFLICT (conversation_key, message_id) DO UPDATE
SET checkpoint_id = excluded.checkpoint_id, edit_id = excluded.edit_id,
    replaced_reply_id = coalesce(message_answers.reply_id, message_answers.replaced_reply_id),
    reply_id = NULL
"""

_POSTED = """
UPDATE message_answers SET reply_id = %s, replaced_reply_id = NULL
WHERE conversation_key = %s AND message_id = %s AND checkpoint_id = %s
"""


@dataclass(frozen=True, slots=True)
class MessageAnswer:
    message_id: str
    author: str
    checkpoint_id: str
    """Where the message's current answer ended."""
    reply_id: str | None
    """The platform message showing that answer; None: not posted yet."""
    replaced_reply_id: str | None
    """The answer it replaced, still to be marked superseded once the new one is posted."""
    edit_id: str | None
    """The platform's identity of the edit (or click) that made the current answer."""


class MessageAnswers:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def get(self, key: ThreadKey, message_id: str) -> MessageAnswer | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_GET, (str(key), message_id))).fetchone()
        if row is None:
            return None
        return MessageAnswer(
            row["message_id"], row["author"], row["checkpoint_id"], row["reply_id"],
            row["replaced_reply_id"], row["edit_id"],
        )

    async def answered(
        self, key: ThreadKey, message_id: str, author: str, checkpoint_id: str, reply_id: str | None
    ) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_ANSWERED, (str(key), message_id, author, checkpoint_id, reply_id))

    async def forked(
        self, key: ThreadKey, message_id: str, author: str, checkpoint_id: str, edit_id: str
    ) -> None:
        params = {"key": str(key), "message": message_id, "author": author, "checkpoint": checkpoint_id,
                  "edit": edit_id}
        async with self.pool.connection() as conn:
            await conn.execute(_FORKED, params)

    async def posted(self, key: ThreadKey, message_id: str, checkpoint_id: str, reply_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_POSTED, (reply_id, str(key), message_id, checkpoint_id))
