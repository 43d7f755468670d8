"""The ``team`` rows: what a team turn (coordinator → researcher → analyst → answer) stores, and its latency.

One conversation in team mode, every turn delegated to both sub-agents, on a database of
its own: the bytes each turn adds are measured over every table (the checkpoint tables in
all namespaces, the root's and each sub-agent's), first turns against last turns, to show
that a team conversation grows linearly like a single agent's.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from bench.scenarios import p50
from bench.scripted_model import ANSWER_CHARS, ScriptedChatModel, _pad, question, tag_of
from bench.storage import Sizes, measure
from core.keys import ThreadKey
from core.runtime import open_service

if TYPE_CHECKING:
    from bench.report import Report
    from core.settings import Settings

__all__ = ["TeamMeasured", "TeamScriptedModel", "add_rows", "team_conversation"]

_NAMESPACES = "SELECT count(DISTINCT checkpoint_ns) FROM checkpoints WHERE checkpoint_ns <> ''"


class TeamScriptedModel(ScriptedChatModel):
    """Plays the three roles instantly, with the single agent's message sizes.

    The coordinator delegates research, then analysis, then answers; the researcher runs
    one web search, the analyst one calculation, and each reports back.
    """

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        system = messages[0].text if messages and isinstance(messages[0], SystemMessage) else ""
        last = messages[-1]
        asked = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        tag = tag_of(asked.text) if asked is not None else ""
        if system.startswith("You are the coordinator"):
            if isinstance(last, HumanMessage):
                return _call("research", {"task": _pad(f"find facts for {tag}", 120)})
            if isinstance(last, ToolMessage) and last.name == "research":
                return _call("analyse", {"task": _pad(f"weigh the facts for {tag}", 120)})
            return AIMessage(content=_pad(f"[{tag}] the team answered.", ANSWER_CHARS))
        tool, args = (("calculator", {"expression": "6 * 7"}) if system.startswith("You are the analyst")
                      else ("web_search", {"query": f"facts for {tag}"}))
        if isinstance(last, HumanMessage):
            return _call(tool, args)
        return AIMessage(content=_pad(f"report on {tag} from {tool}", ANSWER_CHARS))


def _call(name: str, args: dict[str, str]) -> AIMessage:
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


@dataclass
class TeamMeasured:
    turns: int
    window: int
    sizes: list[Sizes] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    wrong_answers: int = 0
    namespaces: int = 0
    """Sub-agent namespaces stored: two per turn (researcher, analyst)."""

    def per_turn_kb(self, first: bool) -> float:
        w, t = self.window, self.turns
        lo, hi = (0, w) if first else (t - w, t)
        return (self.sizes[hi].rows - self.sizes[lo].rows) / w / 1024


async def team_conversation(url: str, settings: Settings, turns: int, window: int) -> TeamMeasured:
    """``turns`` delegated team turns in one conversation on the (fresh) database ``url``."""
    measured = TeamMeasured(turns, window)
    team = settings.model_copy(update={"agent": "team"})
    async with open_service(team, model=TeamScriptedModel(), maintenance=False) as service:
        key = ThreadKey.api("team-bench")
        measured.sizes.append(await measure(url))
        for turn in range(1, turns + 1):
            started = time.perf_counter()
            answer = await service.ask(key, question("team", turn))
            measured.latencies.append(time.perf_counter() - started)  # seconds, as p50 expects
            measured.wrong_answers += not answer.text.startswith(f"[team#{turn}]")
            measured.sizes.append(await measure(url))
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute(_NAMESPACES)).fetchone()
    measured.namespaces = int(row[0]) if row else 0
    return measured


def add_rows(report: Report, team: TeamMeasured) -> None:
    """The ``team`` rows (backtrack's column) and the goal that team storage grows linearly."""
    t, w = team.turns, team.window
    start, end = team.per_turn_kb(first=True), team.per_turn_kb(first=False)
    report.add(f"team: bytes added per turn, turns 1-{w}, all namespaces", "KB", backtrack=start)
    report.add(f"team: bytes added per turn, turns {t - w + 1}-{t}, all namespaces", "KB", backtrack=end)
    report.add(f"team: turn latency p50, turns 1-{w}", "ms", backtrack=p50(team.latencies[:w]))
    report.add(f"team: turn latency p50, turns {t - w + 1}-{t}", "ms", backtrack=p50(team.latencies[-w:]))
    report.goal("team bytes per turn, end / start", "<= 1.2", end / start, end / start <= 1.2)
    report.checks["team"] = {"wrong_answers": team.wrong_answers, "turns": t, "namespaces": team.namespaces}
