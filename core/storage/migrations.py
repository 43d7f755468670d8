"""The project's migrations: an ordered list whose index is the version, applied under one lock.

Every process that starts at once may try to migrate; one advisory lock lets exactly one
do it while the others wait, and also guards LangGraph's own ``setup()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import DictRow

    from core.storage.db import Pool

__all__ = ["MIGRATIONS", "apply_migrations"]

_log = logging.getLogger(__name__)

# Ordered: the index + 1 is the version. Never edit a shipped entry; append a new one.
MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE conversations (
        key            text PRIMARY KEY,
        platform       text NOT NULL,
        place          text NOT NULL,
        title          text NOT NULL DEFAULT '',
        created_at     timestamptz NOT NULL DEFAULT now(),
        last_active_at timestamptz NOT NULL DEFAULT now(),
        last_user      text,
        head_turn_id   bigint,
        root_checkpoint_id text
    );
    CREATE INDEX conversations_place_active ON conversations (place, last_active_at DESC);
    CREATE INDEX conversations_active ON conversations (last_active_at);

    CREATE TABLE turns (
        id                bigserial PRIMARY KEY,
        conversation_key  text NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
        parent_id         bigint REFERENCES turns (id) ON DELETE CASCADE,
        seq               integer NOT NULL,
        checkpoint_id     text NOT NULL,
        user_id           text,
        question          text NOT NULL,
        answer            text NOT NULL,
        created_at        timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX turns_conversation ON turns (conversation_key, id);
    CREATE UNIQUE INDEX turns_checkpoint ON turns (conversation_key, checkpoint_id);
    ALTER TABLE conversations ADD FOREIGN KEY (head_turn_id) REFERENCES turns (id)
        ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

    CREATE TABLE rewinds (
        id                bigserial PRIMARY KEY,
        conversation_key  text NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
        from_turn_id      bigint REFERENCES turns (id) ON DELETE CASCADE,
        to_turn_id        bigint REFERENCES turns (id) ON DELETE CASCADE,
        user_id           text,
        created_at        timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE processed_events (
        event_id   text PRIMARY KEY,
        seen_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX processed_events_seen ON processed_events (seen_at);
    """,
    """
    CREATE TABLE inflight_turns (
        conversation_key text PRIMARY KEY,
        question         text NOT NULL,
        user_id          text,
        started_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX turns_user ON turns (conversation_key, user_id);
    """,
    """
    CREATE TABLE approvals (
        id                bigserial PRIMARY KEY,
        conversation_key  text NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
        checkpoint_id     text NOT NULL,
        head_turn_id      bigint REFERENCES turns (id) ON DELETE CASCADE,
        question          text NOT NULL,
        tool              text NOT NULL,
        args              jsonb NOT NULL,
        requested_by      text,
        status            text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
        decided_by        text,
        created_at        timestamptz NOT NULL DEFAULT now(),
        decided_at        timestamptz
    );
    CREATE UNIQUE INDEX approvals_one_pending ON approvals (conversation_key) WHERE status = 'pending';
    """,
    """
    ALTER TABLE processed_events ADD COLUMN result text;
    """,
    """
    CREATE TABLE feedback (
        turn_id     bigint NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
        user_id     text NOT NULL,
        value       text NOT NULL CHECK (value IN ('up', 'down')),
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (turn_id, user_id)
    );
    CREATE TABLE generations (
        base_key    text PRIMARY KEY,
        generation  integer NOT NULL CHECK (generation >= 1),
        user_id     text,
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    """,
    """
    CREATE TABLE files (
        sha256      text PRIMARY KEY,
        mime        text NOT NULL,
        size        integer NOT NULL,
        data        bytea NOT NULL,
        text        text,
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE files ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE conversation_files (
        conversation_key  text NOT NULL,
        sha256            text NOT NULL REFERENCES files (sha256),
        created_at        timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (conversation_key, sha256)
    );
    CREATE INDEX conversation_files_sha256 ON conversation_files (sha256);
    """,
    """
    ALTER TABLE conversations ADD COLUMN team boolean;
    """,
    """
    CREATE TABLE place_settings (
        place       text PRIMARY KEY,
        persona     text,
        model       text,
        updated_by  text,
        updated_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE token_usage (
        day            date NOT NULL,
        platform       text NOT NULL,
        place          text NOT NULL,
        user_id        text NOT NULL DEFAULT '',
        model          text NOT NULL,
        input_tokens   bigint NOT NULL DEFAULT 0,
        output_tokens  bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (place, day, user_id, model)
    );
    CREATE INDEX token_usage_user ON token_usage (platform, user_id, day);
    ALTER TABLE turns ADD COLUMN input_tokens integer, ADD COLUMN output_tokens integer;
    """,
    # The graph a paused turn resumes on, kept with its request (it was read from the
    # paused checkpoint's metadata before); requests already waiting take it from there.
    """
    ALTER TABLE approvals ADD COLUMN agent text NOT NULL DEFAULT 'single';
    DO $$ BEGIN
        IF to_regclass('checkpoints') IS NOT NULL THEN
            UPDATE approvals a SET agent = k.metadata ->> 'agent' FROM checkpoints k
            WHERE a.status = 'pending' AND k.thread_id = a.conversation_key AND k.checkpoint_ns = ''
              AND k.checkpoint_id = a.checkpoint_id AND k.metadata ->> 'agent' IN ('single', 'team');
        END IF;
    END $$;
    """,
    """
    CREATE TABLE api_tokens (
        id          bigserial PRIMARY KEY,
        name        text NOT NULL,
        token_hash  text NOT NULL UNIQUE,
        scopes      text[] NOT NULL CHECK (cardinality(scopes) > 0),
        created_at  timestamptz NOT NULL DEFAULT now(),
        revoked_at  timestamptz
    );
    """,
    # A turn's lock and its start in one round trip (core/storage/locks.py). A function, not
    # one statement: its second query takes a fresh snapshot after the lock is held, so it
    # sees everything the previous holder committed before letting go.
    """
    CREATE FUNCTION backtrack_start_turn(p_key text, p_question text, p_user text, p_scopes text[])
    RETURNS TABLE (locked boolean, abandoned text, "exists" boolean, root_checkpoint_id text,
                   team boolean, turn_id bigint, seq integer, checkpoint_id text, pending boolean,
                   places json, latest text)
    LANGUAGE plpgsql VOLATILE AS $$
    #variable_conflict use_column
    BEGIN
        IF NOT pg_try_advisory_lock(hashtextextended(p_key, 0)) THEN
            RETURN QUERY SELECT false, NULL::text, false, NULL::text, NULL::boolean, NULL::bigint,
                                NULL::integer, NULL::text, false, '[]'::json, NULL::text;
            RETURN;
        END IF;
        RETURN QUERY
        WITH old AS (SELECT question FROM inflight_turns WHERE conversation_key = p_key),
        mark AS (
            INSERT INTO inflight_turns (conversation_key, question, user_id)
            VALUES (p_key, p_question, p_user)
            ON CONFLICT (conversation_key) DO UPDATE
               SET question = EXCLUDED.question, user_id = EXCLUDED.user_id, started_at = now()
        )
        SELECT true, (SELECT question FROM old), c.key IS NOT NULL, c.root_checkpoint_id, c.team,
               t.id, t.seq, t.checkpoint_id,
               EXISTS (SELECT 1 FROM approvals a
                       WHERE a.conversation_key = p_key AND a.status = 'pending'),
               (SELECT coalesce(json_agg(p), '[]'::json) FROM place_settings p
                WHERE p.place = ANY(p_scopes)),
               (SELECT k.checkpoint_id FROM checkpoints k WHERE k.thread_id = p_key AND k.checkpoint_ns = ''
                ORDER BY k.checkpoint_id DESC LIMIT 1)
        FROM (VALUES (1)) AS one (x)
        LEFT JOIN conversations c ON c.key = p_key
        LEFT JOIN turns t ON t.id = c.head_turn_id;
    END $$;
    """,
    # The versions of a turn (its siblings), counted for every turn /history shows.
    "CREATE INDEX turns_parent ON turns (conversation_key, parent_id, id);",
    # 13: which answer a person's chat message (or a Try again click) has now, and where it is
    # posted, so editing the message forks from it (core/storage/messages.py).
    """
    CREATE TABLE message_answers (
        conversation_key text NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
        message_id    text NOT NULL,
        author        text NOT NULL,
        checkpoint_id text NOT NULL,
        reply_id      text,
        replaced_reply_id text,
        edit_id       text,
        PRIMARY KEY (conversation_key, message_id)
    )
    """,
    # 14: MCP servers chosen per place, and every MCP tool call with its result
    # (core/storage/tool_calls.py), so a replay finds what an earlier call did.
    """
    ALTER TABLE place_settings ADD COLUMN mcp_servers text[];
    CREATE TABLE tool_calls (
        id               bigserial PRIMARY KEY,
        conversation_key text NOT NULL REFERENCES conversations (key) ON DELETE CASCADE,
        run_id           text NOT NULL,
        server           text NOT NULL,
        tool             text NOT NULL,
        args             jsonb NOT NULL,
        args_hash        text NOT NULL,
        read_only        boolean NOT NULL,
        policy           text NOT NULL,
        result           text,
        error            text,
        approved_by      text,
        reused_from      bigint REFERENCES tool_calls (id) ON DELETE SET NULL,
        created_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX tool_calls_same ON tool_calls (conversation_key, server, tool, args_hash, id);
    CREATE INDEX tool_calls_run ON tool_calls (conversation_key, run_id);
    """,
    # 15: the id of the run that made a turn, so what the run wrote elsewhere (a memory, in
    # LangGraph's store) is live exactly while the turn is on its conversation's live branch.
    """
    ALTER TABLE turns ADD COLUMN run_id text;
    CREATE INDEX turns_run ON turns (conversation_key, run_id) WHERE run_id IS NOT NULL;
    """,
    # 16: installations of a distributed app (one per workspace, or per org for an org-wide
    # install) and the OAuth states in flight (core/storage/installations.py).
    """
    CREATE TABLE installations (
        platform     text NOT NULL,
        enterprise   text NOT NULL DEFAULT '',
        workspace    text NOT NULL DEFAULT '',
        data         jsonb NOT NULL,
        installed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (platform, enterprise, workspace)
    );
    CREATE TABLE oauth_states (
        state      text PRIMARY KEY,
        platform   text NOT NULL,
        expires_at timestamptz NOT NULL
    );
    """,
)

