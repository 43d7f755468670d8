"""``python -m bench [--quick | --per-turn] [--json PATH]``: run the benchmark, print the table, save JSON.

``--per-turn`` (``make bench-quick``) measures only what one turn costs: statements and round
trips on the wire, CPU, latency alone and among 50, throughput among 50.

Uses ``DATABASE_URL`` when set (it needs the right to create databases), otherwise an
embedded PostgreSQL in a temporary directory. Each system gets its own fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from bench.naive import NaiveChat
from bench.processes import Scaled, scale_out
from bench.report import Report, machine
from bench.rss import clone_conversations
from bench.scenarios import Concurrent, Long, concurrent, long_conversation, p50, percentile
from bench.scripted_model import ScriptedChatModel, question
from bench.storage import create_database, drop_database
from bench.systems import BacktrackChat, Chat
from bench.team import add_rows, team_conversation
from bench.turn_cost import Wire, backtrack_on, naive_on, wire_cost
from bench.viewer import page_data
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings, load_settings

__all__ = ["FULL", "PER_TURN", "QUICK", "Plan", "main", "run"]

_log = logging.getLogger(__name__)
_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = _ROOT / "bench" / "results.json"


@dataclass(frozen=True)
class Plan:
    turns: int
    """Length of the long conversation."""
    window: int
    """Turns at its start and end whose added bytes are compared."""
    repeats: int
    """history and rewind calls timed at its end."""
    conversations: int
    per_conversation: int
    sequential: int
    """Conversations run one at a time, for the single-conversation latency."""
    rss_small: int
    rss_large: int
    team_turns: int
    """Length of the team-mode conversation (compared over ``window`` turns too)."""
    processes: tuple[int, ...] = (1, 2, 4)
    """Process counts of the scale-out rows, each driven over HTTP."""
    wire_turns: int = 30
    """Turns of one conversation counted on the wire (statements, round trips)."""
    everything: bool = True
    """False: only the per-turn rows (``--per-turn``)."""


FULL = Plan(500, 50, 20, 50, 20, 10, 10, 10_000, 150)
QUICK = Plan(60, 10, 5, 5, 5, 3, 10, 200, 30, (1, 2), wire_turns=10)
PER_TURN = Plan(0, 0, 0, 50, 20, 10, 0, 0, 0, (), wire_turns=30, everything=False)


@dataclass
class Measured:
    long: Long | None
    sequential: Concurrent
    parallel: Concurrent
    wire: Wire | None = None
    """Statements and round trips per turn (systems with a database)."""
    viewer: list[float] | None = None
    """Seconds per viewer page load of the long conversation (backtrack only)."""


def _settings(url: str, pool_max: int) -> Settings:
    return load_settings(
        _env_file=None,
        DATABASE_URL=url,
        OPENAI_API_KEY="unused",
        TAVILY_API_KEY=None,
        BACKTRACK_DB_POOL_MAX=pool_max,
        BACKTRACK_DATA_DIR=tempfile.gettempdir(),
    )


async def _exercise(chat: Chat, url: str | None, plan: Plan, run_id: str) -> Measured:
    long = None
    if plan.everything:
        _log.warning("%s: %d-turn conversation", chat.name, plan.turns)
        long = await long_conversation(
            chat, f"{run_id}-long", plan.turns, plan.window, plan.repeats, url
        )
    _log.warning("%s: %d conversations one at a time", chat.name, plan.sequential)
    sequential = await concurrent(
        chat, f"{run_id}-seq", plan.sequential, plan.per_conversation, parallel=False
    )
    _log.warning("%s: %d x %d concurrently", chat.name, plan.conversations, plan.per_conversation)
    parallel = await concurrent(
        chat, f"{run_id}-par", plan.conversations, plan.per_conversation, parallel=True
    )
    return Measured(long, sequential, parallel)


async def _child_rss(url: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.rss", url,
        stdout=asyncio.subprocess.PIPE,
        cwd=_ROOT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.rss exited with {proc.returncode}")
    return int(json.loads(out)["rss_kb"])


async def _idle_memory(url: str, plan: Plan, model: ScriptedChatModel) -> dict[str, int]:
    prefix = "rss-"
    async with open_service(_settings(url, 5), model=model) as service:
        for i in range(plan.rss_small):
            for turn in range(1, 4):
                await service.ask(ThreadKey.api(f"{prefix}{i}"), question(f"rss{i}", turn))
    small = await _child_rss(url)
    await clone_conversations(url, prefix, plan.rss_large // plan.rss_small - 1)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM conversations")).fetchone()
    large = await _child_rss(url)
    return {"small_kb": small, "large_kb": large, "stored": int(row[0]) if row else 0}


async def run(plan: Plan, admin_url: str, mode: str) -> Report:
    run_id = f"b{uuid.uuid4().hex[:6]}"
    model = ScriptedChatModel()
    urls = [await create_database(admin_url, f"bench_{n}") for n in ("naive", "backtrack", "rss", "team")]
    naive_url, backtrack_url, rss_url, team_url = urls
    results: dict[str, Measured] = {}
    scaled: Scaled = {}
    try:
        settings = _settings(backtrack_url, plan.conversations + 10)
        results["in_memory"] = await _exercise(
            NaiveChat("in_memory", settings, InMemorySaver(), model), None, plan, run_id
        )
        async with AsyncPostgresSaver.from_conn_string(naive_url) as saver:
            await saver.setup()
            results["naive"] = await _exercise(
                NaiveChat("naive", settings, saver, model), naive_url, plan, run_id
            )
        async with open_service(settings, model=model) as service:
            results["backtrack"] = await _exercise(
                BacktrackChat(service), backtrack_url, plan, run_id
            )
            if plan.everything:
                _log.warning("backtrack: the viewer's page data for the %d-turn conversation", plan.turns)
                long_key = ThreadKey.api(f"{run_id}-long")
                results["backtrack"].viewer = await page_data(service, long_key, plan.repeats)
        _log.warning("statements and round trips of %d turns, on the wire", plan.wire_turns)

        def pool(url: str) -> Settings:
            return _settings(url, 5)

        for name, url, opener in (("naive", naive_url, naive_on(pool, model)),
                                  ("backtrack", backtrack_url, backtrack_on(pool, model))):
            results[name].wire = await wire_cost(opener, url, f"{run_id}-wire", plan.wire_turns)
        if plan.everything:
            _log.warning("scale-out: %s processes over HTTP", ", ".join(map(str, plan.processes)))
            scaled = await scale_out(admin_url, plan.processes, plan.conversations, plan.per_conversation)
            _log.warning("team: %d-turn conversation", plan.team_turns)
            team = await team_conversation(team_url, _settings(team_url, 5), plan.team_turns, plan.window)
            _log.warning("idle memory: %d then %d stored conversations", plan.rss_small, plan.rss_large)
            rss = await _idle_memory(rss_url, plan, model)
        async with await psycopg.AsyncConnection.connect(admin_url) as conn:
            row = await (await conn.execute("SHOW server_version")).fetchone()
        version = f"PostgreSQL {row[0]}" if row else "unknown"
    finally:
        for url in urls:
            await drop_database(admin_url, url)
    report = Report(mode=mode, machine=machine(version))
    per_turn_rows(report, plan, results)
    if plan.everything:
        build_report(report, plan, results, rss, scaled)
        add_rows(report, team)
    return report


def per_turn_rows(report: Report, plan: Plan, results: dict[str, Measured]) -> None:
    """What a turn costs, side by side, and the goals of beating naive on each."""
    db = ("naive", "backtrack")
    wire = {s: results[s].wire for s in db}
    report.add("statements per turn, on the wire", "", **{s: w.statements for s, w in wire.items() if w})
    report.add("round trips per turn, on the wire", "", **{s: w.round_trips for s, w in wire.items() if w})
    seq, par = ({s: getattr(m, pick) for s, m in results.items()} for pick in ("sequential", "parallel"))
    cpu = {s: c.cpu_seconds * 1000 / len(c.latencies) for s, c in seq.items()}
    report.add("CPU per turn, this process, 1 conversation at a time", "ms", **cpu)
    c, k = plan.conversations, plan.per_conversation
    for label, runs in ((f"1 conversation at a time ({plan.sequential} x {k})", seq),
                        (f"{c} concurrent conversations", par)):
        report.add(f"turn latency p50, {label}", "ms", **{s: p50(r.latencies) for s, r in runs.items()})
        report.add(f"turn latency p99, {label}", "ms",
                   **{s: percentile(r.latencies, 0.99) for s, r in runs.items()})
    tps = {s: r.turns_per_second for s, r in par.items()}
    report.add(f"throughput, {c} conversations x {k} turns at once", "turns/s", **tps)
    report.add("  vs in-memory saver", "x", **{s: v / tps["in_memory"] for s, v in tps.items()})
    report.add("  vs naive", "x", **{s: v / tps["naive"] for s, v in tps.items()})
    report.checks["per_turn_wrong_answers"] = {
        s: seq[s].wrong_answers + par[s].wrong_answers for s in results
    }
    bt, naive = wire["backtrack"], wire["naive"]
    assert bt and naive, "the wire was not measured"
    report.goal("round trips per turn vs naive's", f"<= {naive.round_trips:.2f}", bt.round_trips,
                bt.round_trips <= naive.round_trips)
    report.goal("CPU ms per turn vs naive's", f"<= {cpu['naive']:.2f}", cpu["backtrack"],
                cpu["backtrack"] <= cpu["naive"])
    single = {s: p50(r.latencies) for s, r in seq.items()}
    report.goal("single-conversation p50 (ms) vs naive's", f"<= {single['naive']:.2f}", single["backtrack"],
                single["backtrack"] <= single["naive"])
    versus_naive = tps["backtrack"] / tps["naive"]
    report.goal("throughput vs naive", ">= 1.0", versus_naive, versus_naive >= 1.0)
    share = tps["backtrack"] / tps["in_memory"]
    report.goal("throughput vs in-memory", ">= 0.45", share, share >= 0.45)


def build_report(
    report: Report, plan: Plan, results: dict[str, Measured], rss: dict[str, int], scaled: Scaled,
) -> None:
    """The rows of the full run beyond the per-turn ones: storage, long conversations, scale."""
    longs: dict[str, Long] = {}
    for system, measured in results.items():
        assert measured.long is not None, "the long conversation was not run"
        longs[system] = measured.long
    t, w = plan.turns, plan.window
    edge = min(20, t // 5)

    def each(fn: Any, systems: tuple[str, ...] = ("in_memory", "naive", "backtrack")) -> dict[str, float]:
        return {s: fn(longs[s]) for s in systems}

    db = ("naive", "backtrack")
    mb = 1024 * 1024
    total = each(lambda m: (m.sizes[t].total - m.sizes[0].total) / mb, db)
    report.add(f"storage added by a {t}-turn conversation, all tables", "MB", **total)
    report.add("  of which checkpoint blobs, uncompressed", "MB",
               **each(lambda m: (m.sizes[t].blobs - m.sizes[0].blobs) / mb, db))
    start = each(lambda m: (m.sizes[w].rows - m.sizes[0].rows) / w / 1024, db)
    end = each(lambda m: (m.sizes[t].rows - m.sizes[t - w].rows) / w / 1024, db)
    report.add(f"bytes added per turn, turns 1-{w}", "KB", **start)
    report.add(f"bytes added per turn, turns {t - w + 1}-{t}", "KB", **end)
    c, k = plan.conversations, plan.per_conversation
    first = each(lambda m: p50(m.latencies[:edge]))
    last = each(lambda m: p50(m.latencies[-edge:]))
    report.add(f"turn latency p50, turns 1-{edge}", "ms", **first)
    report.add(f"turn latency p50, turns {t - edge + 1}-{t}", "ms", **last)
    report.add(f"history(limit=10) p50 at turn {t}", "ms", **each(lambda m: p50(m.history)))
    report.add(f"rewind(1) p50 at turn {t}", "ms", **each(lambda m: p50(m.rewind)))
    report.add(f"idle RSS, {plan.rss_small} stored conversations", "MB",
               backtrack=rss["small_kb"] / 1024)
    report.add(f"idle RSS, {rss['stored']:,} stored conversations", "MB",
               backtrack=rss["large_kb"] / 1024)

    for processes, per_second in scaled.items():
        plural = "process" if processes == 1 else "processes"
        report.add(f"throughput over HTTP, {c} x {k}, {processes} {plural}", "turns/s", backtrack=per_second)

    bt = results["backtrack"]
    assert bt.viewer, "the viewer was not measured"
    viewer = p50(bt.viewer)
    report.add(f"viewer: {t}-turn conversation page data", "ms", backtrack=viewer)
    ratio = total["backtrack"] / total["naive"]
    report.goal("storage vs naive", "<= 0.05", ratio, ratio <= 0.05)
    growth = end["backtrack"] / start["backtrack"]
    report.goal("bytes per turn, end / start", "<= 1.2", growth, growth <= 1.2)
    flat = last["backtrack"] / first["backtrack"]
    report.goal(f"turn latency p50, last {edge} / first {edge}", "<= 1.5", flat, flat <= 1.5)
    history, rewind = p50(longs["backtrack"].history), p50(longs["backtrack"].rewind)
    report.goal("history p50 (ms)", "<= 10", history, history <= 10)
    report.goal("rewind p50 (ms)", "<= 10", rewind, rewind <= 10)
    report.goal(f"viewer: {t}-turn conversation page data (ms)", "< 1000", viewer, viewer < 1000)
    memory = rss["large_kb"] / rss["small_kb"]
    report.goal("idle RSS, many / few conversations", "<= 1.10", memory, memory <= 1.10)

    report.checks |= {
        "plan": plan.__dict__,
        "wrong_answers": {s: longs[s].wrong_answers + m.sequential.wrong_answers
                          + m.parallel.wrong_answers for s, m in results.items()},
        "turns_answered": {s: len(longs[s].latencies) + len(m.sequential.latencies)
                           + len(m.parallel.latencies) for s, m in results.items()},
        "backtrack_history_after_rewinds": longs["backtrack"].history_after_rewind,
        "stored_conversations": rss["stored"],
        "sizes": {s: {n: asdict(z) for n, z in longs[s].sizes.items()} for s in db},
    }


@asynccontextmanager
async def _server() -> AsyncIterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    import pgserver  # only the embedded mode needs it

    with tempfile.TemporaryDirectory(prefix="backtrack-bench-") as tmp:
        server = pgserver.get_server(
            Path(tmp) / "pgdata", cleanup_mode="stop"
        )
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


async def _main(args: argparse.Namespace) -> Report:
    async with _server() as url:
        mode = "per-turn" if args.per_turn else "quick" if args.quick else "full"
        return await run({"per-turn": PER_TURN, "quick": QUICK, "full": FULL}[mode], url, mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument("--per-turn", action="store_true", help="only what a turn costs (make bench-quick)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    report = asyncio.run(_main(args))
    print(report.table())
    report.write(args.json)
    print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
