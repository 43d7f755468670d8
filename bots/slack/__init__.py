"""``backtrack slack``: the Slack bot, over HTTP (Events API) or Socket Mode.

Socket Mode is used when ``SLACK_APP_TOKEN`` is set (no public URL needed); otherwise
Bolt's requests are served at ``/slack/events`` on ``--host``/``--port``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from bots.serving import serve_health, serve_until_stopped, stop_signals
from bots.slack.app import EVENTS_PATH, SlackBot, require_tokens
from core.errors import SettingsError
from core.runtime import open_service

if TYPE_CHECKING:
    import argparse

    from core.settings import Settings

__all__ = ["SlackBot", "run"]

_log = logging.getLogger(__name__)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    # Their DEBUG lines carry request parameters (the app token among them) and message text.
    for name in ("slack_sdk", "slack_bolt"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    require_tokens(settings)  # before the database: a missing token should fail fast
    async with open_service(settings) as service:  # on the way out it lets running turns finish
        bot = SlackBot(settings, service)
        await _check_token(bot)
        if settings.slack_app_token is not None:
            async with serve_health(settings, service):  # Socket Mode has no port of its own
                await _socket_mode(bot, settings.slack_app_token.get_secret_value())
        else:
            host = args.host or settings.host
            port = args.port if args.port is not None else settings.port
            app = bot.web_app(settings.max_body_bytes)
            _log.info("serving Slack events at %s", EVENTS_PATH)
            await serve_until_stopped(app, host, port, grace=settings.shutdown_grace)
    return 0


async def _check_token(bot: SlackBot) -> None:
    """Fail at start, naming the setting, rather than on the first message."""
    if bot.client.token is None:  # installed by OAuth: each workspace's token is checked by Slack
        _log.info("Slack app distributed by OAuth: install it at /slack/install")
        return
    try:
        auth = await bot.client.auth_test()
    except SlackApiError as exc:
        raise SettingsError(f"SLACK_BOT_TOKEN was refused by Slack: {exc.response.get('error')}") from None
    _log.info("signed in to Slack team %s as %s", auth.get("team_id"), auth.get("user_id"))


async def _socket_mode(bot: SlackBot, app_token: str) -> None:
    handler = AsyncSocketModeHandler(bot.app, app_token=app_token, web_client=bot.client)
    async with stop_signals() as stop:
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
            _log.info("connected to Slack in Socket Mode")
            await stop.wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
