"""The turn engine: one turn at a time per conversation, from lock to recorded answer.

Every way a turn runs (a question, a decided approval, a replay) shares one scope (a turn
id in the logs, the metrics, the drain count, storage errors as a typed error) and then
the same steps: hold the conversation's lock, start from an explicit checkpoint, run the
graph, record the result as a turn after the head it started from, or as the approval it
paused for. The branch-moving verbs live in ``core/conversations/branches.py``; both sit below the
service facade, which is all an adapter sees.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from core import metrics
from core.agents.approvals import describe_request
from core.agents.attachments import vision_on
from core.agents.speakers import speaker_name
from core.conversations.files import Prepared, prepare
from core.conversations.intake import clean_message
from core.conversations.runner import RunResult
from core.conversations.wording import preview
from core.errors import (
    ApprovalPending,
    ConversationBusy,
    NotPermitted,
    ShuttingDown,
    StaleApproval,
    TurnInterrupted,
)
from core.logs import log_context
from core.metrics import observe_turn
from core.records import Approval
from core.storage.conversations import Head, StartedTurn
from core.storage.db import STORAGE_ERRORS, storage_errors
from core.types import Answer, OnDecided, OnPartial, OnStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.conversations.runner import GraphRunner
    from core.keys import ThreadKey
    from core.records import PlaceChoice
    from core.settings import Settings
    from core.storage.approvals import ApprovalStore
    from core.storage.conversations import ConversationStore
    from core.storage.deliveries import Deliveries
    from core.storage.files import FileStore
    from core.storage.locks import ConversationLocks
    from core.storage.places import PlaceStore
    from core.storage.team_modes import TeamModes
    from core.storage.usage import UsageLedger
    from core.types import Attachment, Unread

__all__ = ["TurnEngine", "still_waiting"]

_log = logging.getLogger(__name__)


def still_waiting(pending: Approval) -> ApprovalPending:
    return ApprovalPending(
        f"{describe_request(pending.tool, pending.args)} That request is still waiting "
        "for a decision: approve or reject it first, then ask again."
    )


class TurnEngine:
    def __init__(
        self,
        settings: Settings,
        store: ConversationStore,
        deliveries: Deliveries,
        approvals: ApprovalStore,
        locks: ConversationLocks,
        runner: GraphRunner,
        on_turn: Callable[[ThreadKey], None],
        files: FileStore,
        modes: TeamModes,
        places: PlaceStore,
        usage: UsageLedger,
    ) -> None:
        self._settings = settings
        self._store = store
        self._deliveries = deliveries
        self._approvals = approvals
        self._locks = locks
        self._runner = runner
        self._on_turn = on_turn
        self._files = files
        self._modes = modes
        self._places = places
        self._usage = usage
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._told: dict[str, str] = {}
        """Per conversation: a question whose start failed on storage, as its asker was told."""
        self._active: set[asyncio.Task[Any]] = set()
        self._draining = False

    @asynccontextmanager
    async def scope(self, key: ThreadKey) -> AsyncIterator[str]:
        """What every turn shares: its id on every log line, metrics, the drain count."""
        turn_id = uuid.uuid4().hex[:12]
        task = asyncio.current_task()
        assert task is not None
        with log_context(str(key), turn_id):
            async with observe_turn(key.platform):
                if self._draining:
                    raise ShuttingDown()
                self._active.add(task)
                try:
                    async with storage_errors():
                        yield turn_id
                finally:
                    self._active.discard(task)

    # -- a question ------------------------------------------------------------------

    async def ask(
        self, key: ThreadKey, text: str, user: str | None, on_partial: OnPartial | None, event_id: str | None,
        on_status: OnStatus | None = None, files: Sequence[Attachment | Unread] = (),
        speaker: str | None = None,
    ) -> Answer:
        async with self.scope(key) as turn_id:
            text = clean_message(text, self._settings.max_message_chars) if text.strip() or not files else ""
            prepared = await prepare(files, self._settings)  # a message with files may have no text
            await self._usage.check(key, user)  # before the turn is marked: a refusal changes nothing
            policy = self._settings.busy_policy
            if policy == "interrupt" and (running := self._running.get(str(key))):
                running.cancel()
            question = prepared.question(text)
            held = False
            try:
                async with self._locks.hold(
                    key, wait=policy != "reject", acquire=self._store.start_turn(key, question, user)
                ) as row:
                    held = True
                    return await self._hold_turn(
                        key, text, prepared, turn_id, user, on_partial, event_id, on_status, speaker,
                        self._store.started(row), policy,
                    )
            except STORAGE_ERRORS:
                if not held:  # the start may have reached the server before the path failed
                    self._told[str(key)] = question
                raise

    async def _hold_turn(
        self, key: ThreadKey, text: str, prepared: Prepared, turn_id: str, user: str | None,
        on_partial: OnPartial | None, event_id: str | None, on_status: OnStatus | None,
        speaker: str | None, start: StartedTurn, policy: str,
    ) -> Answer:
        """Run the question as the conversation's running task (which ``interrupt`` may cancel)."""
        task = asyncio.current_task()
        assert task is not None
        self._running[str(key)] = task
        try:
            return await self._question(
                key, text, prepared, turn_id, user, on_partial, event_id, on_status, speaker, start
            )
        except asyncio.CancelledError:
            if task.cancelling() and policy == "interrupt":
                task.uncancel()
                raise TurnInterrupted("Stopped: a newer message replaced this one.") from None
            raise
        finally:
            if self._running.get(str(key)) is task:
                del self._running[str(key)]

    async def _question(
        self, key: ThreadKey, text: str, prepared: Prepared, turn_id: str, user: str | None,
        on_partial: OnPartial | None, event_id: str | None, on_status: OnStatus | None,
        speaker: str | None, start: StartedTurn,
    ) -> Answer:
        """The turn itself, once ``start`` took the lock and marked it in flight."""
        started = time.perf_counter()
        self._on_turn(key)
        answer: Answer | None = None
        try:
            if start.approval_pending and (pending := await self._approvals.pending(key)):
                raise still_waiting(pending)
            place = self._places.of(start.places, key.scopes)
            prepared = prepared.for_model(vision_on(self._settings, place.model))  # the place's model
            question = prepared.question(text)
            head = start.head
            if head is None or head.checkpoint_id is None:
                root = await self._runner.root(key)
                head = await self._store.begin_conversation(key, question[:80], user, root)
            assert head.checkpoint_id is not None
            await self._files.store(key, prepared.stored)
            metadata = {"user": user, "event_id": event_id, "turn_id": turn_id}
            agent = self._modes.of(start.team)
            result = await self._runner.ask(
                key, head.checkpoint_id, question, on_partial, metadata, on_status, place,
                speaker_name(speaker, user), prepared.refs, agent, start.latest,
            )
            answer = await self.record(key, head, question, user, result, place, agent)
        finally:
            if answer is None or answer.turn is None:  # a recorded turn cleared its mark itself
                await asyncio.shield(self._end_turn(key))
        _log.info("turn %s on %s done in %.0f ms", turn_id, key, (time.perf_counter() - started) * 1000)
        if prepared.notes:  # after the answer, so a streamed answer only grows
            answer = replace(answer, text=answer.text + "\n\n" + "\n".join(prepared.notes))
        told = self._told.pop(str(key), None)
        if (abandoned := start.abandoned) and abandoned != told:  # not one the asker was told failed
            notice = f"(Your earlier message “{preview(abandoned, 60)}” was cut off by a restart or an"
            return replace(answer, text=f"{notice} outage; it was not answered.)\n\n{answer.text}")
        return answer

    async def _end_turn(self, key: ThreadKey) -> None:
        try:
            await self._store.end_turn(key)
        except STORAGE_ERRORS:
            _log.warning("could not clear the in-flight mark of %s", key)

    async def ask_once(
        self, key: ThreadKey, text: str, request_id: str, user: str | None,
        files: Sequence[Attachment | Unread] = (),
    ) -> Answer:
        event = f"request:{key}:{request_id}"
        async with self._deliveries.once(event) as first:
            if first:
                answer = await self.ask(key, text, user, None, event, None, files)
        if first:
            async with storage_errors():
                await self._deliveries.settle(event, answer.checkpoint_id)
            return answer
        async with storage_errors():
            checkpoint = await self._deliveries.result(event)
            turn = await self._store.turn_at(key, checkpoint) if checkpoint else None
        if turn is None:
            raise ConversationBusy("That request is still being answered; try again in a moment.")
        return Answer(key=key, text=turn.answer, turn=turn)

    # -- an approval decision ------------------------------------------------------------

    async def resolve(
        self,
        key: ThreadKey,
        approval_id: int,
        approve: bool,
        user: str | None,
        on_partial: OnPartial | None,
        on_decided: OnDecided | None,
        on_status: OnStatus | None = None,
    ) -> Answer:
        async with self.scope(key) as turn_id, self._locks.hold(key):
            approval = await self._approvals.get(approval_id)
            if approval is None or approval.key != key:
                raise StaleApproval("There is no such approval request in this conversation.")
            if approval.status != "pending":
                who = f" by {approval.decided_by}" if approval.decided_by else ""
                raise StaleApproval(f"That request was already {approval.status}{who}.")
            self._check_approver(approval, user)
            decided = await self._approvals.decide(approval_id, approve, user)
            if decided is None:
                raise StaleApproval("That request was decided a moment ago by someone else.")
            await self.count_pending()
            if on_decided is not None:
                await on_decided(decided)
            if approve and on_status is not None:  # the approved tool is what runs first
                await on_status(approval.tool)
            head = await self._approvals.head_of(approval_id)
            decision = {"approved": approve, "by": user}
            metadata = {"user": user, "turn_id": turn_id, "approval_id": approval_id}
            place = await self._places.choose(key.scopes)
            result = await self._runner.resume(
                key, approval.checkpoint_id, decision, on_partial, metadata, on_status, place, approval.agent
            )
            return await self.record(
                key, head, approval.question, approval.requested_by, result, place, approval.agent
            )

    def _check_approver(self, approval: Approval, user: str | None) -> None:
        approvers = self._settings.approvers
        if approvers:
            allowed = user is not None and user in approvers
        else:
            allowed = approval.requested_by is None or user == approval.requested_by
        if not allowed:
            raise NotPermitted("You are not allowed to approve or reject this request.")

    async def count_pending(self) -> None:
        """The gauge counts every instance's pending requests: it is read from the database."""
        metrics.PENDING_APPROVALS.set(await self._approvals.count())

    # -- shared steps ----------------------------------------------------------------

    async def record(
        self,
        key: ThreadKey,
        head: Head,
        question: str,
        user: str | None,
        result: RunResult,
        place: PlaceChoice,
        agent: str,
        replacing: int | Literal["head"] | None = "head",
    ) -> Answer:
        """Append a finished run as a turn after ``head``, or record the approval it paused for.

        Its tokens count for ``user`` (the asker, also when someone else approved); a pause
        keeps the ``agent`` that paused, which the decision resumes.
        """
        if result.pause is not None:
            tool, args = str(result.pause.get("tool")), dict(result.pause.get("args") or {})
            approval = await self._approvals.add(
                key, head, result.checkpoint_id, question, tool, args, user, agent
            )
            await self._usage.record(key, user, place.model, result.usage)
            await self.count_pending()
            return Answer(key, describe_request(tool, args, result.pause.get("note")), None, approval)
        assert result.answer is not None
        turn = await self._store.record_turn(
            key,
            head,
            replacing=replacing,
            user=user,
            checkpoint_id=result.checkpoint_id,
            question=question,
            answer=result.answer,
            tokens=self._usage.counted(key, user, place.model, result.usage), run_id=result.run_id,
        )
        if turn is None:  # only if the cross-process lock was lost mid-turn
            raise ConversationBusy("The conversation moved on while answering; please ask again.")
        return Answer(key=key, text=result.answer, turn=turn)

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
