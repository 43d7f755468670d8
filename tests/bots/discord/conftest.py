"""The Discord scenario fixtures, for every test module of this folder."""

from tests.bots.discord.harness import bot, discord_settings, world

__all__ = ["bot", "discord_settings", "world"]
