"""Split a long answer into messages a platform accepts, never inside a code block.

A cut prefers a paragraph break, then a line break, then a space. If a cut must fall
inside a fenced code block (one longer than the limit), the fence is closed at the end of
the piece and reopened, with its language, at the start of the next.
"""

from __future__ import annotations

import re

__all__ = ["open_fence", "split_first", "split_message"]

_FENCE = re.compile(r"^```(\S*)", re.MULTILINE)


def _open_fence(text: str) -> str | None:
    """The info string of a fence left open at the end of ``text``, else None."""
    lang: str | None = None
    for match in _FENCE.finditer(text):
        lang = None if lang is not None else match.group(1)
    return lang


def open_fence(text: str) -> str | None:
    """The info string (maybe "") of a code fence ``text`` leaves open, else None."""
    return _open_fence(text)


def split_first(text: str, limit: int) -> tuple[str, str, int]:
    """The first piece of a text longer than ``limit``: ``(head, reopen, used)``.

    ``used`` characters of ``text`` went into ``head`` (with the whitespace dropped at the
    cut); the next piece is ``reopen + text[used:]``, ``reopen`` being the fence to reopen
    when the cut fell inside a code block. A streaming adapter cuts with this as it goes.
    """
    if limit < 20:
        raise ValueError("limit must leave room for code fences")
    cut = _best_cut(text, limit - 4)  # room for a closing "\n```"
    head, rest = text[:cut], text[cut:]
    lang = _open_fence(head)
    if lang is not None:
        stripped = rest.lstrip("\n")
        return head.rstrip("\n") + "\n```", f"```{lang}\n", len(text) - len(stripped)
    stripped = rest.lstrip("\n ")
    return head.rstrip(), "", len(text) - len(stripped)


def split_message(text: str, limit: int) -> list[str]:
    if limit < 20:
        raise ValueError("limit must leave room for code fences")
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        head, reopen, used = split_first(rest, limit)
        rest = reopen + rest[used:]
        if head.strip():
            pieces.append(head)
    if rest.strip() or not pieces:
        pieces.append(rest.rstrip() if pieces else rest)
    return pieces


def _best_cut(text: str, budget: int) -> int:
    window = text[:budget]
    inside = _open_fence(window) is not None
    # Outside code, prefer to end just before a fence opens, so a block is not split at all.
    if not inside:
        last_fence = max((m.start() for m in _FENCE.finditer(window)), default=-1)
        if last_fence > budget // 4 and _open_fence(window[:last_fence]) is None:
            return last_fence
    for sep in ("\n\n", "\n", " "):
        at = window.rfind(sep)
        if at > budget // 4:
            return at + len(sep)
    return budget
