"""The discord.py client: intents, endpoints, sharding and slash command sync."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bots.discord.approvals import Approvals
from bots.discord.buttons import ApprovalButton
from bots.discord.feedback import FeedbackButton, Ratings, RetryButton, VersionButton, rewind_here_menu
from bots.discord.gestures import Edits, drop_partial_updates
from bots.discord.responder import Responder, slash_commands
from core.errors import SettingsError

if TYPE_CHECKING:
    from core.conversations.service import ConversationService
    from core.settings import Settings

__all__ = ["BacktrackClient", "ShardedBacktrackClient", "build_client"]

_log = logging.getLogger(__name__)

_DEFAULT_API_PATH = "/api/v10"


class BacktrackClient(discord.Client):
    def __init__(self, settings: Settings, service: ConversationService, **options: Any) -> None:
        super().__init__(**options)
        self.responder = Responder(self, settings, service)
        self.approvals = Approvals(service)
        self.tree: app_commands.CommandTree[BacktrackClient] = app_commands.CommandTree(self)
        for command in slash_commands(self.responder):
            self.tree.add_command(command)
        self.ratings = Ratings(service, self.responder.gate)
        self.edits = Edits(self, service, self.responder.gate)
        drop_partial_updates(self)
        self.tree.add_command(rewind_here_menu(self.ratings))
        self.dev_guild = settings.discord_dev_guild_id

    async def setup_hook(self) -> None:
        """Route approval buttons by their ``custom_id`` (so buttons sent before a restart
        work), then register the slash commands: in one guild (instant, for development) or globally."""
        self.add_dynamic_items(ApprovalButton, FeedbackButton, RetryButton, VersionButton)
        guild = discord.Object(self.dev_guild) if self.dev_guild else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            _log.warning(
                "could not register slash commands (%s); was the bot invited with the "
                "applications.commands scope?",
                exc,
            )
            return
        where = f"guild {self.dev_guild}" if guild else "all guilds"
        _log.info("registered %d application commands for %s", len(synced), where)  # slash and message

    async def on_ready(self) -> None:
        _log.info("connected to Discord as %s in %d guilds", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        await self.responder.on_message(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Raw: an edit of a message older than discord.py's cache is an edit all the same."""
        await self.edits.on_edit(payload)


class ShardedBacktrackClient(BacktrackClient, discord.AutoShardedClient):
    """The same bot over discord.py's own sharding, for bots in many guilds."""


def _shards(settings: Settings) -> dict[str, Any]:
    ids = sorted(settings.discord_shard_ids)
    count = settings.discord_shard_count
    if ids and count is None:
        raise SettingsError("invalid setting DISCORD_SHARD_IDS: it needs DISCORD_SHARD_COUNT too")
    if count is not None and any(i >= count for i in ids):
        raise SettingsError(f"invalid setting DISCORD_SHARD_IDS: shard ids run 0..{count - 1}")
    return {"shard_count": count, "shard_ids": ids or None}


def _point_at_endpoints(settings: Settings) -> None:
    """Aim discord.py at a REST proxy or another gateway. Both are process-wide: one bot
    per process, as ``backtrack discord`` runs it."""
    if base := settings.discord_api_base_url:
        url = yarl.URL(base.rstrip("/"))
        Route.BASE = str(url if url.path not in ("", "/") else url.with_path(_DEFAULT_API_PATH))
    if gateway := settings.discord_gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)


def build_client(settings: Settings, service: ConversationService, **options: Any) -> BacktrackClient:
    """The bot's client; ``options`` go to discord.py (tests shorten ``guild_ready_timeout``)."""
    _point_at_endpoints(settings)
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # never joins voice
    intents = discord.Intents.default()
    intents.message_content = True
    # Model output must never ping @everyone, roles or users; replying still notifies the asker.
    mentions = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)
    options = {"intents": intents, "allowed_mentions": mentions, **options}
    if settings.discord_shard_count is not None:
        return ShardedBacktrackClient(settings, service, **_shards(settings), **options)
    _shards(settings)  # shard ids without a count are a mistake worth naming
    return BacktrackClient(settings, service, **options)
