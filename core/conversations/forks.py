"""Asking again from an earlier point of a conversation, as a new branch: a replay or an edit.

A fork starts from the checkpoint where the earlier turn started, so the model sees the
conversation as it was then and nothing after it; the turn it forks from and everything
after it stay stored, reachable with ``rewind_to`` (or by switching versions). A replay
asks the same question again ("try again"), an edit asks a new text in its place; either
way the new turn is another version of that turn. Moving the head to the new branch is
recorded like a rewind, with who and when.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from core.conversations.intake import clean_message
from core.conversations.turns import still_waiting
from core.errors import RewindOutOfRange
from core.storage.conversations import Head

if TYPE_CHECKING:
    from core.conversations.runner import GraphRunner, RunResult
    from core.conversations.turns import TurnEngine
    from core.keys import ThreadKey
    from core.settings import Settings
    from core.storage.approvals import ApprovalStore
    from core.storage.conversations import ConversationStore
    from core.storage.locks import ConversationLocks
    from core.storage.places import PlaceStore
    from core.storage.team_modes import TeamModes
    from core.storage.tool_calls import ToolCalls
    from core.storage.usage import UsageLedger
    from core.types import Answer

__all__ = ["Forks"]


class Forks:
    def __init__(
        self,
        engine: TurnEngine,
        store: ConversationStore,
        approvals: ApprovalStore,
        locks: ConversationLocks,
        runner: GraphRunner,
        modes: TeamModes,
        places: PlaceStore,
        usage: UsageLedger,
        settings: Settings,
        calls: ToolCalls,
    ) -> None:
        self._settings = settings
        self._calls = calls
        self._engine = engine
        self._store = store
        self._approvals = approvals
        self._locks = locks
        self._runner = runner
        self._modes = modes
        self._places = places
        self._usage = usage

    async def replay(
        self, key: ThreadKey, checkpoint_id: str, user: str | None, text: str | None = None
    ) -> Answer:
        """The question of the turn that ended at ``checkpoint_id`` (or ``text`` in its place),
        asked again from where it was asked."""
        edited = None if text is None else clean_message(text, self._settings.max_message_chars)
        async with self._engine.scope(key) as turn_id, self._locks.hold(key):
            await self._usage.check(key, user)
            current = await self._store.existing_head(key)
            if pending := await self._approvals.pending(key):
                raise still_waiting(pending)
            target = await self._store.turn_at(key, checkpoint_id)
            if target is None:
                raise RewindOutOfRange("no turn of this conversation ends at that checkpoint")
            parent = await self._store.parent_of(target)
            start = (
                Head(parent.turn_id, parent.index, parent.checkpoint_id)
                if parent
                else Head(None, 0, current.root_checkpoint_id)
            )
            assert start.checkpoint_id is not None
            metadata: dict[str, Any] = {"user": user, "turn_id": turn_id, "replay_of": checkpoint_id}
            metadata["edited"] = edited is not None
            files, speaker = await self._runner.asked_at(key, checkpoint_id)  # the same files and name
            question = target.question if edited is None else edited
            agent = await self._modes.agent(key)
            place = await self._places.choose(key.scopes)
            result = await self._runner.ask(
                key, start.checkpoint_id, question, None, metadata, None, place, speaker, files, agent,
            )
            result = await self._noting_reuse(key, turn_id, result)
            answer = await self._engine.record(
                key, start, question, user, result, place, agent, replacing=current.turn_id
            )
            await self._store.add_rewind(key, current.turn_id, start.turn_id, user)
            if answer.turn is None:  # paused for an approval: no version yet
                return answer
            count = len(await self._store.versions(key, answer.turn))  # the new one is the newest
            return replace(answer, turn=replace(answer.turn, version=count, versions=count))

    async def _noting_reuse(self, key: ThreadKey, turn_id: str, result: RunResult) -> RunResult:
        """A replay that reused recorded tool results (not repeating their side effects) says so."""
        reused = [c for c in await self._calls.of_run(str(key), turn_id) if c.reused_from is not None]
        if not reused or result.answer is None:
            return result
        names = ", ".join(sorted({f"{c.tool} ({c.server})" for c in reused}))
        note = (f"\n\n\u21ba Replayed without repeating side effects: the recorded result of {names} "
                "was used; the tool was not called again.")
        return replace(result, answer=result.answer + note)
