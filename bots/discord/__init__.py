"""The Discord adapter: each channel, thread or DM is one conversation.

discord.py does the platform work (gateway, sharding, reconnects, rate limits); this
module decides which messages are for the bot, turns them into a conversation key plus
text for the core service, and turns answers back into Discord messages: a reply to the
user, edited while the model streams, split under Discord's 2000-character limit.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import discord

from bots.discord.access import Gate, conversation_key
from bots.discord.client import BacktrackClient, build_client
from bots.serving import serve_health, stop_signals
from core.errors import SettingsError
from core.runtime import open_service

if TYPE_CHECKING:
    import argparse

    from core.settings import Settings

__all__ = ["BacktrackClient", "Gate", "build_client", "conversation_key", "run"]

_log = logging.getLogger(__name__)

INTENT_HELP = (
    "backtrack: Discord refused the Message Content intent. Enable it in the Developer Portal "
    "(your application → Bot → Privileged Gateway Intents → Message Content Intent), then start again."
)
TOKEN_HELP = (
    "backtrack: Discord rejected DISCORD_BOT_TOKEN. Copy a fresh token from the Developer Portal "
    "(your application → Bot → Reset Token)."
)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if settings.discord_bot_token is None:
        raise SettingsError("DISCORD_BOT_TOKEN is not set; see 'Connecting Discord' in the README")
    token = settings.discord_bot_token.get_secret_value()
    async with open_service(settings) as service:
        client = build_client(settings, service)
        try:
            async with serve_health(settings, service), client, stop_signals() as stop:
                await _until_stopped(client.start(token), stop)
                # Still connected, so running turns can post their answers; new ones are refused.
                await service.drain(settings.shutdown_grace)
        except discord.PrivilegedIntentsRequired:
            print(INTENT_HELP, file=sys.stderr)
            return 1
        except discord.LoginFailure:
            print(TOKEN_HELP, file=sys.stderr)
            return 1
    return 0


async def _until_stopped(connection: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run the gateway connection until it ends (raising its error) or a signal arrives."""
    connected = asyncio.ensure_future(connection)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({connected, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if connected.done():
        connected.result()
    else:
        _log.info("stopping: finishing running turns")
