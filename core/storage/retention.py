"""Retention: what the retention settings delete, as SQL over LangGraph's tables and ours.

``BACKTRACK_RETENTION_DAYS`` (idle conversations, with everything of theirs),
``BACKTRACK_MAX_CHECKPOINTS`` (abandoned branches), the event-id expiry, the usage detail
window, and the optional feedback and audit windows (docs/security.md lists them all).
"""

from __future__ import annotations

from core.keys import ThreadKey
from core.storage.db import Pool

__all__ = ["Retention"]

_IDLE = """
SELECT key FROM conversations WHERE last_active_at < now() - make_interval(secs => %s)
ORDER BY last_active_at LIMIT 500
"""

_OVER_CAP = """
SELECT c.key, coalesce(t.checkpoint_id, c.root_checkpoint_id) AS head
FROM conversations c LEFT JOIN turns t ON t.id = c.head_turn_id
WHERE (SELECT count(*) FROM checkpoints k WHERE k.thread_id = c.key) > %s
LIMIT 500
"""

# Checkpoints off the live branch (abandoned by rewinds, failed or killed turns), oldest
# first, as many as exceed the cap. The live branch is never touched: the root checkpoints
# from the head back, and in every other namespace (a team turn's sub-agents, "researcher:<task
# id>") each checkpoint whose task ran from one of them (LangGraph records that root checkpoint
# as ``metadata.parents['']``). Rows are (namespace, id) pairs: ids repeat across namespaces.
_PRUNE_CHECKPOINTS = """
WITH RECURSIVE root AS (
    SELECT checkpoint_id, parent_checkpoint_id FROM checkpoints
    WHERE thread_id = %(key)s AND checkpoint_ns = '' AND checkpoint_id = %(head)s
  UNION ALL
    SELECT c.checkpoint_id, c.parent_checkpoint_id FROM checkpoints c
    JOIN root l ON c.checkpoint_id = l.parent_checkpoint_id
    WHERE c.thread_id = %(key)s AND c.checkpoint_ns = ''
), live AS (
    SELECT '' AS checkpoint_ns, checkpoint_id FROM root
  UNION ALL
    SELECT checkpoint_ns, checkpoint_id FROM checkpoints
    WHERE thread_id = %(key)s AND checkpoint_ns <> ''
      AND metadata -> 'parents' ->> '' IN (SELECT checkpoint_id FROM root)
), doomed AS (
    SELECT checkpoint_ns, checkpoint_id FROM checkpoints
    WHERE thread_id = %(key)s AND (checkpoint_ns, checkpoint_id) NOT IN (SELECT * FROM live)
    ORDER BY checkpoint_id
    LIMIT greatest((SELECT count(*) FROM checkpoints WHERE thread_id = %(key)s) - %(cap)s, 0)
), gone AS (
    DELETE FROM checkpoints WHERE thread_id = %(key)s
       AND (checkpoint_ns, checkpoint_id) IN (SELECT * FROM doomed)
    RETURNING checkpoint_ns, checkpoint_id
), writes AS (
    DELETE FROM checkpoint_writes WHERE thread_id = %(key)s
       AND (checkpoint_ns, checkpoint_id) IN (SELECT * FROM gone)
), turns_gone AS (
    DELETE FROM turns WHERE conversation_key = %(key)s
       AND checkpoint_id IN (SELECT checkpoint_id FROM gone WHERE checkpoint_ns = '')
)
SELECT count(*) AS n FROM gone
"""

_PRUNE_BLOBS = """
DELETE FROM checkpoint_blobs b WHERE b.thread_id = %(key)s AND NOT EXISTS (
    SELECT 1 FROM checkpoints c
    WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
      AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)
"""

_EXPIRE_EVENTS = "DELETE FROM processed_events WHERE seen_at < now() - make_interval(secs => %s)"

