"""``python -m bench.profile [TURNS]``: where a backtrack turn's CPU goes, by cProfile on CPU time.

Runs ``TURNS`` turns (default 300: 10 conversations one at a time, as the benchmark's
single-conversation row) on an embedded PostgreSQL with the scripted model, after a
warm-up, and prints the 25 functions with the most time of their own and the 25 of
ours (core/, bench/ excluded) with the most cumulative time. Compare two checkouts by
running it in each.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import _settings
from bench.scripted_model import ScriptedChatModel, question
from bench.storage import create_database, drop_database
from bench.systems import BacktrackChat
from core.runtime import open_service

__all__ = ["main"]

_CONVERSATIONS = 10


async def _profile(url: str, turns: int) -> pstats.Stats:
    model = ScriptedChatModel()
    async with open_service(_settings(url, 5), model=model) as service:
        chat = BacktrackChat(service)
        for i in range(_CONVERSATIONS):
            await chat.ask(f"warm-{i}", question(f"warm-{i}", 1))
        profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting
        profiler.enable()
        for i in range(_CONVERSATIONS):
            name = f"p-{i}"
            for turn in range(1, turns // _CONVERSATIONS + 1):
                await chat.ask(name, question(name, turn))
        profiler.disable()
    return pstats.Stats(profiler)


async def _run(turns: int) -> pstats.Stats:
    import pgserver

    with tempfile.TemporaryDirectory(prefix="backtrack-profile-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
        try:
            admin = str(server.get_uri())
            url = await create_database(admin, "bench_profile")
            try:
                return await _profile(url, turns)
            finally:
                await drop_database(admin, url)
        finally:
            server.cleanup()


def main(argv: list[str]) -> int:
    turns = int(argv[0]) if argv else 300
    stats = asyncio.run(_run(turns))
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    print(f"{turns} turns, {total * 1000 / turns:.2f} ms of profiled CPU per turn\n")
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(r"/core/", 25)
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
