"""The conversation service: the one interface every adapter calls.

It owns the policy that all platforms share: which incoming messages are for the bot and
whether they were handled already (``intake``), one turn at a time per conversation
(``turns``, ``forks``), the turn tree behind ``history`` and ``rewind`` (``branches``), the
command table (``command_runner``), place settings (``places``) and retention
(``maintenance``). Each verb here is one line into the module that does the work.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from core.conversations.access import Access
from core.conversations.branches import MAX_HISTORY, Branches
from core.conversations.command_runner import run_command
from core.conversations.edits import Edits
from core.conversations.forks import Forks
from core.conversations.intake import Intake
from core.conversations.maintenance import Maintenance
from core.conversations.places import PlaceVerbs
from core.conversations.runner import GraphRunner
from core.conversations.steps import TurnReader, with_steps
from core.conversations.tools import ToolVerbs
from core.conversations.turns import TurnEngine
from core.conversations.viewer import Viewer
from core.errors import StorageUnavailable
from core.records import KEEP
from core.storage.approvals import ApprovalStore
from core.storage.conversations import ConversationStore
from core.storage.db import storage_errors
from core.storage.deliveries import Deliveries
from core.storage.feedback import FeedbackStore
from core.storage.files import FileStore
from core.storage.generations import Generations
from core.storage.installations import Installations
from core.storage.locks import ConversationLocks
from core.storage.messages import MessageAnswers
from core.storage.places import PlaceStore
from core.storage.retention import Retention
from core.storage.team_modes import TeamModes
from core.storage.tokens import TokenStore
from core.storage.tool_calls import ToolCalls
from core.storage.usage import UsageLedger
from core.storage.viewer import Inspector

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.graph.state import CompiledStateGraph

    from core.agents.mcp import Toolbox
    from core.conversations.maintenance import PruneReport
    from core.conversations.memory import PersonalMemory
    from core.keys import ThreadKey
    from core.records import (
        Approval,
        Audit,
        ConversationInfo,
        Keep,
        PlaceChoice,
        PlaceSetting,
        Turn,
    )
    from core.settings import Settings
    from core.storage.db import Pool
    from core.storage.usage import UsageReport
    from core.types import (
        Answer,
        Attachment,
        Command,
        Incoming,
        OnDecided,
        OnPartial,
        OnStatus,
        Received,
        RewindResult,
        Unread,
    )

__all__ = ["MAX_HISTORY", "ConversationService"]

_log = logging.getLogger(__name__)


class ConversationService:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        checkpointer: AsyncPostgresSaver,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        team: CompiledStateGraph[Any, Any, Any, Any] | None = None,
        toolbox: Toolbox | None = None,
        memory: PersonalMemory | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        store = self._store = ConversationStore(pool)
        deliveries = Deliveries(pool)
        approvals = self._approvals = ApprovalStore(pool)
        locks = self._locks = ConversationLocks(
            pool, timeout=settings.lock_timeout, connect_timeout=settings.db_timeout,
            conninfo=settings.lock_database_url,
        )
        runner = GraphRunner(graph, team)
        files = FileStore(pool)
        modes = self._modes = TeamModes(pool, settings.agent if team is not None else "single")
        places, usage = PlaceStore(pool, settings), UsageLedger(pool, settings)
        self._intake = Intake(store, deliveries, Generations(pool))
        self._turns = TurnEngine(
            settings, store, deliveries, approvals, locks, runner, self._intake.remember, files, modes,
            places, usage,
        )
        self._forks = Forks(self._turns, store, approvals, locks, runner, modes, places, usage, settings,
                            ToolCalls(pool))
        ratings = FeedbackStore(pool)
        self._branches = Branches(store, approvals, locks, checkpointer, self._turns, files, ratings)
        self._places = PlaceVerbs(places, usage, settings, tuple(toolbox.servers) if toolbox else ())
        self._tools = ToolVerbs(places, self._places, toolbox)
        self.memory = memory  # what is remembered about each person (core/conversations/memory.py)
        self.gestures = Edits(MessageAnswers(pool), deliveries, store, self._forks, self._branches, settings)
        self.installations = Installations(pool)  # a distributed app's workspaces (Slack OAuth)
        self._maintenance = Maintenance(settings, Retention(pool), files, locks, store, self.forget)
        self.access = Access(TokenStore(pool))  # scoped API tokens (core/conversations/access.py)
        self._steps = TurnReader(checkpointer, runner.window)
        self.viewer = Viewer(Inspector(pool), self._branches, self._steps, ToolCalls(pool))
        """The web viewer's read-only views (``core/conversations/viewer.py``)."""

    # -- what comes in ---------------------------------------------------------------

    async def receive(self, message: Incoming) -> Received | None:
        """Whether an incoming message is answered, and as what; None: stay silent.

        A message is answered when it is for the bot (addressed, or a follow-up in a
        conversation that exists) and this delivery is the first to claim its ids, on any
        instance (``core/conversations/intake.py``).
        """
        return await self._intake.receive(message)

    async def first_delivery(self, key: ThreadKey, *deliveries: tuple[str, str]) -> bool:
        """True the first time a platform event (a click, a slash command) is seen, across processes."""
        return await self._intake.claim(key, deliveries) is not None

    async def exists(self, key: ThreadKey) -> bool:
        """Whether the conversation has begun (adapters answer follow-ups only there)."""
        return await self._intake.exists(key)

    # -- turns -----------------------------------------------------------------------

    async def ask(
        self,
        key: ThreadKey,
        text: str,
        *,
        user: str | None = None,
        on_partial: OnPartial | None = None,
        event_id: str | None = None,
        on_status: OnStatus | None = None,
        files: Sequence[Attachment | Unread] = (),
        speaker: str | None = None,
    ) -> Answer:
        """Answer ``text``; ``on_partial`` sees the answer grow, ``on_status`` the tools it runs.

        ``files`` are what the message carried (downloaded, or why not): read within the
        caps, stored once, named in the question; the answer says which were not read.
        ``speaker`` is the asker's display name, for the model (``core/agents/speakers.py``);
        ``user`` (their platform id) stands in when there is none.
        """
        return await self._turns.ask(key, text, user, on_partial, event_id, on_status, files, speaker)

    async def ask_once(
        self, key: ThreadKey, text: str, *, request_id: str, user: str | None = None,
        files: Sequence[Attachment | Unread] = (),
    ) -> Answer:
        """``ask``, but a retry of the same request gets the first answer, not a second turn.

        For clients that retry after a timeout (the API's ``Idempotency-Key``). A request
        that failed may be retried for real; one still running is refused as busy.
        """
        return await self._turns.ask_once(key, text, request_id, user, files)

    async def resolve(
        self,
        key: ThreadKey,
        approval_id: int,
        approve: bool,
        *,
        user: str | None = None,
        on_partial: OnPartial | None = None,
        on_decided: OnDecided | None = None,
        on_status: OnStatus | None = None,
    ) -> Answer:
        """Approve or reject a paused tool call, then let the turn run to its end.

        ``on_decided`` is called once the decision is stored and before the turn goes on:
        an adapter shows the decision then, and knows that whatever fails afterwards
        (the model, say) fails after the decision, not instead of it. ``on_status`` sees
        the tools the rest of the turn runs, as in ``ask``.
        """
        return await self._turns.resolve(key, approval_id, approve, user, on_partial, on_decided, on_status)

    async def pending(self, key: ThreadKey) -> Approval | None:
        async with storage_errors():
            return await self._approvals.pending(key)

    async def replay(
        self, key: ThreadKey, checkpoint_id: str, *, user: str | None = None, text: str | None = None
    ) -> Answer:
        """Ask a past turn's question again (or ``text`` in its place: an edit) from where it
        was asked: a new version of that turn. The conversation continues on it; the original
        and everything after it stay stored, reachable by ``switch`` or ``rewind_to``.
        """
        return await self._forks.replay(key, checkpoint_id, user, text)

    async def turn_on_branch(self, key: ThreadKey, index: int) -> Turn:
        """Turn ``index`` of the live branch (``/edit 2 …`` names turns as ``/history`` numbers them)."""
        return await self._branches.turn_on_branch(key, index)

    async def versions(self, key: ThreadKey, checkpoint_id: str) -> list[Turn]:
        """The versions of a turn (its edits, retries and replays), oldest first ("2/3")."""
        return await self._branches.versions(key, checkpoint_id)

    async def switch(self, key: ThreadKey, checkpoint_id: str, *, user: str | None = None) -> RewindResult:
        """Continue on another version of a turn (and what was asked after it), audited like a rewind."""
        return await self._branches.switch(key, checkpoint_id, user)

    async def feedback(self, key: ThreadKey, checkpoint_id: str, user: str, value: str) -> bool:
        """Store a person's 👍 (``up``) or 👎 (``down``) on the turn that ended at ``checkpoint_id``.

        Idempotent per person and turn: True when the rating was stored or changed (and
        counted), False when it was already so (a double click, a retried delivery).
        """
        return await self._branches.rate(key, checkpoint_id, user, value)

    # -- the current conversation of a place -----------------------------------------

    async def current(self, key: ThreadKey) -> ThreadKey:
        """The conversation a place's messages belong to now (see ``core/storage/generations.py``).

        ``receive`` asks it for every message; adapters ask it for events that name only a
        place (a slash command, an approval click).
        """
        return await self._intake.current(key)

    async def start_new(self, key: ThreadKey, user: str | None) -> ThreadKey:
        """``/new``: the place's next conversation; the previous ones stay stored as they are."""
        return await self._intake.start_new(key, user)

    async def team(self, key: ThreadKey, on: bool | None = None, *, user: str | None = None) -> bool:
        """Whether the team answers this conversation; ``on`` chooses, for its next turns."""
        async with storage_errors():
            if on is not None:
                await self._modes.choose(key, on, user)
                self._intake.remember(key)
            return await self._modes.agent(key) == "team"

    # -- reading and moving the branch -----------------------------------------------

    async def history(self, key: ThreadKey, limit: int = 10) -> list[Turn]:
        """The last ``limit`` turns of the live branch, oldest first."""
        return await self._branches.history(key, limit)

    async def audit(self, key: ThreadKey, limit: int = MAX_HISTORY, *, steps: bool = False) -> Audit:
        """Every turn on every branch (oldest first, live ones marked) and every rewind.

        With ``steps``, the newest turns also say which agents ran and what they did.
        """
        audit = await self._branches.audit(key, limit)
        if not steps:
            return audit
        async with storage_errors():
            return await with_steps(self._steps, str(key), audit, partial(self._branches.turn_start, key))

    async def rewind(self, key: ThreadKey, steps: int = 1, *, user: str | None = None) -> RewindResult:
        """Move the head back ``steps`` turns; the abandoned turns stay stored."""
        return await self._branches.rewind(key, steps, user)

    async def rewind_to(self, key: ThreadKey, checkpoint_id: str, *, user: str | None = None) -> RewindResult:
        """Make the turn that ended at ``checkpoint_id`` the head, on any branch."""
        return await self._branches.rewind_to(key, checkpoint_id, user)

    async def threads(
        self,
        *,
        platform: str | None = None,
        place: str | None = None,
        user: str | None = None,
        limit: int = 20,
    ) -> list[ConversationInfo]:
        return await self._branches.conversations(platform, place, user, limit)

    async def forget(self, key: ThreadKey) -> None:
        """Delete a conversation with every checkpoint and row it has."""
        await self._branches.forget(key)
        self._intake.forget(key)

    async def run(self, key: ThreadKey, command: Command, user: str | None) -> str:
        """Run a command of the shared table and word its reply, the same on every platform."""
        return await run_command(self, key, command, user)

    async def place_command(self, key: ThreadKey, command: Command, user: str | None) -> str:
        """``/persona``, ``/model`` and ``/tools`` for ``key``'s place, with the admin check."""
        verbs = self._tools if command.name == "tools" else self._places
        return await verbs.command(key, command, user)

    # -- per-place settings and usage ----------------------------------------------

    async def place(self, place: str) -> tuple[PlaceSetting | None, PlaceChoice]:
        """A place's own settings (None: it has set nothing) and what its turns run with."""
        return await self._places.of(place)

    async def change_place(
        self, place: str, user: str | None, *,
        persona: str | Keep | None = KEEP, model: str | Keep | None = KEEP, servers: Any = KEEP,
    ) -> PlaceSetting:
        """Set or reset a place's persona, model, MCP servers, for callers that are trusted (the API)."""
        return await self._places.change(place, user, persona=persona, model=model, servers=servers)

    async def usage(self, key: ThreadKey, user: str | None) -> UsageReport:
        """``user``'s tokens (on this platform) and those of ``key``'s place, today and this month."""
        return await self._places.usage(key, user)

    # -- operations ------------------------------------------------------------------

    async def prune(self) -> PruneReport:
        """Apply the retention settings; safe to run from every instance at once."""
        return await self._maintenance.prune()

    def queued(self) -> int:
        """Messages waiting for their conversation's running turn (a metrics gauge)."""
        return self._locks.queued()

    async def drain(self, grace: float) -> bool:
        """Refuse new turns, wait up to ``grace`` seconds for running ones; True if all finished."""
        return await self._turns.drain(grace)

    async def close(self) -> None:
        await self._locks.close()

    async def healthy(self) -> bool:
        try:
            async with storage_errors():
                await self._store.ping()
            return True
        except StorageUnavailable:
            return False
