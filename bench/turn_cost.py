"""What one turn costs each system: statements and round trips on the wire, CPU in this process.

Statements and round trips are counted by a proxy in front of PostgreSQL (``bench/wire.py``)
over ``turns`` turns of one conversation, after three warm-up turns, so a system's every
connection counts: the naive saver's one connection, backtrack's pool and its lock
connection alike. The proxy costs CPU of its own, so the CPU per turn is measured apart,
without it, over the single-conversation row's turns (``Concurrent.cpu_seconds``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from bench.naive import NaiveChat
from bench.scripted_model import ScriptedChatModel, question
from bench.systems import BacktrackChat, Chat
from bench.wire import counting_proxy
from core.runtime import open_service
from core.settings import Settings

__all__ = ["Wire", "backtrack_on", "naive_on", "wire_cost"]

_WARM_UP = 3


@dataclass(frozen=True)
class Wire:
    statements: float
    round_trips: float


OpenChat = Callable[[str], AbstractAsyncContextManager[Chat]]


def naive_on(settings: Callable[[str], Settings], model: ScriptedChatModel) -> OpenChat:
    @asynccontextmanager
    async def chat(url: str) -> AsyncIterator[Chat]:
        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield NaiveChat("naive", settings(url), saver, model)

    return chat


def backtrack_on(settings: Callable[[str], Settings], model: ScriptedChatModel) -> OpenChat:
    @asynccontextmanager
    async def chat(url: str) -> AsyncIterator[Chat]:
        async with open_service(settings(url), model=model) as service:
            yield BacktrackChat(service)

    return chat


async def wire_cost(open_chat: OpenChat, url: str, name: str, turns: int) -> Wire:
    """Statements and round trips per turn of one conversation, counted on the wire."""
    async with counting_proxy(url) as (proxied, counts), open_chat(proxied) as chat:
        for turn in range(1, _WARM_UP + 1):
            await chat.ask(name, question(name, turn))
        before = counts.copy()
        for turn in range(_WARM_UP + 1, _WARM_UP + turns + 1):
            answer = await chat.ask(name, question(name, turn))
            assert answer.startswith(f"[{name}#{turn}]"), answer
        spent = counts.since(before)
    return Wire(spent.statements / turns, spent.round_trips / turns)
