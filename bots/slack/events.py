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

from bots.slack.places import Access, is_dm, reply_thread, thread_key
from bots.slack.replies import StreamingReply, approval_buttons, post_text
from core.commands import SORRY, parse_command, run_command, user_message
from core.errors import BacktrackError

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from core.keys import ThreadKey
    from core.service import ConversationService

__all__ = ["SORRY", "Incoming", "MessageHandler", "read_message"]

_log = logging.getLogger(__name__)

# Plain messages, replies also sent to the channel, and messages with a file carry user
# text; every other subtype (edits, deletions, joins, bot messages, ...) is ignored.
_ANSWERED_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


@dataclass(frozen=True, slots=True)
class Incoming:
    team: str
    channel: str
    user: str
    ts: str
    thread_ts: str | None
    text: str
    """The text without the bot's mention, with Slack's &amp;/&lt;/&gt; decoded."""
    mentioned: bool

    @property
    def key(self) -> ThreadKey:
        return thread_key(self.team, self.channel, self.ts, self.thread_ts)

    @property
    def reply_to(self) -> str | None:
        return reply_thread(self.channel, self.ts, self.thread_ts)


def read_message(body: dict[str, Any], event: dict[str, Any], bot_user: str | None) -> Incoming | None:
    """The message a person wrote, or None for anything the bot must not answer."""
    if event.get("bot_id") or event.get("subtype") not in _ANSWERED_SUBTYPES:
        return None
    team = body.get("team_id") or event.get("team")
    fields = (team, event.get("channel"), event.get("user"), event.get("ts"), event.get("text"))
    if not all(isinstance(f, str) and f for f in fields) or event.get("user") == bot_user:
        return None
    team, channel, user, ts, text = (str(f) for f in fields)
    thread_ts = event.get("thread_ts")
    mention = re.compile(rf"<@{re.escape(bot_user)}(?:\|[^>]*)?>") if bot_user else None
    mentioned = event.get("type") == "app_mention" or bool(mention and mention.search(text))
    if mention is not None:
        text = mention.sub(" ", text)
    return Incoming(
        team=team,
        channel=channel,
        user=user,
        ts=ts,
        thread_ts=thread_ts if isinstance(thread_ts, str) and thread_ts else None,
        text=html.unescape(text).strip(),
        mentioned=mentioned,
    )


class MessageHandler:
    def __init__(self, service: ConversationService, access: Access) -> None:
        self._service = service
        self._access = access

    async def handle(
        self, body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, bot_user: str | None
    ) -> None:
        message = read_message(body, event, bot_user)
        if message is None or not self._access.allows(message.channel, message.user):
            return
        reply = StreamingReply(client, message.channel, message.reply_to)
        # Until the message is claimed, a failure is reported only where it is surely for the
        # bot, and once: an outage must not make the bot reply to every thread it can read, and
        # a channel mention comes twice (``app_mention`` and ``message``): its ``app_mention``
        # reports it.
        addressed = is_dm(message.channel) or event.get("type") == "app_mention"
        try:
            if not await self._concerns_bot(message):
                return
            addressed = addressed or not message.mentioned  # a follow-up comes only once
            if not await self._claim(body, message):
                return
            addressed = True
            await self._respond(message, reply, client, body.get("event_id"))
        except BacktrackError as exc:
            _log.info("slack message %s/%s refused: %s", message.channel, message.ts, exc.code)
            if addressed:
                await reply.fail(user_message(exc))
        except Exception:  # the outermost boundary of a Slack event
            _log.error("slack message %s/%s failed", message.channel, message.ts, exc_info=True)
            if addressed:
                await reply.fail(SORRY)

    async def _concerns_bot(self, message: Incoming) -> bool:
        """A DM, a mention, or a reply in a thread that already is a conversation."""
        if is_dm(message.channel) or message.mentioned:
            return True
        return message.thread_ts is not None and await self._service.exists(message.key)

    async def _claim(self, body: dict[str, Any], message: Incoming) -> bool:
        event_id = body.get("event_id")
        if isinstance(event_id, str) and not await self._service.claim_event(f"slack:event:{event_id}"):
            _log.info("slack event %s already handled", event_id)
            return False
        own = f"slack:message:{message.team}:{message.channel}:{message.ts}"
        return await self._service.claim_event(own)

    async def _respond(
        self, message: Incoming, reply: StreamingReply, client: AsyncWebClient, event_id: object
    ) -> None:
        key = message.key
        command = parse_command(message.text, "!")
        if command is not None:
            _log.info("slack command !%s on %s", command.name, key)
            text = await run_command(self._service, key, command, message.user)
            await post_text(client, message.channel, message.reply_to, text)
            return
        await reply.start()
        answer = await self._service.ask(
            key,
            message.text,
            user=message.user,
            on_partial=reply.partial,
            event_id=event_id if isinstance(event_id, str) else None,
        )
        approval = answer.approval
        await reply.finish(answer.text, approval_buttons(approval.id) if approval else None)
