"""LangGraph's Postgres checkpointer, tuned for how the conversation service uses it.

Measured with ``make bench`` (docs/performance.md); each change keeps the stored format.

- No process-wide lock when given a pool. ``AsyncPostgresSaver`` wraps every database
  call in one ``asyncio.Lock`` so a single shared connection is never used by two
  coroutines at once; with a pool each call checks out its own connection, so the lock
  only serialises unrelated conversations (langgraph#7259). Per-conversation ordering
  is the conversation service's job.
- Shorter channel versions (``0000000042.9f3c21ab`` rather than a 32-digit counter and a
  16-digit float): every checkpoint row repeats each version two or three times, so this
  is a fifth of what a turn stores. They still sort by counter, older and longer versions
  sort below them, and the random suffix keeps two branches forked from one checkpoint
  from sharing a blob key.
- A smaller first page for the ``DeltaChannel`` ancestor walk: upstream reads up to
  1,024 checkpoint rows to find the nearest snapshot, which is never more than a couple
  of hundred rows back here (core/agents/agent.py snapshots every ``SNAPSHOT_EVERY`` updates).
- Each distinct stored message list is deserialised once per process: every turn
  reloads its conversation's snapshot and the writes since, the same bytes as the turn
  before, and rebuilding LangChain messages from them was most of a long conversation's
  turn time. A value is a pure function of its bytes, so the memo may answer for them.

The memo's one rule: **nothing it holds is ever handed out.** It keeps each message list
pickled, and every hit unpickles new objects, so a caller may edit what it got (LangGraph's
``add_messages`` itself assigns ids to stored messages that lack one) and the next read
still returns what is stored, as with the stock saver. Unpickling costs about half of
decoding and validating the messages again. Only lists of messages are memoised; every
other value (a counter's int, a flag, a dict) is returned exactly as decoded.
``tests/core/storage/test_checkpointer.py`` holds the memo to both, and
``tests/core/storage/test_conformance.py`` runs LangGraph's conformance suite on this saver.

**The turn-end cache.** Every turn starts from the checkpoint the previous turn ended
at, and its first three reads (the checkpoint, then the ``DeltaChannel``'s snapshot and
the writes since) rebuild a state this process had in hand a moment ago. So the process
that wrote a turn's last checkpoint keeps it: the tuple as it was stored (captured in
``aput``) and the message window the run ended with (``keep_window``, called by the
runner), pickled. A later read of exactly that checkpoint id is answered from memory; any
other id goes to the database. This is safe across processes without any invalidation
protocol, because what it keeps is immutable: a checkpoint's row, its ancestors and so
its rebuilt state never change once written. The one part that can change, writes later
stored *on* that checkpoint, drops the entry (``aput_writes``); another process's writes
on it are pending writes of a finished turn, which no run reads as state. "The newest
checkpoint" is answered from it only if the turn's start read that id (``LATEST``) under the lock.

**Writes travel with the next checkpoint.** In a run the runner marks (``BATCH``), a task's
writes are held and sent in the same pipeline as the thread's next checkpoint, before it: a
step costs one round trip, not two. The runner flushes what is held when the run ends (an
interrupt's writes) before reporting, every read flushes its thread first, and a process that
dies in between loses only writes of an abandoned run (turns start from the head, never from
a half-finished run).
"""

from __future__ import annotations

import json
import pickle
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import langgraph.checkpoint.postgres.aio as _pg_aio
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.types.json import Jsonb

from core.storage.db import Pool

__all__ = [
    "BATCH", "DELTA_PAGE_ROWS", "KEPT_BYTES", "LATEST", "MEMO_BYTES", "MemoSerializer", "PooledPostgresSaver",
]

BATCH = "batch_writes"
"""Configurable key: this run's writes may wait for its next checkpoint (module docstring)."""
LATEST = "latest_checkpoint_id"
"""Configurable key: the thread's newest root checkpoint id, read under the conversation's lock."""

DELTA_PAGE_ROWS = 256
MEMO_BYTES = 32 * 1024 * 1024
"""What the deserialisation memo may hold: each stored blob and its pickled copy."""
KEPT_BYTES = 32 * 1024 * 1024
"""What the turn-end cache may hold (one entry per conversation, its newest turn end)."""
_MESSAGES = "messages"
_INLINE = (str, int, float, bool)
"""Channel values the saver keeps in the checkpoint row itself (anything else is a blob)."""

if hasattr(_pg_aio, "_DELTA_PAGE_SIZE"):  # a private constant: if it goes, only speed suffers
    _pg_aio._DELTA_PAGE_SIZE = DELTA_PAGE_ROWS


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


def _messages(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(m, BaseMessage) for m in value)


