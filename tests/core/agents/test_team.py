"""Team mode: the coordinator delegates to the researcher and the analyst, every step a checkpoint."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.agents.team import team_limit_notice
from core.conversations.service import ConversationService
from core.errors import InvalidInput
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from core.types import Command
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall
from tests.faults.cluster import ask, matrix_env
from tests.processes import BacktrackProcess

_NAMESPACES = """
SELECT split_part(checkpoint_ns, ':', 1) AS agent, count(*) AS n FROM checkpoints
WHERE thread_id = %s GROUP BY 1
"""


@pytest.fixture
async def team(make_settings: Callable[..., Settings]) -> AsyncIterator[ConversationService]:
    async with open_service(make_settings(BACKTRACK_AGENT="team")) as service:
        yield service


async def checkpoints_by_agent(service: ConversationService, key: ThreadKey) -> dict[str, int]:
    async with service.pool.connection() as conn:
        rows = await (await conn.execute(_NAMESPACES, (str(key),))).fetchall()
    return {row["agent"]: row["n"] for row in rows}


def script_delegation(fake_llm: FakeOpenAI, answer: str = "Paris, with 2.1 million people [paris.fr].") -> None:
    """A turn that uses the whole team: research (one search), analysis (one sum), the answer."""
    fake_llm.queue_for("coordinator", ToolCall("research", {"task": "find the capital of France"}),
                       ToolCall("analyse", {"task": "double its population"}), Reply(answer))
    fake_llm.queue_for("researcher", ToolCall("web_search", {"query": "capital of France"}),
                       Reply("Paris is the capital (source: paris.fr)."))
    fake_llm.queue_for("analyst", ToolCall("calculator", {"expression": "2.1 * 2"}), Reply("Doubled: 4.2."))


def roles_sent(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], str(m.get("content") or "")) for m in request["messages"]]


async def test_a_delegated_turn_checkpoints_every_agent_in_its_namespace(
    team: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("team"))
    script_delegation(fake_llm)
    statuses: list[str | None] = []

    async def on_status(status: str | None) -> None:
        statuses.append(status)

    answer = await team.ask(key, "What is the capital of France?", on_status=on_status)
    assert answer.text == "Paris, with 2.1 million people [paris.fr]."
    # what the adapters show: researching…, its search, analysing…, its sum, then the answer
    assert statuses == ["research", "web_search", "research", None, "analyse", "calculator", "analyse", None]

    counts = await checkpoints_by_agent(team, key)
    assert set(counts) == {"", "researcher", "analyst"}  # each agent's steps under its own name
    assert counts["researcher"] >= 3 and counts["analyst"] >= 3  # model, tool, model: each a checkpoint

    researcher = fake_llm.requests_of("researcher")
    assert "find the capital of France" in roles_sent(researcher[0])[1][1]
    assert ("tool", "The capital of France is Paris.") in roles_sent(researcher[-1])  # the real search ran
    analyst = fake_llm.requests_of("analyst")
    assert "Paris is the capital (source: paris.fr)." in roles_sent(analyst[0])[1][1]  # it got the findings
    assert ("tool", "2.1 * 2 = 4.2") in roles_sent(analyst[-1])

    final = roles_sent(fake_llm.requests_of("coordinator")[-1])
    tool_results = [text for role, text in final if role == "tool"]
    assert tool_results == ["Paris is the capital (source: paris.fr).", "Doubled: 4.2."]  # reports only
    assert [t.question for t in await team.history(key)] == ["What is the capital of France?"]


async def test_a_follow_up_sees_the_team_answer_and_a_rewound_team_turn_is_gone(
    team: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("follow"))
    await team.ask(key, "first")
    script_delegation(fake_llm, answer="The team says Paris.")
    await team.ask(key, "capital?")
    follow = await team.ask(key, "and its river?")
    assert follow.text == "heard: first | capital? | and its river?"
    sent = roles_sent(fake_llm.requests_of("coordinator")[-1])
    assert ("assistant", "The team says Paris.") in sent
    assert ("tool", "Doubled: 4.2.") in sent  # the delegation results stay in the conversation

    await team.rewind(key, 2)
    after = await team.ask(key, "something else")
    assert after.text == "heard: first | something else"
    sent = roles_sent(fake_llm.requests_of("coordinator")[-1])
    assert all("Paris" not in text and "4.2" not in text for _, text in sent)
    assert [t.question for t in await team.history(key)] == ["first", "something else"]


async def test_team_mode_is_chosen_per_conversation_and_both_modes_share_it(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("switch"))
    async with open_service(make_settings()) as service:  # BACKTRACK_AGENT=single by default
        assert "off here" in await service.run(key, Command("team"), None)
        assert "Team mode is on" in await service.run(key, Command("team", "on"), "ada")
        script_delegation(fake_llm, answer="Team: Paris.")
        assert (await service.ask(key, "capital?")).text == "Team: Paris."
        assert "Team mode is off" in await service.run(key, Command("team", "off"), "ada")
        asked = len(fake_llm.requests_of("coordinator"))
        single = await service.ask(key, "and then?")
        assert single.text == "heard: capital? | and then?"  # the single agent sees the team's turn
        assert len(fake_llm.requests_of("coordinator")) == asked
        with pytest.raises(InvalidInput, match="on or off"):
            await service.run(key, Command("team", "maybe"), None)
        assert not await service.team(key)
        assert [c.title for c in await service.threads(place=key.place) if c.key == key] == ["capital?"]


async def test_the_step_limit_makes_the_coordinator_answer_with_what_it_has(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("limit"))
    async with open_service(make_settings(BACKTRACK_AGENT="team", BACKTRACK_TEAM_MAX_STEPS=1)) as service:
        fake_llm.queue_for("coordinator", ToolCall("research", {"task": "dig"}), ToolCall("research", {"task": "more"}))
        fake_llm.queue_for("researcher", Reply("Found one thing."))
        answer = await service.ask(key, "dig deep")
    last = fake_llm.requests_of("coordinator")[-1]
    assert "tools" not in last  # no more delegations offered
    assert answer.text.endswith(team_limit_notice(1))
    assert "cannot call research" in answer.text  # the model answered (the fake says it has no tools)
    assert len(fake_llm.requests_of("researcher")) == 1


async def test_an_approval_inside_the_researcher_pauses_and_resumes_after_a_restart(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("gate"))
    settings = make_settings(BACKTRACK_AGENT="team", BACKTRACK_APPROVAL_TOOLS="web_search")
    fake_llm.queue_for("coordinator", ToolCall("research", {"task": "capital of France"}), Reply("It is Paris."))
    fake_llm.queue_for("researcher", ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    async with open_service(settings) as first:
        paused = await first.ask(key, "capital of France?", user="ada")
    assert paused.approval is not None and paused.approval.tool == "web_search"
    assert paused.turn is None

    async with open_service(settings) as second:
        done = await second.resolve(key, paused.approval.id, True, user="ada")
        assert done.text == "It is Paris." and done.turn is not None
        assert [t.question for t in await second.history(key)] == ["capital of France?"]
    researcher = fake_llm.requests_of("researcher")
    assert len(researcher) == 2  # resumed inside the sub-agent: its first step was not run again
    assert ("tool", "The capital of France is Paris.") in roles_sent(researcher[-1])


async def test_forget_deletes_every_namespace(
    team: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("forget"))
    script_delegation(fake_llm)
    await team.ask(key, "capital?")
    await team.run(key, Command("forget"), None)
    async with team.pool.connection() as conn:
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            row = await (await conn.execute(
                f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", (str(key),))).fetchone()
            assert row is not None and row["n"] == 0, table


async def test_sigkill_during_the_researcher_step_then_restart(
    pg_url: str, fake_llm: FakeOpenAI, tmp_path: Path, unique: Callable[[str], str]
) -> None:
    thread = unique("teamkill")
    proc = BacktrackProcess(matrix_env(pg_url, fake_llm, BACKTRACK_AGENT="team"), tmp_path / "api.log")
    try:
        await proc.start()
        assert (await ask(proc, thread, "hello"))[1]["answer"] == "heard: hello"
        fake_llm.queue_for("coordinator", ToolCall("research", {"task": "slowly"}))
        fake_llm.queue_for("researcher", Reply("never delivered", delay=60))
        dying = asyncio.create_task(ask(proc, thread, "lost with the process"))
        async with asyncio.timeout(15):
            while not fake_llm.requests_of("researcher"):
                await asyncio.sleep(0.05)
        proc.signal(signal.SIGKILL)
        await proc.wait_exit()
        with pytest.raises(aiohttp.ClientError):  # the connection just drops
            await dying
        fake_llm.reset()
        await proc.start()
        status, body = await ask(proc, thread, "still there?")
        assert status == 200, body
        assert body["answer"].endswith("heard: hello | still there?")
        assert "cut off" in body["answer"]
        _, history = await proc.post("/api/graph/history", {"thread_id": thread})
        assert [t["question"] for t in history["turns"]] == ["hello", "still there?"]
    finally:
        proc.kill()


async def test_a_delegation_to_no_team_member_is_answered_as_an_error_and_the_turn_goes_on(
    team: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("bogus"))
    fake_llm.queue_for("coordinator", ToolCall("summon_wizard", {"task": "magic"}))
    answer = await team.ask(key, "do magic")
    assert answer.text == "heard: do magic"
    sent = roles_sent(fake_llm.requests_of("coordinator")[-1])
    assert any(role == "tool" and "no 'summon_wizard' in the team" in text for role, text in sent)


async def test_replaying_a_team_turn_runs_the_team_again_on_a_new_branch(
    team: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("replay"))
    script_delegation(fake_llm, answer="first take")
    first = await team.ask(key, "capital?")
    assert first.turn is not None
    script_delegation(fake_llm, answer="second take")
    again = await team.replay(key, first.turn.checkpoint_id)
    assert again.text == "second take"
    assert [t.answer for t in await team.history(key)] == ["second take"]
    assert len(fake_llm.requests_of("researcher")) == 4  # the whole team ran twice
    await team.rewind_to(key, first.turn.checkpoint_id)  # the first take is still reachable
    assert (await team.ask(key, "and?")).text == "heard: capital? | and?"
    assert ("assistant", "first take") in roles_sent(fake_llm.requests_of("coordinator")[-1])


async def test_history_all_lists_which_agents_ran_what_they_called_and_for_how_long(
    team: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("team-steps"))
    script_delegation(fake_llm)
    await team.ask(key, "What is the capital of France?")
    audit = await team.audit(key, steps=True)
    (turn,) = audit.turns
    agents = [s.agent for s in turn.steps]
    assert "researcher" in agents and "analyst" in agents
    calls = {(s.agent, c["name"]) for s in turn.steps for m in s.added for c in m.tool_calls}
    assert {("researcher", "web_search"), ("analyst", "calculator")} <= calls
    assert all(s.duration_ms >= 0 for s in turn.steps)
    said = [m.content for s in turn.steps if s.agent == "analyst" for m in s.added if m.type == "ai"]
    assert "Doubled: 4.2." in said  # what the analyst returned

    shown = await team.run(key, Command("history", "--all"), None)
    line = next(x for x in shown.splitlines() if x.strip().startswith("steps:"))
    assert "researcher: web_search" in line and "analyst: calculator" in line
    assert line.index("researcher") < line.index("analyst") < line.rindex("coordinator")


async def test_the_team_answers_with_the_places_model_and_speaks_with_its_persona(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    tag = unique("P").upper().replace("-", "")[:12]
    key = ThreadKey.slack("T7", "C" + tag, "1.1")
    persona = "Answer like a ship's captain."
    settings = make_settings(BACKTRACK_AGENT="team", BACKTRACK_MODELS="captain-model")
    async with open_service(settings) as service:
        await service.change_place(key.scopes[0], "admin", persona=persona, model="captain-model")
        fake_llm.reset()
        script_delegation(fake_llm)
        await service.ask(key, "What is the capital of France?")
    assert {r["model"] for r in fake_llm.requests} == {"captain-model"}  # every agent, sub-agents too
    coordinator = fake_llm.requests_of("coordinator")
    assert coordinator and all(persona in r["messages"][0]["content"] for r in coordinator)
    for member in ("researcher", "analyst"):  # they report to the coordinator, not to the people
        assert all(persona not in r["messages"][0]["content"] for r in fake_llm.requests_of(member))
