"""Where attached files live: bytes once per sha256 in ``files``, references per conversation.

``conversation_files`` ties a file to each conversation that uses it, so ``/forget`` and
retention delete a conversation's files with it (a file another conversation still uses
stays). ``resolve`` is what the agent calls right before the model: it turns a window's
references into OpenAI content parts (``core/agents/attachments.py`` describes the reference).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, HumanMessage

from core.agents.attachments import refs_of, vision_on

if TYPE_CHECKING:
    from core.agents.attachments import Prepared
    from core.keys import ThreadKey
    from core.settings import Settings
    from core.storage.db import Pool

__all__ = ["FileStore"]

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
    DELETE FROM conversation_files c WHERE c.created_at < now() - interval '1 day'
       AND NOT EXISTS (SELECT 1 FROM conversations v WHERE v.key = c.conversation_key)
)
DELETE FROM files f WHERE f.created_at < now() - interval '1 day'
   AND NOT EXISTS (SELECT 1 FROM conversation_files c WHERE c.sha256 = f.sha256)
"""


class FileStore:
    """The ``files`` and ``conversation_files`` tables: bytes once per hash, references per conversation."""

    def __init__(self, pool: Pool, settings: Settings) -> None:
        self.pool = pool
        self._settings = settings

    async def store(self, key: ThreadKey, prepared: Prepared) -> None:
        if not prepared.ready:
            return
        async with self.pool.connection() as conn, conn.transaction():
            for r in prepared.ready:
                text = r.text[: self._settings.attachment_text_chars] if r.text is not None else None
                params = {**r.ref, "data": r.data, "text": text, "key": str(key)}
                await conn.execute(_STORE, params)

    async def forget(self, key: ThreadKey) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(_FORGET, (str(key), str(key)))

    async def sweep(self) -> int:
        async with self.pool.connection() as conn:
            return (await conn.execute(_SWEEP)).rowcount

    async def resolve(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """``messages`` with every file reference turned into the content parts the model reads."""
        wanted = {r["sha256"] for m in messages for r in refs_of(m) if "sha256" in r}
        if not wanted:
            return messages
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_LOAD, (sorted(wanted),))).fetchall()
        found = {row["sha256"]: row for row in rows}
        vision = vision_on(self._settings)
        return [self._parts(m, found, vision) if refs_of(m) else m for m in messages]

    def _parts(self, message: BaseMessage, found: dict[str, Any], vision: bool) -> BaseMessage:
        parts: list[str | dict[str, Any]] = [{"type": "text", "text": message.text}]
        for ref in refs_of(message):
            name, row = ref.get("name", "file"), found.get(ref.get("sha256", ""))
            if row is None:
                parts.append({"type": "text", "text": f"[{name} is no longer stored]"})
            elif row["text"] is not None:
                text = row["text"]
                cut = f"\n[{name} was cut to its first {len(text):,} characters]" if ref.get("cut") else ""
                parts.append({"type": "text", "text": f"--- {name} ---\n{text}{cut}\n--- end of {name} ---"})
            elif vision:
                url = f"data:{row['mime']};base64,{base64.b64encode(row['data']).decode()}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            else:
                note = f"[{name} is an image; this model does not read images]"
                parts.append({"type": "text", "text": note})
        return HumanMessage(content=parts, id=message.id, name=message.name)