class MemoSerializer(JsonPlusSerializer):
    """``JsonPlusSerializer`` that remembers the message lists it deserialised, by bytes.

    It keeps them pickled: bytes cannot be edited, so nothing a caller does to what it
    got can reach the memo, and every hit unpickles objects of the caller's own.
    """

    def __init__(self, max_bytes: int = MEMO_BYTES) -> None:
        super().__init__()
        self._max_bytes = max_bytes
        self._memo: OrderedDict[bytes, bytes] = OrderedDict()
        self._held = 0

    def __copy__(self) -> MemoSerializer:
        # with_msgpack_allowlist clones: a clone with other rules must not share results
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._memo, clone._held = OrderedDict(), 0
        return clone

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, blob = data
        if type_ != "msgpack":
            return super().loads_typed(data)
        key = bytes(blob)
        if (hit := self._memo.get(key)) is not None:
            self._memo.move_to_end(key)
            return pickle.loads(hit)  # our own bytes, made below: never a stored value
        value = super().loads_typed(data)
        inner = value.value if isinstance(value, _DeltaSnapshot) else value
        if _messages(inner) and len(key) <= self._max_bytes // 8:
            try:
                frozen = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except (pickle.PicklingError, TypeError, AttributeError):
                return value  # e.g. an artifact that cannot be pickled: just not memoised
            self._memo[key] = frozen
            self._held += len(key) + len(frozen)
            while self._held > self._max_bytes:
                old, gone = self._memo.popitem(last=False)
                self._held -= len(old) + len(gone)
        return value  # freshly decoded: the caller holds the only reference


@dataclass
class _Kept:
    checkpoint_id: str
    tuple_bytes: bytes = b""
    window: bytes | None = None
    written: tuple[RunnableConfig, Checkpoint, CheckpointMetadata, str | None] | None = None
    """What ``aput`` stored, turned into ``tuple_bytes`` only if the run ends there (most don't)."""

    @property
    def size(self) -> int:
        return len(self.tuple_bytes) + len(self.window or b"")


