"""Reading and moving a conversation's branch: history, the audit view, rewinds, ratings, deletion.

A rewind only moves the head pointer (a compare-and-set) and records who moved it; the
turns it leaves behind stay stored, readable in the audit view and reachable again with
``rewind_to``. Nothing here runs the model: replays run through the turn engine.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from core.errors import ConversationBusy, ConversationNotFound, InvalidInput, RewindOutOfRange
from core.metrics import FEEDBACK
from core.records import Audit, ConversationTree, Turn
from core.storage.db import storage_errors
from core.types import RewindResult

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from core.conversations.turns import TurnEngine
    from core.keys import ThreadKey
    from core.records import ConversationInfo
    from core.storage.approvals import ApprovalStore
    from core.storage.conversations import ConversationStore, Head
    from core.storage.feedback import FeedbackStore
    from core.storage.files import FileStore
    from core.storage.locks import ConversationLocks
    from core.storage.viewer import Inspector

__all__ = ["MAX_HISTORY", "Branches", "check_limit"]

MAX_HISTORY = 200


def check_limit(limit: int, verb: str) -> None:
    if not 1 <= limit <= MAX_HISTORY:
        raise InvalidInput(f"{verb} takes a limit between 1 and {MAX_HISTORY}")


class Branches:
    def __init__(
        self,
        store: ConversationStore,
        approvals: ApprovalStore,
        locks: ConversationLocks,
        checkpointer: BaseCheckpointSaver[str],
        engine: TurnEngine,
        files: FileStore,
        feedback: FeedbackStore,
    ) -> None:
        self._store = store
        self._approvals = approvals
        self._locks = locks
        self._checkpointer = checkpointer
        self._engine = engine
        self._files = files
        self._feedback = feedback

    async def history(self, key: ThreadKey, limit: int) -> list[Turn]:
        check_limit(limit, "history")
        async with storage_errors():
            await self._store.existing_head(key)
            return list(reversed(await self._store.branch(key, limit)))

    async def audit(self, key: ThreadKey, limit: int) -> Audit:
        check_limit(limit, "history")
        async with storage_errors():
            head = await self._store.existing_head(key)
            live = {t.turn_id for t in await self._store.branch(key, max(head.seq, 1))}
            turns = [replace(b, live=b.turn.turn_id in live) for b in await self._store.all_turns(key, limit)]
            return Audit(turns=turns, rewinds=await self._store.rewinds(key, limit))

    async def tree(
        self, key: ThreadKey, inspector: Inspector, before: int | None, limit: int
    ) -> ConversationTree:
        head = await self._store.existing_head(key)
        turns, more = await inspector.turns(key, before, limit)
        return ConversationTree(
            key=key,
            title=await inspector.title(key),
            head_checkpoint_id=head.checkpoint_id if head.turn_id is not None else None,
            turns=turns,
            more=more,
            rewinds=await self._store.rewinds(key, MAX_HISTORY),
            pending=await self._approvals.pending(key),
        )

    async def turn_start(self, key: ThreadKey, checkpoint_id: str) -> str | None:
        """Where the turn (or the paused request) ending at ``checkpoint_id`` started from."""
        head = await self._store.existing_head(key)
        turn = await self._store.turn_at(key, checkpoint_id)
        if turn is not None:
            parent = await self._store.parent_of(turn)
            return parent.checkpoint_id if parent else head.root_checkpoint_id
        pending = await self._approvals.pending(key)
        if pending is not None and pending.checkpoint_id == checkpoint_id:
            return (await self._approvals.head_of(pending.id)).checkpoint_id
        raise RewindOutOfRange("no turn of this conversation ends at that checkpoint")

    async def rewind(self, key: ThreadKey, steps: int, user: str | None) -> RewindResult:
        if steps < 1:
            raise RewindOutOfRange("rewind takes a number of turns of at least 1")
        async with storage_errors(), self._locks.hold(key):
            head = await self._store.existing_head(key)
            if steps > head.seq:
                raise RewindOutOfRange(
                    f"cannot rewind {steps} turn{'s' if steps != 1 else ''}: this conversation "
                    f"has {head.seq} on its current branch"
                )
            chain = await self._store.branch(key, steps + 1)
            removed, rest = chain[:steps], chain[steps:]
            new_head = rest[0] if rest else None
            await self._move(key, head, new_head, user)
            return RewindResult(key=key, removed=list(reversed(removed)), head=new_head)

    async def rewind_to(self, key: ThreadKey, checkpoint_id: str, user: str | None) -> RewindResult:
        async with storage_errors(), self._locks.hold(key):
            head = await self._store.existing_head(key)
            target = await self._store.turn_at(key, checkpoint_id)
            if target is None:
                raise RewindOutOfRange("no turn of this conversation ends at that checkpoint")
            removed: list[Turn] = []
            if head.seq > target.index:
                chain = await self._store.branch(key, head.seq - target.index + 1)
                if chain[-1].turn_id == target.turn_id:
                    removed = list(reversed(chain[:-1]))
            await self._move(key, head, target, user)
            return RewindResult(key=key, removed=removed, head=target)

    async def turn_on_branch(self, key: ThreadKey, index: int) -> Turn:
        """Turn ``index`` (from 1) of the live branch, as ``/history`` numbers it."""
        async with storage_errors():
            head = await self._store.existing_head(key)
            if not 1 <= index <= head.seq:
                raise RewindOutOfRange(
                    f"there is no turn {index} on the current branch (it has {head.seq})"
                    if head.seq else "this conversation has no turns on its current branch yet"
                )
            return (await self._store.branch(key, head.seq - index + 1))[-1]

    async def versions(self, key: ThreadKey, checkpoint_id: str) -> list[Turn]:
        """The versions of the turn that ended at ``checkpoint_id``, oldest first."""
        async with storage_errors():
            await self._store.existing_head(key)
            turn = await self._store.turn_at(key, checkpoint_id)
            if turn is None:
                raise RewindOutOfRange("no turn of this conversation ends at that checkpoint")
            return await self._store.versions(key, turn)

    async def switch(self, key: ThreadKey, checkpoint_id: str, user: str | None) -> RewindResult:
        """Continue on the version that ended at ``checkpoint_id``: the head moves to the end of
        its branch that grew last (the turns asked after it, if any), recorded like a rewind."""
        async with storage_errors():
            turn = await self._store.turn_at(key, checkpoint_id)
            if turn is None:
                raise RewindOutOfRange("no turn of this conversation ends at that checkpoint")
            leaf = await self._store.newest_leaf(turn)
        return await self.rewind_to(key, leaf.checkpoint_id, user)

    async def _move(self, key: ThreadKey, head: Head, target: Turn | None, user: str | None) -> None:
        """Move the head; a paused request belongs to the branch left behind, so it is cancelled."""
        new = target.turn_id if target else None
        if not await self._store.move_head(key, head.turn_id, new, user):
            raise ConversationBusy("The conversation moved on meanwhile; please try again.")
        await self._approvals.cancel(key, user)
        await self._engine.count_pending()

    async def conversations(
        self, platform: str | None, place: str | None, user: str | None, limit: int
    ) -> list[ConversationInfo]:
        check_limit(limit, "threads")
        async with storage_errors():
            return await self._store.conversations(platform=platform, place=place, user=user, limit=limit)

    async def forget(self, key: ThreadKey) -> None:
        async with storage_errors(), self._locks.hold(key):
            await self._store.existing_head(key)
            await self._checkpointer.adelete_thread(str(key))
            await self._store.delete(key)
            await self._files.forget(key)

    async def rate(self, key: ThreadKey, checkpoint_id: str, user: str, value: str) -> bool:
        """One rating per person and turn; True when it was stored or changed (and counted)."""
        async with storage_errors():
            changed = await self._feedback.record(key, checkpoint_id, user, value)
        if changed is None:
            raise ConversationNotFound("that answer is not a turn of this conversation any more")
        if changed:
            FEEDBACK.labels(platform=key.platform, value=value).inc()
        return changed
