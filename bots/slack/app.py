"""The Bolt app: Slack's requests in, the conversation service behind them.

Bolt verifies signatures (and the 5-minute timestamp window), answers ``url_verification``,
drops the bot's own events, and acknowledges every event before a listener runs; the
listeners here then do the slow work in the background. Slash commands and Approve /
Reject clicks (``block_actions``, posted to the same endpoint) acknowledge first thing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bots.serving import add_health_routes
from bots.slack.approvals import ACTIONS, ApprovalHandler
from bots.slack.assistant import AssistantThreads
from bots.slack.commands import CommandHandler
from bots.slack.events import MessageHandler
from bots.slack.feedback import FEEDBACK, RETRY, REWIND_HERE, VERSIONS, FeedbackHandler
from bots.slack.files import SlackFiles
from bots.slack.gestures import Gestures
from bots.slack.home import HomeTab
from bots.slack.oauth import oauth_settings
from bots.slack.people import People
from bots.slack.places import Access, workspace_of
from bots.slack.stream import Streams
from core.conversations.commands import COMMANDS
from core.errors import SettingsError

if TYPE_CHECKING:
    from slack_bolt.context.ack.async_ack import AsyncAck
    from slack_bolt.context.async_context import AsyncBoltContext
    from slack_bolt.context.respond.async_respond import AsyncRespond

    from bots.slack.stream import Clock
    from core.conversations.service import ConversationService
    from core.settings import Settings

__all__ = ["EVENTS_PATH", "SLASH_COMMANDS", "SlackBot", "require_tokens"]


EVENTS_PATH = "/slack/events"
SLASH_COMMANDS = tuple(name for name in COMMANDS if name not in ("edit", "retry", "branch"))
"""A new version of an answer belongs in its thread: ``!retry``, ``!edit 2 …`` and ``!branch``
are typed there, where the answer is posted; a slash command could only answer privately."""


def require_tokens(settings: Settings) -> str | None:
    """The bot token (None: installed by OAuth, a token per workspace), after checking that
    the settings can run a bot at all."""
    distributed = settings.slack_client_id is not None
    if distributed and (settings.slack_client_secret is None or settings.slack_signing_secret is None):
        raise SettingsError("SLACK_CLIENT_ID is set: SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET are needed")
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if distributed:
        return None
    if not token:
        raise SettingsError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-...), nor SLACK_CLIENT_ID")
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set (needed to verify Slack's HTTP requests; "
            "or set SLACK_APP_TOKEN to use Socket Mode)"
        )
    return token


class SlackBot:
    """One Bolt app wired to the service; ``handled`` counts events and commands processed.

    ``clock`` times streamed answers (a test passes a simulated one to roll a stream over).
    """

    def __init__(
        self, settings: Settings, service: ConversationService, clock: Clock = time.monotonic
    ) -> None:
        token = require_tokens(settings)
        oauth = oauth_settings(settings, service.installations)
        secret = settings.slack_signing_secret
        self.service = service
        self.handled = 0
        self._secret = secret.get_secret_value() if secret else ""
        self.client = AsyncWebClient(token=token, base_url=settings.slack_api_url)
        self.client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        self.client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))  # a 500 blip
        access = Access(settings.slack_allowed_channels, settings.slack_allowed_users)
        streams = Streams(clock)
        self._messages = MessageHandler(
            service, access, streams, SlackFiles(settings), People()
        )
        self._commands = CommandHandler(service, access)
        self._approvals = ApprovalHandler(service, access, streams)
        self._feedback = FeedbackHandler(service, access)
        self._gestures = Gestures(service, access)
        self._home = HomeTab(service)
        self.app = AsyncApp(
            name="backtrack",
            client=self.client,
            # Socket Mode requests are not signed; HTTP mode refuses to start without it.
            signing_secret=secret.get_secret_value() if secret else "",
            oauth_settings=oauth,
            logger=logging.getLogger("bots.slack.bolt"),
        )
        if oauth is not None:  # app_uninstalled / tokens_revoked delete the installation
            self.app.enable_token_revocation_listeners()
        threads = AssistantThreads(settings.slack_greeting, settings.slack_suggested_prompts, access)
        self.app.assistant(threads.middleware)
        self.app.event("message")(self._on_event)
        self.app.event("app_mention")(self._on_event)
        for name in SLASH_COMMANDS:
            self.app.command(f"/{name}")(self._on_command)
        self.app.action(ACTIONS)(self._on_action)
        self.app.action(FEEDBACK)(self._on_feedback)
        self.app.action(RETRY)(self._on_gesture)
        self.app.action(VERSIONS)(self._on_gesture)
        self.app.shortcut(REWIND_HERE)(self._on_rewind_here)
        self.app.event("app_home_opened")(self._on_home)

    async def _counted(self, work: Awaitable[None]) -> None:
        """Run one listener's work; ``handled`` counts it however it ends (tests wait on it)."""
        try:
            await work
        finally:
            self.handled += 1

    async def _on_event(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """Every listener uses bolt's ``client``: the one with this workspace's token."""
        if event.get("subtype") == "message_changed":  # an edit: maybe a new version of a turn
            await self._counted(self._gestures.on_edit(body, event, client, context.bot_user_id))
        else:
            await self._counted(self._messages.handle(body, event, client, context.bot_user_id))

    async def _on_command(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await self._counted(self._commands.handle(command, respond))

    async def _on_action(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        await self._counted(self._approvals.handle(body, client, respond))

    async def _on_feedback(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await self._counted(self._feedback.on_feedback(body, respond))

    async def _on_gesture(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        await self._counted(self._gestures.on_click(body, client, respond))

    async def _on_rewind_here(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()
        await self._counted(self._feedback.on_rewind_here(body, respond, context.bot_user_id, context.bot_id))

    async def _on_home(self, body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        workspace = workspace_of(body, str(body.get("team_id", "")))
        await self._counted(self._home.opened(event, workspace, client))

    def web_app(self, max_body_bytes: int) -> web.Application:
        """The HTTP mode server: Slack's Events API, slash commands and clicks, health and metrics."""
        app = web.Application(client_max_size=max_body_bytes)

        verifier = SignatureVerifier(self._secret)

        async def events(request: web.Request) -> web.Response:
            try:
                bolt_request = await to_bolt_request(request)
            except ValueError:  # a body that is not JSON or a form: bolt parses it before any check
                if not verifier.is_valid_request(await request.text(), dict(request.headers)):
                    return web.json_response({"error": "invalid request"}, status=401)
                return web.json_response({"error": "the body is not valid JSON or form data"}, status=400)
            return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

        app.router.add_post(EVENTS_PATH, events)
        if (flow := self.app.oauth_flow) is not None:  # installing into a workspace (OAuth)

            async def install(request: web.Request) -> web.Response:
                answer = await flow.handle_installation(await to_bolt_request(request))
                return await to_aiohttp_response(answer)

            async def redirect(request: web.Request) -> web.Response:
                return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

            app.router.add_get(flow.install_path, install)
            app.router.add_get(flow.redirect_uri_path, redirect)
        add_health_routes(app, self.service)
        return app