class PooledPostgresSaver(AsyncPostgresSaver):
    def __init__(self, pool: Pool) -> None:
        super().__init__(pool, serde=MemoSerializer())
        self.lock = _NoLock()  # type: ignore[assignment]
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._kept_bytes = 0
        self.kept_hits = 0
        self._held: dict[str, list[tuple[str, list[Any]]]] = {}
        """Per thread: writes statements waiting for the thread's next checkpoint."""

    # -- the turn-end cache ----------------------------------------------------------

    async def aput(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        serialisable = get_serializable_checkpoint_metadata(config, metadata)
        stored = await self._put(config, checkpoint, serialisable, new_versions)
        thread = str(stored["configurable"]["thread_id"])
        if stored["configurable"].get("checkpoint_ns", ""):
            return stored
        self._forget_kept(thread)
        values = checkpoint["channel_values"]
        if _MESSAGES in values or not all(v is None or isinstance(v, _INLINE) for v in values.values()):
            return stored  # a snapshot or a blob: not what a turn ends on; read it back instead
        written = (stored, checkpoint, serialisable, config["configurable"].get("checkpoint_id"))
        self._kept[thread] = _Kept(checkpoint["id"], written=written)
        return stored

    async def _put(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:  # ``metadata`` as stored (``get_serializable_checkpoint_metadata``)
        """Upstream's ``aput``, the held writes in front in its pipeline, no worker thread to serialise."""
        configurable = config["configurable"]
        thread, ns = str(configurable["thread_id"]), configurable["checkpoint_ns"]
        held = self._held.pop(thread, [])
        copy = checkpoint.copy()
        copy["channel_values"] = values = dict(checkpoint["channel_values"])
        blobs: dict[str, Any] = {}
        for name, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blobs[name], values[name] = value, True
            elif not (value is None or isinstance(value, _INLINE)):
                blobs[name] = values.pop(name)
        async with self._cursor(pipeline=True) as cur:
            for query, params in held:
                await cur.executemany(query, params)
            if versions := {k: v for k, v in new_versions.items() if k in blobs}:
                await cur.executemany(
                    self.UPSERT_CHECKPOINT_BLOBS_SQL, self._dump_blobs(thread, ns, blobs, versions)
                )
            await cur.execute(
                self.UPSERT_CHECKPOINTS_SQL,
                (thread, ns, checkpoint["id"], configurable.get("checkpoint_id"), Jsonb(copy),
                 Jsonb(metadata)),
            )
        return {"configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def _writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> tuple[str, list[Any]]:
        configurable = config["configurable"]
        query = (
            self.UPSERT_CHECKPOINT_WRITES_SQL if all(w[0] in WRITES_IDX_MAP for w in writes)
            else self.INSERT_CHECKPOINT_WRITES_SQL
        )
        params = self._dump_writes(
            configurable["thread_id"], configurable["checkpoint_ns"], configurable["checkpoint_id"],
            task_id, task_path, writes,
        )
        return query, params

    async def flush(self, thread: str) -> None:
        """Store the writes still held for ``thread`` (the runner calls it as a run ends)."""
        if held := self._held.pop(thread, None):
            async with self._cursor(pipeline=True) as cur:
                for query, params in held:
                    await cur.executemany(query, params)

    def discard(self, thread: str) -> None:
        """Drop what is held for a run that was cancelled: its branch is abandoned."""
        self._held.pop(thread, None)

    def _trim(self) -> None:
        while self._kept_bytes > KEPT_BYTES and self._kept:
            self._forget_kept(next(iter(self._kept)))  # the least recently used conversation

    def _forget_kept(self, thread: str) -> None:
        if (kept := self._kept.pop(thread, None)) is not None:
            self._kept_bytes -= kept.size

    def keep_window(self, config: RunnableConfig, messages: Sequence[BaseMessage]) -> None:
        """The message window at the checkpoint ``config`` names, as the run that wrote it ended."""
        thread = str(config["configurable"]["thread_id"])
        kept = self._kept.get(thread)
        if kept is None or kept.checkpoint_id != config["configurable"].get("checkpoint_id"):
            return
        self._kept_bytes -= kept.size
        if kept.written is not None:
            stored, checkpoint, metadata, parent = kept.written
            as_read = CheckpointTuple(
                config=stored,
                checkpoint=json.loads(json.dumps(checkpoint)),  # as the database hands it back
                metadata=json.loads(json.dumps(metadata)),
                parent_config=(
                    {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": parent}}
                    if parent else None
                ),
                pending_writes=[],
            )
            kept.tuple_bytes, kept.written = pickle.dumps(as_read, pickle.HIGHEST_PROTOCOL), None
        kept.window = pickle.dumps(list(messages), pickle.HIGHEST_PROTOCOL)
        self._kept_bytes += kept.size
        self._kept.move_to_end(thread)
        self._trim()

    def _hit(self, config: RunnableConfig) -> _Kept | None:
        configurable = config["configurable"]
        if configurable.get("checkpoint_ns", ""):
            return None
        kept = self._kept.get(str(configurable["thread_id"]))
        if kept is None or kept.window is None or kept.checkpoint_id != configurable.get("checkpoint_id"):
            return None
        return kept

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        thread = str(config["configurable"]["thread_id"])
        kept = self._kept.get(thread)
        if kept is not None and kept.checkpoint_id == config["configurable"].get("checkpoint_id"):
            self._forget_kept(thread)  # writes stored on it: the kept tuple no longer reads back as stored
        statement = self._writes(config, writes, task_id, task_path)
        if config["configurable"].get(BATCH):
            self._held.setdefault(thread, []).append(statement)
            return
        async with self._cursor(pipeline=True) as cur:
            await cur.executemany(*statement)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        thread = str(configurable["thread_id"])
        if not configurable.get("checkpoint_id") and not configurable.get("checkpoint_ns", ""):
            kept = self._kept.get(thread)
            if kept is not None and kept.checkpoint_id == configurable.get(LATEST):
                config = {**config, "configurable": {**configurable, "checkpoint_id": kept.checkpoint_id}}
        if (kept := self._hit(config)) is not None:
            self.kept_hits += 1
            found: CheckpointTuple = pickle.loads(kept.tuple_bytes)  # our own bytes, made above
            return found
        await self.flush(thread)
        return await super().aget_tuple(config)

    async def alist(self, config: RunnableConfig | None, **kwargs: Any) -> AsyncIterator[CheckpointTuple]:
        if config is not None:
            await self.flush(str(config["configurable"]["thread_id"]))
        async for found in super().alist(config, **kwargs):
            yield found

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        kept = self._hit(config)
        if kept is None or kept.window is None or list(channels) != [_MESSAGES]:
            await self.flush(str(config["configurable"]["thread_id"]))
            return await super().aget_delta_channel_history(config=config, channels=channels)
        return {_MESSAGES: {"writes": [], "seed": _DeltaSnapshot(pickle.loads(kept.window))}}

    async def adelete_thread(self, thread_id: str) -> None:
        self._forget_kept(str(thread_id))
        self.discard(str(thread_id))
        await super().adelete_thread(thread_id)

    def get_next_version(self, current: str | None, channel: None) -> str:
        counter = 0 if current is None else int(str(current).split(".")[0])
        return f"{counter + 1:010}.{random.getrandbits(32):08x}"


