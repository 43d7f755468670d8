"""How an attached file reaches the model: references in the checkpoint, content parts in the call.

A checkpoint never holds a file. The human message holds a marker in its text
(``[attached: chart.png]``, which history shows) and, in ``additional_kwargs``, small
references (sha256, name, mime, kind); the bytes live once in PostgreSQL
(``core/storage/files.py``). Right before each call to the model, ``resolver`` turns the
window's references into OpenAI content parts: an image becomes an ``image_url`` part with
a ``data:`` URL, a text file or a PDF a text part. Reading and checking what people attach
is the conversation layer's (``core/conversations/files.py``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, HumanMessage

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "IMAGE_TOKENS", "REFS", "LoadFiles", "Resolve", "attachment_tokens", "refs_of", "resolver", "vision_on",
]

Resolve = Callable[[list[BaseMessage], str], Awaitable[list[BaseMessage]]]
"""Turns a window's file references into content parts, for one call to the model named."""

LoadFiles = Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]
"""sha256s -> their stored rows (``mime``, ``text``, and ``data`` for the images)."""

IMAGE_TOKENS = 765
"""What one image counts in the context window: OpenAI's cost of a 1024x1024 image in detail."""

REFS = "attachments"
"""The ``additional_kwargs`` key of a human message's file references."""

_VISION_MODELS = re.compile(r"^(?:.*/)?(?:gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o[1-9])", re.IGNORECASE)


def vision_on(settings: Settings, model: str | None = None) -> bool:
    """Whether ``model`` (default BACKTRACK_MODEL; a place's own, via ``/model``) is sent images.

    ``BACKTRACK_VISION``: ``auto`` trusts the model's name (gpt-4o*, gpt-4.1*, gpt-5*, o1…).
    """
    if settings.vision != "auto":
        return settings.vision == "true"
    return not settings.offline_model and bool(_VISION_MODELS.match(model or settings.model))


def refs_of(message: BaseMessage) -> list[dict[str, Any]]:
    refs = message.additional_kwargs.get(REFS) if isinstance(message, HumanMessage) else None
    return [r for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


def attachment_tokens(message: BaseMessage) -> int:
    """What a message's files add to the context window: never the size of the bytes."""
    refs = refs_of(message)
    return sum(IMAGE_TOKENS if r.get("kind") == "image" else int(r.get("chars", 0)) // 4 + 8 for r in refs)


def resolver(load: LoadFiles, settings: Settings) -> Resolve:
    """The ``Resolve`` the agents call: references in, the files' content parts out; images
    only for a model that reads them (the turn's, which a place may have chosen)."""

    async def resolve(messages: list[BaseMessage], model: str) -> list[BaseMessage]:
        wanted = {r["sha256"] for m in messages for r in refs_of(m) if "sha256" in r}
        if not wanted:
            return messages
        found = await load(sorted(wanted))
        vision = vision_on(settings, model)
        return [_parts(m, found, vision) if refs_of(m) else m for m in messages]

    return resolve


def _parts(message: BaseMessage, found: dict[str, Any], vision: bool) -> BaseMessage:
    parts: list[str | dict[str, Any]] = [{"type": "text", "text": message.text}]
    for ref in refs_of(message):
        name, row = ref.get("name", "file"), found.get(ref.get("sha256", ""))
        if row is None:
            parts.append({"type": "text", "text": f"[{name} is no longer stored]"})
        elif row["text"] is not None:
            text = row["text"]
            cut = f"\n[{name} was cut to its first {len(text):,} characters]" if ref.get("cut") else ""
            parts.append({"type": "text", "text": f"--- {name} ---\n{text}{cut}\n--- end of {name} ---"})
        elif vision:
            url = f"data:{row['mime']};base64,{base64.b64encode(row['data']).decode()}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        else:
            note = f"[{name} is an image; this model does not read images]"
            parts.append({"type": "text", "text": note})
    return HumanMessage(content=parts, id=message.id, name=message.name)
