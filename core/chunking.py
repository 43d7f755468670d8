"""Split a long answer into messages a platform accepts, never inside a code block.

A cut prefers a paragraph break, then a line break, then a space. If a cut must fall
inside a fenced code block (one longer than the limit), the fence is closed at the end of
the piece and reopened, with its language, at the start of the next.
"""

from __future__ import annotations

import re

__all__ = ["split_message"]

_FENCE = re.compile(r"^```(\S*)", re.MULTILINE)


def _open_fence(text: str) -> str | None:
    """The info string of a fence left open at the end of ``text``, else None."""
    lang: str | None = None
    for match in _FENCE.finditer(text):
        lang = None if lang is not None else match.group(1)
    return lang


def split_message(text: str, limit: int) -> list[str]:
    if limit < 20:
        raise ValueError("limit must leave room for code fences")
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        budget = limit - 4  # room for a closing "\n```"
        cut = _best_cut(rest, budget)
        head, rest = rest[:cut], rest[cut:]
        lang = _open_fence(head)
        if lang is not None:
            head = head.rstrip("\n") + "\n```"
            rest = f"```{lang}\n" + rest.lstrip("\n")
        else:
            rest = rest.lstrip("\n ")
        if head.strip():
            pieces.append(head.rstrip())
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
