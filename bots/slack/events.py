"""Message events: decide whether a message is for the bot, then answer it in its thread.

A message concerns the bot when it is a direct message, mentions the bot, or is a reply
in a thread that already is a conversation. Slack delivers a channel mention twice
(``app_mention`` and ``message``) and retries deliveries it thinks failed, so every
message is claimed in PostgreSQL by event id and by its own ``ts`` before anything is
posted: whichever delivery claims it first answers, on whichever instance.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bots.slack.assistant import name_thread
from bots.slack.feedback import answer_footer
from bots.slack.places import Access, is_dm, reply_thread, thread_key, workspace_of
from bots.slack.replies import escape, post_text
from bots.slack.stream import Streams, open_reply
from core.conversations.boundary import boundary
from core.logs import span
from core.types import Incoming

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from bots.slack.files import SlackFiles
    from bots.slack.people import People
    from bots.slack.stream import SlackReply
    from core.conversations.service import ConversationService
    from core.keys import ThreadKey
    from core.types import Received

__all__ = ["MessageHandler", "SlackMessage", "read_message"]

_log = logging.getLogger(__name__)

# Plain messages, replies also sent to the channel, and messages with a file carry user
# text; every other subtype (edits, deletions, joins, bot messages, ...) is ignored.
_ANSWERED_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


@dataclass(frozen=True, slots=True)
class SlackMessage:
    team: str
    channel: str
    user: str
    ts: str
    thread_ts: str | None
    text: str
    """The text without the bot's mention, with Slack's &amp;/&lt;/&gt; decoded."""
    mentioned: bool
    files: tuple[dict[str, Any], ...] = ()
    """Slack's file objects, when the message shares files (``file_share``)."""
    workspace: str = ""
    """What the conversation key names: the Grid organisation, or ``team`` (``workspace_of``)."""

    @property
    def key(self) -> ThreadKey:
        return thread_key(self.workspace or self.team, self.channel, self.ts, self.thread_ts)

    @property
    def reply_to(self) -> str | None:
        return reply_thread(self.channel, self.ts, self.thread_ts)


def read_message(body: dict[str, Any], event: dict[str, Any], bot_user: str | None) -> SlackMessage | None:
    """The message a person wrote, or None for anything the bot must not answer."""
    if event.get("bot_id") or event.get("subtype") not in _ANSWERED_SUBTYPES:
        return None
    team = body.get("team_id") or event.get("team")
    raw_files = event.get("files")
    files = tuple(f for f in raw_files if isinstance(f, dict)) if isinstance(raw_files, list) else ()
    text = event.get("text") or ""
    fields = (team, event.get("channel"), event.get("user"), event.get("ts"))
    if not all(isinstance(f, str) and f for f in fields) or event.get("user") == bot_user:
        return None
    if not (isinstance(text, str) and (text or files)):  # only a message with files may have no text
        return None
    team, channel, user, ts = (str(f) for f in fields)
    thread_ts = event.get("thread_ts")
    mention = re.compile(rf"<@{re.escape(bot_user)}(?:\|[^>]*)?>") if bot_user else None
    mentioned = event.get("type") == "app_mention" or bool(mention and mention.search(text))
    if mention is not None:
        text = mention.sub(" ", text)
    return SlackMessage(
        team=team,
        channel=channel,
        user=user,
        ts=ts,
        thread_ts=thread_ts if isinstance(thread_ts, str) and thread_ts else None,
        text=html.unescape(text).strip(),
        mentioned=mentioned,
        files=files,
        workspace=workspace_of(body, team),
    )


class MessageHandler:
    def __init__(
        self, service: ConversationService, access: Access, streams: Streams, files: SlackFiles,
        people: People,
    ) -> None:
        self._service = service
        self._access = access
        self._streams = streams
        self._files = files
        self._people = people

    async def handle(
        self, body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, bot_user: str | None
    ) -> None:
        message = read_message(body, event, bot_user)
        if message is None or not self._access.allows(message.channel, message.user):
            return
        reply = open_reply(
            client, message.channel, message.reply_to, message.team, message.user, self._streams
        )
        event_id = body.get("event_id")
        deliveries = (("event", event_id),) if isinstance(event_id, str) and event_id else ()
        with span("slack.message", **{"messaging.system": "slack"}):
            await self._handled(message, event, deliveries, reply, client)

    async def _handled(
        self, message: SlackMessage, event: dict[str, Any], deliveries: tuple[tuple[str, str], ...],
        reply: SlackReply, client: AsyncWebClient,
    ) -> None:
        async with boundary(reply.fail, f"slack message {message.channel}/{message.ts}"):
            received = await self._receive(message, event, deliveries)
            if received is not None:
                await self._respond(message, received, reply, client)

    async def _receive(
        self, message: SlackMessage, event: dict[str, Any], deliveries: tuple[tuple[str, str], ...]
    ) -> Received | None:
        channel_mention = message.mentioned and not is_dm(message.channel)
        incoming = Incoming(
            key=message.key,
            text=message.text,
            user=message.user,
            deliveries=(*deliveries, ("message", f"{message.channel}:{message.ts}")),
            addressed=is_dm(message.channel) or message.mentioned,
            # A channel mention comes twice (``app_mention`` and ``message``): its
            # ``app_mention`` reports failures.
            echo=channel_mention and event.get("type") != "app_mention",
            command_prefixes="!",
        )
        return await self._service.receive(incoming)

    async def _respond(
        self, message: SlackMessage, received: Received, reply: SlackReply, client: AsyncWebClient
    ) -> None:
        key = received.key
        if received.command is not None:
            _log.info("slack command !%s on %s", received.command.name, key)
            text = await self._service.run(key, received.command, message.user)
            if received.command.name == "memory":  # one person's memory is shown to them alone
                await client.chat_postEphemeral(channel=message.channel, user=message.user,
                                                thread_ts=message.reply_to, text=escape(text))
                return
            await post_text(client, message.channel, message.reply_to, text)
            return
        await reply.start()
        files = await self._files.fetch(message.files, client.token)  # once the message is surely answered
        answer = await self._service.ask(
            key, received.text, user=message.user, on_partial=reply.partial, event_id=received.event_id,
            on_status=reply.status, files=files, speaker=await self._people.name(message.user, client),
        )
        with span("backtrack.deliver", **{"messaging.system": "slack"}):
            await reply.finish(answer.text, answer.approval, footer=answer_footer(answer))
        await self._service.gestures.answered(  # so that editing the message forks from this turn
            key, f"{message.channel}:{message.ts}", message.user, answer, reply.shown_ts
        )
        await name_thread(client, message.channel, message.thread_ts, received.text, answer)
