"""Pruning (``BACKTRACK_MAX_CHECKPOINTS``) with team turns: sub-agent namespaces of the live branch stay."""

from __future__ import annotations

from collections.abc import Callable

from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from tests.core.agents.test_team import script_delegation
from tests.fakes.openai_server import FakeOpenAI

_ROWS = """
SELECT checkpoint_ns, count(*) AS n FROM checkpoints
WHERE thread_id = %s AND checkpoint_ns <> '' GROUP BY 1
"""


async def sub_rows(service: ConversationService, key: ThreadKey) -> dict[str, int]:
    """Checkpoints per sub-agent namespace ("researcher:<task id>")."""
    async with service.pool.connection() as conn:
        rows = await (await conn.execute(_ROWS, (str(key),))).fetchall()
    return {row["checkpoint_ns"]: row["n"] for row in rows}


async def test_pruning_keeps_every_namespace_of_the_live_branch(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("prune-team"))
    settings = make_settings(BACKTRACK_AGENT="team", BACKTRACK_MAX_CHECKPOINTS=10)
    async with open_service(settings, maintenance=False) as svc:
        script_delegation(fake_llm, answer="first answer")
        await svc.ask(key, "one")
        first = await sub_rows(svc, key)
        script_delegation(fake_llm, answer="abandoned answer")
        await svc.ask(key, "two")
        abandoned = {ns: n for ns, n in (await sub_rows(svc, key)).items() if ns not in first}
        await svc.rewind(key, 1)
        script_delegation(fake_llm, answer="third answer")
        await svc.ask(key, "three")
        before = await sub_rows(svc, key)
        live = {ns: n for ns, n in before.items() if ns not in abandoned}
        assert len(first) == 2 and len(abandoned) == 2 and len(live) == 4  # researcher + analyst per turn

        assert (await svc.prune()).checkpoints > 0
        after = await sub_rows(svc, key)
        assert {ns: after.get(ns, 0) for ns in live} == live  # every live sub-agent step kept
        assert not set(after) & set(abandoned)  # the abandoned team turn's steps are gone

        follow = await svc.ask(key, "four")
        assert follow.text == "heard: one | three | four"
        await svc.rewind(key, 2)  # back to the first team turn, whose root and namespaces were kept
        assert (await svc.ask(key, "five")).text == "heard: one | five"
        assert [t.question for t in await svc.history(key)] == ["one", "five"]
