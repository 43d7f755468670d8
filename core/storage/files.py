"""Where attached files live: bytes once per sha256 in ``files``, references per conversation.

``conversation_files`` ties a file to each conversation that uses it, so ``/forget`` and
retention delete a conversation's files with it (a file another conversation still uses
stays). ``load`` is what the agents read right before a model call, to turn a window's
references into content parts (``core/agents/attachments.py`` describes the reference).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.keys import ThreadKey
    from core.storage.db import Pool

__all__ = ["FileStore", "StoredFile"]

_STORE = """
WITH f AS (
    INSERT INTO files (sha256, mime, size, data, text)
    VALUES (%(sha256)s, %(mime)s, %(size)s, %(data)s, %(text)s)
    ON CONFLICT (sha256) DO UPDATE SET sha256 = EXCLUDED.sha256
    RETURNING sha256
)
INSERT INTO conversation_files (conversation_key, sha256) SELECT %(key)s, sha256 FROM f
ON CONFLICT DO NOTHING
"""

_LOAD = """
SELECT sha256, mime, CASE WHEN text IS NULL THEN data END AS data, text FROM files
WHERE sha256 = ANY(%s)
"""

# The conversation's references, then every file no other conversation refers to.
_FORGET = """
WITH gone AS (DELETE FROM conversation_files WHERE conversation_key = %s RETURNING sha256)
DELETE FROM files f WHERE f.sha256 IN (SELECT sha256 FROM gone) AND NOT EXISTS (
    SELECT 1 FROM conversation_files c WHERE c.sha256 = f.sha256 AND c.conversation_key <> %s)
"""

# References of conversations that never began (their first turn failed) or were deleted
# around this module, then unreferenced files: what retention sweeps.
_SWEEP = """
WITH gone AS (
    DELETE FROM conversation_files c WHERE c.created_at < now() - make_interval(secs => %(grace)s)
       AND NOT EXISTS (SELECT 1 FROM conversations v WHERE v.key = c.conversation_key)
)
DELETE FROM files f WHERE f.created_at < now() - make_interval(secs => %(grace)s)
   AND NOT EXISTS (SELECT 1 FROM conversation_files c WHERE c.sha256 = f.sha256)
"""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file as it is kept: its bytes once, with the text extracted from it (None for an image)."""

    sha256: str
    mime: str
    size: int
    data: bytes
    text: str | None


class FileStore:
    """The ``files`` and ``conversation_files`` tables: bytes once per hash, references per conversation."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def store(self, key: ThreadKey, files: Sequence[StoredFile]) -> None:
        """Keep each file once and tie it to ``key``, in one transaction."""
        if not files:
            return
        async with self.pool.connection() as conn, conn.transaction():
            for file in files:
                await conn.execute(_STORE, {**asdict(file), "key": str(key)})

    async def forget(self, key: ThreadKey) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_FORGET, (str(key), str(key)))

    async def sweep(self, grace_seconds: float) -> int:
        """Delete the files nothing has referred to for ``grace_seconds``; how many went."""
        async with self.pool.connection() as conn:
            return (await conn.execute(_SWEEP, {"grace": grace_seconds})).rowcount

    async def load(self, sha256s: list[str]) -> dict[str, dict[str, Any]]:
        """The rows of these files, by sha256: ``mime``, ``text``, and ``data`` where there is no text."""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_LOAD, (sha256s,))).fetchall()
        return {row["sha256"]: row for row in rows}
