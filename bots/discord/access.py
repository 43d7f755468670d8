"""Where a Discord event belongs and who may use the bot there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from core.keys import ThreadKey

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["Gate", "channel_ids", "conversation_key"]


def conversation_key(guild_id: int | None, channel_id: int) -> ThreadKey:
    """The one rule for which conversation a Discord event belongs to, messages and commands alike.

    A thread has its own channel id, so each thread is its own conversation.
    """
    return ThreadKey.discord(guild_id, channel_id)


def channel_ids(channel: object) -> set[int]:
    """The channel, a thread's parent channel and the category: an allow-list may name any."""
    ids = {getattr(channel, "id", 0), getattr(channel, "parent_id", None)}
    ids.add(getattr(channel, "category_id", None))
    return {i for i in ids if i}


@dataclass(frozen=True, slots=True)
class Gate:
    """Who may talk to the bot and where; an empty list admits everyone or everywhere.

    Guilds and channels restrict places in a guild (a channel entry also covers its
    threads and, for a category, its channels). Users and roles restrict people: either
    list admits. A DM has no roles, so with any people list set only listed users get in.
    """

    guilds: frozenset[int]
    channels: frozenset[int]
    roles: frozenset[int]
    users: frozenset[int]
    open_channels: frozenset[int]

    @classmethod
    def from_settings(cls, settings: Settings) -> Gate:
        return cls(
            guilds=settings.discord_allowed_guilds,
            channels=settings.discord_allowed_channels,
            roles=settings.discord_allowed_roles,
            users=settings.discord_allowed_users,
            open_channels=settings.discord_open_channels,
        )

    def admits(self, guild_id: int | None, places: set[int], user: discord.User | discord.Member) -> bool:
        if guild_id is not None:
            if self.guilds and guild_id not in self.guilds:
                return False
            if self.channels and not self.channels & places:
                return False
        if not self.users and not self.roles:
            return True
        roles = {r.id for r in user.roles} if isinstance(user, discord.Member) else set()
        return user.id in self.users or bool(self.roles & roles)
