"""Who said what: each person's message carries their name, so the model can tell people apart.

The name travels on the stored ``HumanMessage`` (its ``name``), never in its text: the
turn table and the checkpoint keep what the person typed. When the model is called and
two or more people speak in what it is sent, each of their messages is sent as
``Ana María: text``. A text prefix, not OpenAI's ``name`` field: that field accepts only
``^[a-zA-Z0-9_-]{1,64}$`` (no spaces, no accents) and many local servers ignore it,
while a prefix reaches every model with the name as people write it. With one person the
messages go out unchanged. The ``name`` field itself is never sent.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from langchain_core.messages import HumanMessage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.messages import BaseMessage

__all__ = ["MAX_NAME", "for_model", "speaker_name"]

MAX_NAME = 64
_UNSAFE = re.compile(r"[\x00-\x1f\x7f:]+")


def speaker_name(name: str | None, fallback: str | None = None) -> str | None:
    """A display name fit for a prefix: one short line without colons; else ``fallback``."""
    cleaned = " ".join(_UNSAFE.sub(" ", name or "").split())[:MAX_NAME]
    return cleaned or fallback


def for_model(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The window as the model is sent it: names as prefixes when several people speak."""
    named = {m.name for m in messages if isinstance(m, HumanMessage) and m.name}
    if not named:
        return list(messages)
    several = len(named) > 1
    sent: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, HumanMessage) and message.name:
            content = message.content
            if several:
                prefix = f"{message.name}: "
                content = prefix + content if isinstance(content, str) else [
                    {"type": "text", "text": prefix}, *content
                ]
            message = message.model_copy(update={"name": None, "content": content})
        sent.append(message)
    return sent
