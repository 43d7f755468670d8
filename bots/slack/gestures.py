"""Time travel by gesture in Slack: edit a message to fork, Try again, previous and next.

Under every answer, next to 👍/👎: a row with 🔄 Try again and, when the turn has other
versions, previous, the "2/3" label (a click lists the versions to the clicker) and next
(``answer_footer`` in ``bots/slack/feedback.py``). Like the feedback buttons they carry only
the answer's turn, so a click works on any instance, after a restart.

An edit reaches the bot as a ``message_changed`` event (through the ``message.*``
subscriptions it already has). Slack sends one for unfurls and for the bot's own streamed
edits too, so an edit counts only when a person changed their own message's text; the core
decides the rest (``core/conversations/edits.py``). The new answer is posted in the thread,
after the edited message; the old one is edited to a short line linking to it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bots.slack.events import read_message
from bots.slack.feedback import (
    LIST_VERSIONS,
    NEXT,
    RETRY,
    TURN_VALUE,
    answer_footer,
    clicked_at,
    ephemeral,
    text_of,
)
from bots.slack.places import reply_thread
from bots.slack.replies import LIMIT, SLACK_ERRORS, StreamingReply, escape, section
from core.conversations.boundary import boundary
from core.conversations.wording import SUPERSEDED, format_versions
from core.errors import InvalidInput, NotPermitted
from core.types import Answer

if TYPE_CHECKING:
    from slack_bolt.context.respond.async_respond import AsyncRespond
    from slack_sdk.web.async_client import AsyncWebClient

    from bots.slack.feedback import Clicked
    from bots.slack.places import Access
    from core.conversations.edits import Edited
    from core.conversations.service import ConversationService
    from core.records import Turn

__all__ = ["Gestures"]

_log = logging.getLogger(__name__)

class Gestures:
    def __init__(self, service: ConversationService, access: Access) -> None:
        self._service = service
        self._access = access

    # -- an edited message -------------------------------------------------------------

    async def on_edit(
        self, body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, bot_user: str | None
    ) -> None:
        changed, before = event.get("message"), event.get("previous_message")
        if not isinstance(changed, dict) or changed.get("bot_id"):
            return
        edit_id = text_of((changed.get("edited") or {}).get("ts"))
        if not edit_id or (isinstance(before, dict) and before.get("text") == changed.get("text")):
            return  # an unfurl, a file's preview, a pin: not a person rewriting their message
        as_new = {**changed, "type": "message", "channel": event.get("channel")}
        message = read_message(body, as_new, bot_user)
        if message is None or not self._access.allows(message.channel, message.user):
            return

        async def tell(text: str) -> None:
            await client.chat_postEphemeral(
                channel=message.channel, user=message.user, thread_ts=message.reply_to, text=escape(text)
            )

        async with boundary(tell, f"slack edit {message.channel}/{message.ts}"):
            key = await self._service.current(message.key)
            edited = await self._service.gestures.edit(
                key, f"{message.channel}:{message.ts}", message.user, message.text, edit_id
            )
            if edited is None:
                return
            _log.info("slack edit of %s on %s: a new version", message.ts, key)
            ts = await self._post(client, message.channel, message.reply_to, edited)
            if edited.superseded and ts:
                await self._supersede(client, message.channel, edited.superseded, ts)

    async def _post(
        self, client: AsyncWebClient, channel: str, thread_ts: str | None, edited: Edited
    ) -> str | None:
        """Post a gesture's answer in the thread with its buttons; the core hears where it went."""
        answer = edited.answer
        reply = StreamingReply(client, channel, thread_ts)
        await reply.finish(answer.text, answer.approval, footer=answer_footer(answer))
        if reply.shown_ts:
            await self._service.gestures.posted(answer.key, edited, reply.shown_ts)
        return reply.shown_ts

    @staticmethod
    async def _supersede(client: AsyncWebClient, channel: str, old: str, new: str) -> None:
        """The old answer becomes a line pointing to the new one (its buttons go; it stays stored)."""
        try:
            link = (await client.chat_getPermalink(channel=channel, message_ts=new))["permalink"]
            line = f"{SUPERSEDED} \u2014 <{link}|the new answer>"
            await client.chat_update(channel=channel, ts=old, text=line, blocks=[section(line)])
        except SLACK_ERRORS as exc:  # the new answer is posted; a stale old one only misleads a little
            _log.warning("could not mark the old answer in %s: %s", channel, type(exc).__name__)

    # -- clicks ------------------------------------------------------------------------

    async def on_click(self, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        """Try again, previous, next or the version label under an answer."""
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        match = TURN_VALUE.match(text_of(action.get("value")))
        where = clicked_at(body, int(match["generation"])) if match and not match["vote"] else None
        if match is None or where is None:
            _log.warning("slack version click without a usable turn, channel or user; ignored")
            return
        checkpoint, action_id, tell = match["checkpoint"], action.get("action_id"), ephemeral(respond)
        async with boundary(tell, f"slack {action_id} on {where.key}"):
            if not self._access.allows(where.channel, where.user):
                raise NotPermitted("backtrack is not enabled for you in this channel")
            trigger = text_of(body.get("trigger_id"))
            if trigger and not await self._service.first_delivery(where.key, ("action", trigger)):
                return
            if action_id == RETRY:
                edited = await self._service.gestures.retry(where.key, checkpoint, where.ts, where.user)
                thread = reply_thread(where.channel, where.ts, where.thread_ts)
                await self._post(client, where.channel, thread, edited)
            elif action_id == LIST_VERSIONS:
                shown = await self._service.gestures.version(where.key, checkpoint)
                await tell(format_versions(await self._service.versions(where.key, checkpoint), shown.turn))
            else:
                await self._switch(client, where, checkpoint, forward=action_id == NEXT)

    async def _switch(self, client: AsyncWebClient, where: Clicked, checkpoint: str, forward: bool) -> None:
        """Continue on the neighbouring version, shown in place of the clicked answer."""
        shown = await self._service.gestures.version(where.key, checkpoint)
        target = shown.next if forward else shown.previous
        if target is None:
            raise InvalidInput(f"This is the {'newest' if forward else 'first'} version of this answer.")
        chosen = (await self._service.gestures.switch(where.key, target, where.user)).turn
        _log.info("slack switch on %s to version %d of %d", where.key, chosen.version, chosen.versions)
        text = escape(_cut(chosen))
        footer = answer_footer(Answer(where.key, chosen.answer, chosen)) or []
        blocks = [section(text), *footer]
        await client.chat_update(channel=where.channel, ts=where.ts, text=text, blocks=blocks)


def _cut(turn: Turn) -> str:
    """An answer shown in place of another fits one message; the rest is in the turn."""
    return turn.answer if len(turn.answer) <= LIMIT else turn.answer[: LIMIT - 1] + "…"
