"""Splitting long answers: every piece fits, no code block is cut open, no text is lost."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bots.chunking import split_first, split_message

words = st.text(alphabet=st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="`"), min_size=1, max_size=40)
code = st.builds(
    lambda lang, lines: f"```{lang}\n" + "\n".join(lines) + "\n```",
    st.sampled_from(["", "python", "sql"]),
    st.lists(st.text(alphabet="abcdef(){} =;\t", max_size=120), min_size=1, max_size=80),
)
documents = st.lists(st.one_of(words, code), min_size=1, max_size=40).map("\n\n".join)


def _visible(text: str) -> str:
    """The text without fences and whitespace: what must survive splitting."""
    return re.sub(r"\s+", "", re.sub(r"```\w*", "", text))


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([60, 200, 2000, 3000]))
def test_pieces_fit_and_code_blocks_stay_closed(text: str, limit: int) -> None:
    pieces = split_message(text, limit)
    assert all(len(p) <= limit for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces) or text.count("```") % 2 == 1
    assert _visible("\n".join(pieces)) == _visible(text)


def test_short_text_is_one_piece() -> None:
    assert split_message("hello", 2000) == ["hello"]


def test_prefers_paragraph_breaks() -> None:
    text = "a" * 50 + "\n\n" + "b" * 50
    assert split_message(text, 80) == ["a" * 50, "b" * 50]


def test_a_code_block_longer_than_the_limit_is_closed_and_reopened() -> None:
    block = "```python\n" + "\n".join(f"x = {i}" for i in range(100)) + "\n```"
    pieces = split_message(block, 200)
    assert len(pieces) > 1
    assert all(p.startswith("```python\n") and p.endswith("```") for p in pieces)



@settings(max_examples=200, deadline=None)
@given(documents, st.sampled_from([60, 200, 3000]))
def test_the_first_cut_says_exactly_how_much_text_it_used(text: str, limit: int) -> None:
    """A streaming adapter continues at ``text[used:]``: nothing may be lost or shown twice."""
    if len(text) <= limit:
        return
    head, reopen, used = split_first(text, limit)
    assert len(head) <= limit and head.count("```") % 2 == 0
    assert _visible(head) + _visible(text[used:]) == _visible(text)
    assert text[:used].rstrip().startswith(head.removesuffix("```").rstrip())
    assert (reopen != "") == (head.endswith("\n```") and text[:used].count("```") % 2 == 1)
