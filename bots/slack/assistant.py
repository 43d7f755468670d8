"""Slack's agent view: a greeting and suggested prompts in a new thread, a title from its question.

With "Agents & AI Apps" enabled (``agent_view`` in the manifest; ``assistant_view`` is
its legacy spelling), people open a thread with the bot from Slack's top bar or split
pane. Slack sends ``assistant_thread_started``; slack-bolt 1.30's ``AsyncAssistant``
middleware routes it (and ``assistant_thread_context_changed``) here. Messages in such a
thread are ordinary DM thread messages: the middleware passes them on to the message
listener, so they are answered, deduplicated and allow-listed like any other; the first
answer of a DM thread names the thread after its question (``assistant.threads.setTitle``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant

from bots.slack.places import Access, is_dm
from bots.slack.replies import SLACK_ERRORS, escape
from core.conversations.wording import preview

if TYPE_CHECKING:
    from slack_bolt.context.say.async_say import AsyncSay
    from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import (
        AsyncSetSuggestedPrompts,
    )
    from slack_sdk.web.async_client import AsyncWebClient

    from core.types import Answer

__all__ = ["AssistantThreads", "name_thread"]

_log = logging.getLogger(__name__)

_TITLE = 60  # characters of the first question shown as the thread's title


class AssistantThreads:
    """The listeners of Slack's agent threads, as one Bolt middleware (``app.assistant``)."""

    def __init__(self, greeting: str, prompts: tuple[str, ...], access: Access) -> None:
        self._greeting = greeting
        self._prompts = prompts
        self._access = access
        self.middleware = AsyncAssistant(logger=logging.getLogger("bots.slack.bolt"))
        self.middleware.thread_started(self._started)
        # Bolt's default keeps the context in message metadata (more Web API calls); the bot
        # does not use which channel the person is looking at, so the change is only acknowledged.
        self.middleware.thread_context_changed(self._context_changed)

    async def _started(
        self, event: dict[str, Any], say: AsyncSay, set_suggested_prompts: AsyncSetSuggestedPrompts
    ) -> None:
        thread = event.get("assistant_thread")
        thread = thread if isinstance(thread, dict) else {}
        channel, user = str(thread.get("channel_id", "")), str(thread.get("user_id", ""))
        if not self._access.allows(channel, user):
            return
        try:
            await say(text=escape(self._greeting))
            if self._prompts:
                await set_suggested_prompts(prompts=list(self._prompts), thread_ts=thread.get("thread_ts"))
        except SLACK_ERRORS as exc:  # the thread still works; only the welcome is missing
            _log.warning("could not greet a new agent thread in %s: %s", channel, type(exc).__name__)

    async def _context_changed(self) -> None:
        return None


async def name_thread(
    client: AsyncWebClient, channel: str, thread_ts: str | None, question: str, answer: Answer
) -> None:
    """Title a DM thread after its first question; Slack refuses it outside agent threads."""
    if not is_dm(channel) or thread_ts is None or answer.turn is None or answer.turn.index != 1:
        return
    try:
        await client.assistant_threads_setTitle(
            channel_id=channel, thread_ts=thread_ts, title=preview(question, _TITLE)
        )
    except SLACK_ERRORS as exc:
        _log.debug("no title for %s/%s: %s", channel, thread_ts, type(exc).__name__)