# Per-person rows past the window become their place's (user ''), per day and model: /usage of
# a past month still adds up, and nobody's usage is kept by name longer than the window.
_FOLD_USAGE = """
WITH old AS (
    DELETE FROM token_usage
    WHERE user_id <> '' AND day < (now() AT TIME ZONE 'UTC')::date - %(days)s::int
    RETURNING day, platform, place, model, input_tokens, output_tokens
), folded AS (
    INSERT INTO token_usage (day, platform, place, user_id, model, input_tokens, output_tokens)
    SELECT day, platform, place, '', model, sum(input_tokens), sum(output_tokens) FROM old
    GROUP BY day, platform, place, model
    ON CONFLICT (place, day, user_id, model) DO UPDATE SET
        input_tokens = token_usage.input_tokens + EXCLUDED.input_tokens,
        output_tokens = token_usage.output_tokens + EXCLUDED.output_tokens
)
SELECT count(*) AS n FROM old
"""

_EXPIRE_FEEDBACK = "DELETE FROM feedback WHERE created_at < now() - make_interval(secs => %s)"

# Memories taught by a conversation that is gone (forgotten, or expired above): they were no
# longer live (core/storage/memories.py); now their text goes too. Memories set by a command
# (no conversation) stay until the person forgets them.
_ORPHAN_MEMORIES = """
DELETE FROM store s
WHERE s.prefix LIKE 'memory.%%' AND s.value->>'conversation' IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.key = s.value->>'conversation')
"""

_EXPIRE_AUDIT = """
WITH rewinds AS (DELETE FROM rewinds WHERE created_at < now() - make_interval(secs => %(secs)s) RETURNING 1),
decided AS (
    DELETE FROM approvals WHERE status <> 'pending' AND decided_at < now() - make_interval(secs => %(secs)s)
    RETURNING 1
), tokens AS (
    DELETE FROM api_tokens WHERE revoked_at < now() - make_interval(secs => %(secs)s) RETURNING 1
)
SELECT (SELECT count(*) FROM rewinds) + (SELECT count(*) FROM decided) + (SELECT count(*) FROM tokens) AS n
"""


class Retention:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def idle_conversations(self, older_than_seconds: float) -> list[ThreadKey]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_IDLE, (older_than_seconds,))).fetchall()
        return [ThreadKey.decode(row["key"]) for row in rows]

    async def over_checkpoint_cap(self, cap: int) -> list[ThreadKey]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(_OVER_CAP, (cap,))).fetchall()
        return [ThreadKey.decode(row["key"]) for row in rows]

    async def prune_checkpoints(self, key: ThreadKey, head_checkpoint_id: str, cap: int) -> int:
        """Delete abandoned checkpoints beyond ``cap``; the caller holds the conversation."""
        params = {"key": str(key), "head": head_checkpoint_id, "cap": cap}
        async with self.pool.connection() as conn, conn.transaction():
            row = await (await conn.execute(_PRUNE_CHECKPOINTS, params)).fetchone()
            await conn.execute(_PRUNE_BLOBS, params)
        return int(row["n"]) if row else 0

    async def expire_events(self, older_than_seconds: float) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(_EXPIRE_EVENTS, (older_than_seconds,))
            return cur.rowcount

    async def fold_usage(self, older_than_days: float) -> int:
        """Per-person usage rows folded into their place's totals; how many were folded."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_FOLD_USAGE, {"days": int(older_than_days)})).fetchone()
        return int(row["n"]) if row else 0

    async def expire_feedback(self, older_than_seconds: float) -> int:
        async with self.pool.connection() as conn:
            return (await conn.execute(_EXPIRE_FEEDBACK, (older_than_seconds,))).rowcount

    async def expire_audit(self, older_than_seconds: float) -> int:
        """Rewind records, decided approvals and revoked tokens older than that; how many went."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_EXPIRE_AUDIT, {"secs": older_than_seconds})).fetchone()
        return int(row["n"]) if row else 0

    async def orphan_memories(self) -> int:
        async with self.pool.connection() as conn:
            return (await conn.execute(_ORPHAN_MEMORIES)).rowcount