_MIGRATION_LOCK = 0x6261636B  # "back": one advisory lock id for every process that migrates

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS backtrack_migrations (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def _try_lock(conn: psycopg.AsyncConnection[DictRow]) -> bool:
    row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_MIGRATION_LOCK,))).fetchone()
    return bool(row and row["ok"])


async def apply_migrations(pool: Pool, *extra_setups: Any, lock_url: str | None = None) -> int:
    """Apply pending migrations; returns how many ran.

    One session-level advisory lock serialises every process that starts at once, and
    also guards ``extra_setups`` (LangGraph's own ``setup()``, which is not safe to run
    concurrently on its own). The waiters poll with ``pg_try_advisory_lock`` rather than
    block in ``pg_advisory_lock``: a blocked statement holds a snapshot, and LangGraph's
    ``CREATE INDEX CONCURRENTLY`` waits for every older snapshot, which would deadlock.
    With ``lock_url`` (``BACKTRACK_LOCK_DATABASE_URL``) the lock is held on a direct
    connection of its own and the migrations run through the pool, one transaction each,
    so they work behind a transaction-mode pooler too.
    """
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(pool.connection())
        lock_conn = conn
        if lock_url:

            kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
            direct = await pool.connection_class.connect(lock_url, **kwargs)
            lock_conn = await stack.enter_async_context(direct)
        while not await _try_lock(lock_conn):  # noqa: ASYNC110 (polling another process)
            await asyncio.sleep(0.1)
        try:
            await conn.execute(_CREATE_VERSION_TABLE)
            row = await (
                await conn.execute("SELECT coalesce(max(version), 0) AS v FROM backtrack_migrations")
            ).fetchone()
            current = int(row["v"]) if row else 0
            for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO backtrack_migrations (version) VALUES (%s)", (version,)
                    )
                _log.info("applied migration %d", version)
            for setup in extra_setups:
                await setup()
            return len(MIGRATIONS) - current
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
