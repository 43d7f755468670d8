"""What the benchmark does to each system: one long conversation, then many at once.

Every answer is checked against its question (the scripted model echoes the question's
tag), so a system that lost or mixed up a conversation fails the run instead of looking
fast.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

from bench.scripted_model import question
from bench.storage import Sizes, measure
from bench.systems import Chat

__all__ = ["Concurrent", "Long", "concurrent", "long_conversation", "percentile"]


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; samples in seconds, result in ms."""
    ordered = sorted(samples)
    rank = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[rank] * 1000


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


@dataclass
class Long:
    turns: int
    latencies: list[float] = field(default_factory=list)
    sizes: dict[int, Sizes] = field(default_factory=dict)
    """Storage after the given number of turns (only for systems with a database)."""
    history: list[float] = field(default_factory=list)
    rewind: list[float] = field(default_factory=list)
    wrong_answers: int = 0
    history_after_rewind: list[str] = field(default_factory=list)


@dataclass
class Concurrent:
    conversations: int
    turns: int
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """This process's CPU time over the run (the model is scripted: the rest is the system)."""
    latencies: list[float] = field(default_factory=list)
    wrong_answers: int = 0

    @property
    def turns_per_second(self) -> float:
        return self.conversations * self.turns / self.seconds if self.seconds else 0.0


async def _timed(call: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


def _answers(answer: object, tag: str, turn: int) -> bool:
    return isinstance(answer, str) and answer.startswith(f"[{tag}#{turn}]")


async def long_conversation(
    chat: Chat, name: str, turns: int, window: int, repeats: int, url: str | None
) -> Long:
    """``turns`` turns in one conversation, then history and rewind at its end."""
    result = Long(turns)
    marks = {0, window, turns - window, turns}
    if url and 0 in marks:
        result.sizes[0] = await measure(url)
    for turn in range(1, turns + 1):
        seconds, answer = await _timed(partial(chat.ask, name, question(name, turn)))
        result.latencies.append(seconds)
        result.wrong_answers += not _answers(answer, name, turn)
        if url and turn in marks:
            result.sizes[turn] = await measure(url)
    for _ in range(repeats):
        seconds, _seen = await _timed(partial(chat.history, name, 10))
        result.history.append(seconds)
    for _ in range(repeats):
        seconds, _done = await _timed(partial(chat.rewind, name))
        result.rewind.append(seconds)
    if chat.name == "backtrack":  # the service's history is per turn; check the rewinds landed
        result.history_after_rewind = await chat.history(name, 3)
    return result


async def concurrent(
    chat: Chat, prefix: str, conversations: int, turns: int, *, parallel: bool
) -> Concurrent:
    """``conversations`` x ``turns``: all at once when ``parallel``, else one after another."""
    result = Concurrent(conversations, turns)

    async def talk(name: str) -> None:
        for turn in range(1, turns + 1):
            seconds, answer = await _timed(partial(chat.ask, name, question(name, turn)))
            result.latencies.append(seconds)
            result.wrong_answers += not _answers(answer, name, turn)

    names = [f"{prefix}-{i}" for i in range(conversations)]
    started, cpu = time.perf_counter(), time.process_time()
    if parallel:
        await asyncio.gather(*(talk(n) for n in names))
    else:
        for name in names:
            await talk(name)
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu
    return result
