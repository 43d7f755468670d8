"""Per-person memory as people use it: the agents' ``MemoryBook``, and ``/memory``.

A person is a platform user id within its workspace (a Slack team, a Discord guild; DMs
with the Discord bot are their own workspace; the console and the API are one each): the
same id in another workspace or on another platform is another person, since nothing links
them. What a person told the bot in one conversation is known in all of theirs in that
workspace; which facts are live follows each conversation's branch
(``core/storage/memories.py``). When two conversations write the same topic, the newer live
write wins; rewinding it away brings back the older one.

``/memory`` lists only the caller's own memories and always answers the caller alone;
``/memory forget N`` forgets one (a lasting decision, not undone by a rewind),
``/memory forget all`` deletes every trace of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.conversations.intake import clean_message
from core.errors import InvalidInput
from core.keys import ThreadKey
from core.storage.db import storage_errors

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from core.storage.memories import Memory, MemoryStore, Namespace
    from core.types import Command

__all__ = ["MAX_FACT", "MAX_LINES", "PersonalMemory", "namespace"]

MAX_LINES = 20
"""Memories in a prompt: the newest 20, each at most ``MAX_FACT`` characters (about 2,000 tokens)."""
MAX_FACT = 300
_MAX_TOPIC = 40
_CACHE = 1000


def namespace(key: ThreadKey, user: str) -> Namespace:
    workspace = key.parts[0] if key.platform in ("slack", "discord") else "-"
    return ("memory", key.platform, workspace, user)


class PersonalMemory:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._cache: dict[tuple[Namespace, str], list[str]] = {}  # per run: its model calls read once

    async def block(self, config: RunnableConfig) -> list[str]:
        found = _asker(config)
        if found is None:
            return []
        where, run = found
        cached = self._cache.get((where, run))
        if cached is None:
            if len(self._cache) > _CACHE:
                self._cache.clear()
            async with storage_errors():
                memories = (await self._store.current(where, running=run))[-MAX_LINES:]
            cached = self._cache[(where, run)] = [f"- {m.topic}: {m.fact}" for m in memories]
        return cached

    async def write(self, config: RunnableConfig, topic: str, fact: str | None) -> str:
        found = _asker(config)
        if found is None:
            return "There is nobody to remember this for in this conversation; nothing was stored."
        where, run = found
        topic = " ".join(topic.split())[:_MAX_TOPIC].lower()
        if not topic:
            return "A memory needs a short topic; nothing was stored."
        key = str(config.get("configurable", {}).get("thread_id"))
        async with storage_errors():
            if fact is None and topic not in {m.topic for m in await self._store.current(where, run)}:
                return f"Nothing was remembered under {topic!r}."
            text = None if fact is None else clean_message(fact, 10_000)[:MAX_FACT]
            await self._store.write(where, topic, text, key, run)
        self._cache = {k: v for k, v in self._cache.items() if k[0] != where}
        return f"Forgot {topic!r}." if text is None else f"Remembered {topic!r}: {text}"

    async def command(self, key: ThreadKey, command: Command, user: str | None) -> str:
        """``/memory``, ``/memory forget N``, ``/memory forget all``: the caller's own memory only."""
        if not user:
            raise InvalidInput("/memory needs to know who you are; this surface sends no user")
        where = namespace(key, user)
        argument = command.argument.strip().lower()
        async with storage_errors():
            memories = await self._store.current(where)
            if argument == "forget all":
                removed = await self._store.clear(where)
                self._cache.clear()
                return f"Forgot everything I remembered about you ({removed} records deleted)."
            if argument.startswith("forget "):
                number = argument.removeprefix("forget ").strip()
                if not number.isdigit() or not 1 <= int(number) <= len(memories):
                    count = len(memories)
                    raise InvalidInput(f"/memory forget takes a number from /memory (1 to {count}), or all")
                gone = memories[int(number) - 1]
                await self._store.write(where, gone.topic, None, None, None)
                self._cache.clear()
                return f"Forgot {gone.topic!r}: {gone.fact}"
        if argument:
            raise InvalidInput("/memory takes forget N or forget all (or nothing, to list)")
        return _listing(memories)


def _listing(memories: list[Memory]) -> str:
    if not memories:
        return 'I remember nothing about you. Tell me what to remember, e.g. "remember that I prefer metric".'
    lines = ["What I remember about you (only you see this):"]
    for n, m in enumerate(memories, 1):
        origin = f" (from {m.conversation}, turn {m.turn})" if m.conversation and m.turn else ""
        lines.append(f"{n}. {m.topic}: {m.fact}{origin}")
    lines.append("/memory forget N forgets one, /memory forget all forgets everything.")
    return "\n".join(lines)


def _asker(config: RunnableConfig) -> tuple[Namespace, str] | None:
    """The asker's namespace and the run id, from a run's config; None without a user."""
    user = config.get("metadata", {}).get("user")
    thread = config.get("configurable", {}).get("thread_id")
    if not isinstance(user, str) or not user or not isinstance(thread, str):
        return None
    return namespace(ThreadKey.decode(thread), user), str(config.get("metadata", {}).get("turn_id", ""))
