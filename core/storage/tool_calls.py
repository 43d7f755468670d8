"""Every MCP tool call and its result: the ``tool_calls`` table (the ledger).

A call is already a checkpoint write; this makes it findable by what it did — server,
tool and a hash of its arguments — so a replay can reuse the result of an earlier call
with the same arguments instead of repeating its side effect, and a fresh repeat can be
asked about first (``core/agents/mcp.py``). Rows go with their conversation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from core.records import ToolCallRecord

if TYPE_CHECKING:
    from core.storage.db import Pool

__all__ = ["ToolCalls"]

_EARLIER = """
SELECT * FROM tool_calls
WHERE conversation_key = %s AND server = %s AND tool = %s AND args_hash = %s
  AND reused_from IS NULL AND error IS NULL AND result IS NOT NULL
ORDER BY id DESC LIMIT 1
"""

_RECORD = """
INSERT INTO tool_calls (conversation_key, run_id, server, tool, args, args_hash, read_only, policy,
                        result, error, approved_by, reused_from)
VALUES (%(key)s, %(run)s, %(server)s, %(tool)s, %(args)s, %(hash)s, %(read_only)s, %(policy)s,
        %(result)s, %(error)s, %(approved_by)s, %(reused_from)s)
"""

_OF_RUN = "SELECT * FROM tool_calls WHERE conversation_key = %s AND run_id = %s ORDER BY id"
_OF_CONVERSATION = "SELECT * FROM tool_calls WHERE conversation_key = %s ORDER BY id DESC LIMIT %s"


def _record(row: dict[str, Any]) -> ToolCallRecord:
    return ToolCallRecord(
        server=row["server"], tool=row["tool"], args=row["args"], args_hash=row["args_hash"],
        read_only=row["read_only"], policy=row["policy"], result=row["result"], error=row["error"],
        approved_by=row["approved_by"], reused_from=row["reused_from"], id=row["id"], run_id=row["run_id"],
        at=row["created_at"],
    )


class ToolCalls:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def earlier(self, key: str, server: str, tool: str, args_hash: str) -> ToolCallRecord | None:
        """The newest call of this conversation that ran ``tool`` with these arguments and succeeded."""
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_EARLIER, (key, server, tool, args_hash))).fetchone()
        return _record(row) if row else None

    async def record(self, key: str, run_id: str, call: ToolCallRecord) -> None:
        params = {
            "key": key, "run": run_id, "server": call.server, "tool": call.tool, "args": Jsonb(call.args),
            "hash": call.args_hash, "read_only": call.read_only, "policy": call.policy,
            "result": call.result, "error": call.error, "approved_by": call.approved_by,
            "reused_from": call.reused_from,
        }
        async with self.pool.connection() as conn:
            await conn.execute(_RECORD, params)

    async def of_run(self, key: str, run_id: str) -> list[ToolCallRecord]:
        """The calls one turn made (``run_id`` is the turn's id in its checkpoints' metadata)."""
        async with self.pool.connection() as conn:
            return [_record(r) for r in await (await conn.execute(_OF_RUN, (key, run_id))).fetchall()]

    async def of_conversation(self, key: str, limit: int) -> list[ToolCallRecord]:
        """The newest ``limit`` calls of a conversation, newest first (the viewer, the audit)."""
        async with self.pool.connection() as conn:
            return [_record(r) for r in await (await conn.execute(_OF_CONVERSATION, (key, limit))).fetchall()]
