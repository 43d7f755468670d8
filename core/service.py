"""The conversation service: the one interface every adapter calls.

It owns the policy that all platforms share: cleaning input, one turn at a time per
conversation, what happens to a message that arrives mid-turn, turning storage and model
failures into typed errors, and the turn tree behind ``history`` and ``rewind``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from core import metrics
from core.approval_store import ApprovalStore
from core.approvals import describe_request
from core.commands import preview
from core.errors import (
    ApprovalPending,
    ConversationBusy,
    ConversationNotFound,
    InvalidInput,
    NotPermitted,
    RewindOutOfRange,
    ShuttingDown,
    StaleApproval,
    StorageUnavailable,
    TurnInterrupted,
)
from core.locks import ConversationLocks
from core.logs import log_context
from core.metrics import observe_turn
from core.retention import Retention
from core.runner import STORAGE_ERRORS, GraphRunner, RunResult
from core.settings import id_list
from core.store import ConversationStore, Head
from core.types import (
    Answer,
    Approval,
    BranchTurn,
    ConversationInfo,
    OnPartial,
    Rewind,
    RewindResult,
    Turn,
)

if TYPE_CHECKING:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.graph.state import CompiledStateGraph

    from core.db import Pool
    from core.keys import ThreadKey
    from core.settings import Settings

__all__ = ["MAX_HISTORY", "Audit", "ConversationService", "PruneReport", "clean_message"]

_log = logging.getLogger(__name__)

MAX_HISTORY = 200
_KNOWN_CONVERSATIONS = 10_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone halves (e.g. from JSON "\udcff") cannot be stored


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


def _still_waiting(pending: Approval) -> ApprovalPending:
    return ApprovalPending(
        f"{describe_request(pending.tool, pending.args)} That request is still waiting "
        "for a decision: approve or reject it first, then ask again."
    )


@asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    try:
        yield
    except STORAGE_ERRORS as exc:
        _log.warning("storage unavailable: %s", type(exc).__name__)
        raise StorageUnavailable() from exc


@dataclass(frozen=True, slots=True)
class Audit:
    turns: list[BranchTurn]
    rewinds: list[Rewind]


@dataclass
class PruneReport:
    conversations: int = 0
    checkpoints: int = 0
    events: int = 0


class ConversationService:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        checkpointer: AsyncPostgresSaver,
        graph: CompiledStateGraph[Any, Any, Any, Any],
    ) -> None:
        self.settings = settings
        self.store = ConversationStore(pool)
        self.approvals = ApprovalStore(pool)
        self.retention = Retention(pool)
        self.locks = ConversationLocks(
            pool, timeout=settings.lock_timeout, connect_timeout=settings.db_timeout
        )
        self._checkpointer = checkpointer
        self._runner = GraphRunner(graph, settings.model)
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._active: set[asyncio.Task[Any]] = set()
        self._draining = False
        self._known: OrderedDict[str, None] = OrderedDict()

    # -- turns -----------------------------------------------------------------------

    async def ask(
        self,
        key: ThreadKey,
        text: str,
        *,
        user: str | None = None,
        on_partial: OnPartial | None = None,
        event_id: str | None = None,
    ) -> Answer:
        turn_id = uuid.uuid4().hex[:12]
        with log_context(str(key), turn_id):
            async with observe_turn(key.platform), self._work():
                return await self._ask(key, text, turn_id, user, on_partial, event_id)

    async def _ask(
        self,
        key: ThreadKey,
        text: str,
        turn_id: str,
        user: str | None,
        on_partial: OnPartial | None,
        event_id: str | None,
    ) -> Answer:
        question = clean_message(text, self.settings.max_message_chars)
        policy = self.settings.busy_policy
        if policy == "interrupt" and (running := self._running.get(str(key))):
            running.cancel()
        async with storage_errors(), self.locks.hold(key, wait=policy != "reject"):
            task = asyncio.current_task()
            if task is not None:
                self._running[str(key)] = task
            try:
                return await self._turn(key, question, turn_id, user, on_partial, event_id)
            except asyncio.CancelledError:
                if task is not None and task.cancelling() and policy == "interrupt":
                    task.uncancel()
                    raise TurnInterrupted("Stopped: a newer message replaced this one.") from None
                raise
            finally:
                if self._running.get(str(key)) is task:
                    del self._running[str(key)]

    async def _turn(
        self,
        key: ThreadKey,
        question: str,
        turn_id: str,
        user: str | None,
        on_partial: OnPartial | None,
        event_id: str | None,
    ) -> Answer:
        started = time.perf_counter()
        start = await self.store.start_turn(key, question, user)
        self._remember(key)
        answer: Answer | None = None
        try:
            if start.approval_pending and (pending := await self.approvals.pending(key)):
                raise _still_waiting(pending)
            head = start.head
            if head is None or head.checkpoint_id is None:
                root = await self._runner.root(key)
                head = await self.store.begin_conversation(key, question[:80], user, root)
            assert head.checkpoint_id is not None
            metadata = {"user": user, "event_id": event_id, "turn_id": turn_id}
            result = await self._runner.ask(key, head.checkpoint_id, question, on_partial, metadata)
            answer = await self._finish(key, head, question, user, result)
        finally:
            if answer is None or answer.turn is None:  # a recorded turn cleared its mark itself
                await asyncio.shield(self._end_turn(key))
        _log.info("turn %s on %s done in %.0f ms", turn_id, key, (time.perf_counter() - started) * 1000)
        if abandoned := start.abandoned:
            notice = (
                f"(Your earlier message “{preview(abandoned, 60)}” was cut off by a restart;"
                " it was not answered.)"
            )
            return replace(answer, text=f"{notice}\n\n{answer.text}")
        return answer

    async def _finish(
        self,
        key: ThreadKey,
        head: Head,
        question: str,
        user: str | None,
        result: RunResult,
        replacing: int | Literal["head"] | None = "head",
    ) -> Answer:
        """Append a finished run as a turn after ``head``, or record the approval it paused for."""
        if result.pause is not None:
            tool, args = str(result.pause.get("tool")), dict(result.pause.get("args") or {})
            approval = await self.approvals.add(
                key, head, result.checkpoint_id, question, tool, args, user
            )
            await self._count_pending()
            return Answer(key=key, text=describe_request(tool, args), turn=None, approval=approval)
        assert result.answer is not None
        turn = await self.store.record_turn(
            key,
            head,
            replacing=replacing,
            user=user,
            checkpoint_id=result.checkpoint_id,
            question=question,
            answer=result.answer,
        )
        if turn is None:  # only if the cross-process lock was lost mid-turn
            raise ConversationBusy("The conversation moved on while answering; please ask again.")
        return Answer(key=key, text=result.answer, turn=turn)

    async def _end_turn(self, key: ThreadKey) -> None:
        try:
            await self.store.end_turn(key)
        except STORAGE_ERRORS:
            _log.warning("could not clear the in-flight mark of %s", key)

    # -- approvals -------------------------------------------------------------------

    async def resolve(
        self,
        key: ThreadKey,
        approval_id: int,
        approve: bool,
        *,
        user: str | None = None,
        on_partial: OnPartial | None = None,
    ) -> Answer:
        """Approve or reject a paused tool call, then let the turn run to its end."""
        turn_id = uuid.uuid4().hex[:12]
        with log_context(str(key), turn_id):
            async with observe_turn(key.platform), self._work(), storage_errors(), self.locks.hold(key):
                approval = await self.approvals.get(approval_id)
                if approval is None or approval.key != key:
                    raise StaleApproval("There is no such approval request in this conversation.")
                if approval.status != "pending":
                    who = f" by {approval.decided_by}" if approval.decided_by else ""
                    raise StaleApproval(f"That request was already {approval.status}{who}.")
                self._check_approver(approval, user)
                decided = await self.approvals.decide(approval_id, approve, user)
                if decided is None:
                    raise StaleApproval("That request was decided a moment ago by someone else.")
                await self._count_pending()
                head = await self.approvals.head_of(approval_id)
                decision = {"approved": approve, "by": user}
                metadata = {"user": user, "turn_id": turn_id, "approval_id": approval_id}
                result = await self._runner.resume(
                    key, approval.checkpoint_id, decision, on_partial, metadata
                )
                return await self._finish(key, head, approval.question, approval.requested_by, result)

    async def _count_pending(self) -> None:
        """The gauge counts every instance's pending requests: it is read from the database."""
        metrics.PENDING_APPROVALS.set(await self.approvals.count())

    async def pending(self, key: ThreadKey) -> Approval | None:
        async with storage_errors():
            return await self.approvals.pending(key)

    def _check_approver(self, approval: Approval, user: str | None) -> None:
        approvers = id_list(self.settings.approvers)
        if approvers:
            allowed = user is not None and user in approvers
        else:
            allowed = approval.requested_by is None or user == approval.requested_by
        if not allowed:
            raise NotPermitted("You are not allowed to approve or reject this request.")

    # -- reading and moving the branch -----------------------------------------------

    async def history(self, key: ThreadKey, limit: int = 10) -> list[Turn]:
        """The last ``limit`` turns of the live branch, oldest first."""
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidInput(f"history takes a limit between 1 and {MAX_HISTORY}")
        async with storage_errors():
            await self._head(key)
            return list(reversed(await self.store.branch(key, limit)))

    async def audit(self, key: ThreadKey, limit: int = MAX_HISTORY) -> Audit:
        """Every turn on every branch (oldest first, live ones marked) and every rewind."""
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidInput(f"history takes a limit between 1 and {MAX_HISTORY}")
        async with storage_errors():
            head = await self._head(key)
            live = {t.turn_id for t in await self.store.branch(key, max(head.seq, 1))}
            turns = [replace(b, live=b.turn.turn_id in live) for b in await self.store.all_turns(key, limit)]
            return Audit(turns=turns, rewinds=await self.store.rewinds(key, limit))

    async def replay(self, key: ThreadKey, checkpoint_id: str, *, user: str | None = None) -> Answer:
        """Ask a past turn's question again from where it was asked, as a new branch.

        The conversation continues on the new branch; the original turn and everything
        after it stay stored and reachable with ``rewind_to``.
        """
        turn_id = uuid.uuid4().hex[:12]
        with log_context(str(key), turn_id):
            async with observe_turn(key.platform), self._work(), storage_errors(), self.locks.hold(key):
                head = await self._head(key)
                if pending := await self.approvals.pending(key):
                    raise _still_waiting(pending)
                target = await self.store.turn_at(key, checkpoint_id)
                if target is None:
                    raise RewindOutOfRange("no turn of this conversation ends at that checkpoint")
                parent = await self.store.parent_of(target)
                start = (
                    Head(parent.turn_id, parent.index, parent.checkpoint_id)
                    if parent
                    else Head(None, 0, head.root_checkpoint_id)
                )
                assert start.checkpoint_id is not None
                metadata = {"user": user, "turn_id": turn_id, "replay_of": checkpoint_id}
                result = await self._runner.ask(key, start.checkpoint_id, target.question, None, metadata)
                answer = await self._finish(key, start, target.question, user, result, replacing=head.turn_id)
                await self.store.add_rewind(key, head.turn_id, start.turn_id, user)
                return answer

    async def rewind(self, key: ThreadKey, steps: int = 1, *, user: str | None = None) -> RewindResult:
        """Move the head back ``steps`` turns; the abandoned turns stay stored."""
        if steps < 1:
            raise RewindOutOfRange("rewind takes a number of turns of at least 1")
        async with storage_errors(), self.locks.hold(key):
            head = await self._head(key)
            if steps > head.seq:
                raise RewindOutOfRange(
                    f"cannot rewind {steps} turn{'s' if steps != 1 else ''}: this conversation "
                    f"has {head.seq} on its current branch"
                )
            chain = await self.store.branch(key, steps + 1)
            removed, rest = chain[:steps], chain[steps:]
            new_head = rest[0] if rest else None
            await self._move(key, head, new_head, user)
            return RewindResult(key=key, removed=list(reversed(removed)), head=new_head)

    async def rewind_to(
        self, key: ThreadKey, checkpoint_id: str, *, user: str | None = None
    ) -> RewindResult:
        """Make the turn that ended at ``checkpoint_id`` the head, on any branch."""
        async with storage_errors(), self.locks.hold(key):
            head = await self._head(key)
            target = await self.store.turn_at(key, checkpoint_id)
            if target is None:
                raise RewindOutOfRange("no turn of this conversation ends at that checkpoint")
            removed: list[Turn] = []
            if head.seq > target.index:
                chain = await self.store.branch(key, head.seq - target.index + 1)
                if chain[-1].turn_id == target.turn_id:
                    removed = list(reversed(chain[:-1]))
            await self._move(key, head, target, user)
            return RewindResult(key=key, removed=removed, head=target)

    async def _move(self, key: ThreadKey, head: Head, target: Turn | None, user: str | None) -> None:
        """Move the head; a paused request belongs to the branch left behind, so it is cancelled."""
        new = target.turn_id if target else None
        if not await self.store.move_head(key, head.turn_id, new, user):
            raise ConversationBusy("The conversation moved on meanwhile; please try again.")
        await self.approvals.cancel(key, user)
        await self._count_pending()

    async def _head(self, key: ThreadKey) -> Head:
        head = await self.store.head(key)
        if head is None:
            raise ConversationNotFound(f"there is no conversation {key} yet")
        return head

    # -- conversations ---------------------------------------------------------------

    async def threads(
        self,
        *,
        platform: str | None = None,
        place: str | None = None,
        user: str | None = None,
        limit: int = 20,
    ) -> list[ConversationInfo]:
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidInput(f"threads takes a limit between 1 and {MAX_HISTORY}")
        async with storage_errors():
            return await self.store.conversations(
                platform=platform, place=place, user=user, limit=limit
            )

    async def forget(self, key: ThreadKey) -> None:
        """Delete a conversation with every checkpoint and row it has."""
        async with storage_errors(), self.locks.hold(key):
            await self._head(key)
            await self._checkpointer.adelete_thread(str(key))
            await self.store.delete(key)
            self._known.pop(str(key), None)

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
            found = await self.store.head(key) is not None
        if found:
            self._remember(key)
        return found

    def _remember(self, key: ThreadKey) -> None:
        self._known[str(key)] = None
        self._known.move_to_end(str(key))
        if len(self._known) > _KNOWN_CONVERSATIONS:
            self._known.popitem(last=False)

    async def prune(self) -> PruneReport:
        """Apply the retention settings; safe to run from every instance at once."""
        report = PruneReport()
        settings = self.settings
        async with storage_errors():
            report.events = await self.retention.expire_events(settings.event_ttl_hours * 3600)
            if settings.retention_days is not None:
                for key in await self.retention.idle_conversations(settings.retention_days * 86400):
                    try:
                        await self.forget(key)
                        report.conversations += 1
                    except ConversationNotFound:
                        pass
            if settings.max_checkpoints is not None:
                for key in await self.retention.over_checkpoint_cap(settings.max_checkpoints):
                    async with self.locks.hold(key):
                        head = await self.store.head(key)
                        if head is not None and head.checkpoint_id is not None:
                            report.checkpoints += await self.retention.prune_checkpoints(
                                key, head.checkpoint_id, settings.max_checkpoints
                            )
        _log.info(
            "pruned %d conversations, %d checkpoints, %d event ids",
            report.conversations, report.checkpoints, report.events,
        )
        return report

    @asynccontextmanager
    async def _work(self) -> AsyncIterator[None]:
        """Count a turn as running, so ``drain`` can wait for it; refuse new ones while draining."""
        if self._draining:
            raise ShuttingDown()
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        try:
            yield
        finally:
            self._active.discard(task)

    async def drain(self, grace: float) -> bool:
        """Refuse new turns, wait up to ``grace`` seconds for running ones; True if all finished."""
        self._draining = True
        running = self._active - {asyncio.current_task()}
        if not running:
            return True
        _log.info("waiting for %d running turns", len(running))
        _, unfinished = await asyncio.wait(running, timeout=grace)
        if unfinished:
            _log.warning("%d turns did not finish within %.0f s; they are abandoned", len(unfinished), grace)
        return not unfinished

    async def close(self) -> None:
        await self.locks.close()

    async def ask_once(
        self, key: ThreadKey, text: str, *, request_id: str, user: str | None = None
    ) -> Answer:
        """``ask``, but a retry of the same request gets the first answer, not a second turn.

        For clients that retry after a timeout (the API's ``Idempotency-Key``). A request
        that failed may be retried for real; one still running is refused as busy.
        """
        event = f"request:{key}:{request_id}"
        if await self.claim_event(event):
            try:
                answer = await self.ask(key, text, user=user, event_id=event)
            except BaseException:
                with contextlib.suppress(*STORAGE_ERRORS):
                    await asyncio.shield(self.store.release_event(event))
                raise
            async with storage_errors():
                await self.store.settle_event(event, answer.checkpoint_id)
            return answer
        async with storage_errors():
            checkpoint = await self.store.event_result(event)
            turn = await self.store.turn_at(key, checkpoint) if checkpoint else None
        if turn is None:
            raise ConversationBusy("That request is still being answered; try again in a moment.")
        return Answer(key=key, text=turn.answer, turn=turn)

    async def claim_event(self, event_id: str) -> bool:
        """True the first time an inbound platform event is seen, across processes."""
        async with storage_errors():
            return await self.store.claim_event(event_id)

    async def healthy(self) -> bool:
        try:
            async with storage_errors():
                await self.store.ping()
            return True
        except StorageUnavailable:
            return False
