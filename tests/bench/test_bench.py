"""The quick benchmark end to end, so it never rots: it runs, and what it measures is right.

It runs as ``python -m bench --quick`` against the session's PostgreSQL (in fresh
databases it creates and drops). Timings are never asserted, only that every system
answered every turn correctly and that the figures are complete and plausible.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg

from bench.__main__ import QUICK
from bench.scripted_model import tag_of
from tests import ROOT

SYSTEMS = ("in_memory", "naive", "backtrack")
ROW_PREFIXES = (
    "storage added by a",
    "  of which checkpoint blobs",
    "bytes added per turn, turns 1-",
    "bytes added per turn, turns ",
    "throughput,",
    "  vs in-memory saver",
    "turn latency p50, 1 conversation",
    "turn latency p99, 1 conversation",
    "turn latency p50, 5 concurrent",
    "turn latency p99, 5 concurrent",
    "turn latency p50, turns 1-",
    "history(limit=10) p50",
    "rewind(1) p50",
    "idle RSS, 10 stored",
    "idle RSS, 200 stored",
    "throughput over HTTP, 5 x 5, 1 process",
    "throughput over HTTP, 5 x 5, 2 processes",
    "viewer: 60-turn conversation page data",
    "team: bytes added per turn, turns 1-",
    "team: turn latency p50, turns 1-",
    "statements per turn, on the wire",
    "round trips per turn, on the wire",
    "CPU per turn, this process",
    "  vs naive",
)
PER_TURN_GOALS = 5


async def _databases(url: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        rows = await (await conn.execute("SELECT datname FROM pg_database")).fetchall()
    return {r[0] for r in rows}


async def test_quick_benchmark_measures_every_figure_for_every_system(
    pg_url: str, tmp_path: Path
) -> None:
    before = await _databases(pg_url)
    out = tmp_path / "results.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench", "--quick", "--json", str(out),
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": pg_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=170)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    table = stdout.decode()
    assert "in-memory saver" in table and "naive" in table and "backtrack" in table
    assert "goals (backtrack):" in table

    results: dict[str, Any] = json.loads(out.read_text())
    rows = {row["name"]: row for row in results["rows"]}
    for prefix in ROW_PREFIXES:
        assert any(name.startswith(prefix) for name in rows), f"no row {prefix!r}"
    for name, row in rows.items():
        on_disk = any(word in name for word in ("storage", "blobs", "bytes", "on the wire"))
        measured: tuple[str, ...] = ("naive", "backtrack") if on_disk else SYSTEMS
        if "RSS" in name or "over HTTP" in name or name.startswith(("viewer:", "team:")):
            measured = ("backtrack",)
        for system in measured:
            assert isinstance(row[system], float | int) and row[system] > 0, (name, system)

    storage = next(r for n, r in rows.items() if n.startswith("storage added"))
    blobs = next(r for n, r in rows.items() if n.startswith("  of which checkpoint blobs"))
    assert storage["naive"] > storage["backtrack"] > 0
    assert blobs["naive"] > blobs["backtrack"]
    assert len(results["goals"]) == 8 + PER_TURN_GOALS
    wire = {n: r for n, r in rows.items() if n.endswith("on the wire")}
    trips, statements = wire["round trips per turn, on the wire"], wire["statements per turn, on the wire"]
    for system in ("naive", "backtrack"):  # a round trip carries one statement or more, a turn several
        assert 3 <= trips[system] <= statements[system], (system, trips, statements)

    checks = results["checks"]
    assert checks["wrong_answers"] == {s: 0 for s in SYSTEMS}
    assert checks["per_turn_wrong_answers"] == {s: 0 for s in SYSTEMS}
    per_system = (
        QUICK.turns
        + QUICK.sequential * QUICK.per_conversation
        + QUICK.conversations * QUICK.per_conversation
    )
    assert checks["turns_answered"] == {s: per_system for s in SYSTEMS}
    head = QUICK.turns - QUICK.repeats  # every timed rewind moved back one turn
    turns = [int(tag_of(q).rsplit("#", 1)[1]) for q in checks["backtrack_history_after_rewinds"]]
    assert turns == [head - 2, head - 1, head]
    assert checks["stored_conversations"] == QUICK.rss_large
    assert results["machine"]["postgres"].startswith("PostgreSQL")
    assert checks["team"] == {"wrong_answers": 0, "turns": QUICK.team_turns, "namespaces": 2 * QUICK.team_turns}

    assert await _databases(pg_url) == before, "the benchmark left databases behind"


async def test_bench_quick_prints_only_the_per_turn_rows(pg_url: str, tmp_path: Path) -> None:
    """``make bench-quick``: the per-turn rows and their goals, for all three systems."""
    out = tmp_path / "per-turn.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench", "--per-turn", "--json", str(out),
        cwd=ROOT, env={**os.environ, "DATABASE_URL": pg_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=170)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    results: dict[str, Any] = json.loads(out.read_text())
    names = [row["name"] for row in results["rows"]]
    assert not any(n.startswith(("storage", "history", "idle RSS", "team:")) for n in names), names
    assert results["goals"][0]["name"] == "round trips per turn vs naive's"
    assert len(results["goals"]) == PER_TURN_GOALS
    assert results["checks"]["per_turn_wrong_answers"] == {s: 0 for s in SYSTEMS}
