"""A zero-latency chat model with realistic message sizes, for the benchmark.

It answers instantly so the benchmark measures persistence, not a model. Questions the
benchmark marks with ``SEARCH_MARK`` get a ``web_search`` tool call first, so the tools
node and its checkpoints run as they do in production. Each answer starts with the
question's tag and the number of messages the model was sent, which lets the benchmark
check that a conversation carried its context.
"""

from __future__ import annotations

import random
import uuid

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from core.agents.demo_model import RuleChatModel

__all__ = [
    "ANSWER_CHARS",
    "QUESTION_CHARS",
    "SEARCH_EVERY",
    "SEARCH_MARK",
    "ScriptedChatModel",
    "question",
]

QUESTION_CHARS = 200
ANSWER_CHARS = 400
SEARCH_EVERY = 4
"""Every fourth question asks for a web search."""
SEARCH_MARK = "(search)"
_WORDS = (
    "the a of to and in is it that for on with as was at by be this from or have an they "
    "which one you were all we when there can more if out so what up about into than them "
    "only other new some could time these two may then do first any my now such like our "
    "over man me even most made after also did many before must through back years where "
    "much your way well down should because each just those people how too little state "
    "good very make world still own see men work long get here between both life being "
    "under never day same another know while last might us great old year off come since "
    "against go came right used take three database question answer search thread rewind"
).split()


def _pad(text: str, size: int) -> str:
    """``text`` followed by varied words (not a repeated phrase, which compresses unrealistically)."""
    rng = random.Random(text)
    words = [text]
    length = len(text)
    while length < size:
        words.append(rng.choice(_WORDS))
        length += len(words[-1]) + 1
    return " ".join(words)[:size]


def question(tag: str, turn: int) -> str:
    """The benchmark's question for ``turn``: ``QUESTION_CHARS`` long, tagged for checking."""
    mark = f" {SEARCH_MARK}" if turn % SEARCH_EVERY == 0 else ""
    return _pad(f"[{tag}#{turn}]{mark}", QUESTION_CHARS)


def tag_of(text: str) -> str:
    return text[1 : text.index("]")] if text.startswith("[") and "]" in text else ""


class ScriptedChatModel(RuleChatModel):
    @property
    def _llm_type(self) -> str:
        return "backtrack-bench-scripted"

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        asked = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        tag = tag_of(asked.text) if asked is not None else ""
        if isinstance(last, HumanMessage) and SEARCH_MARK in last.text:
            call = {"name": "web_search", "args": {"query": f"facts for {tag}"},
                    "id": f"call_{uuid.uuid4().hex[:12]}"}
            return AIMessage(content="", tool_calls=[call])
        used_tool = isinstance(last, ToolMessage)
        head = f"[{tag}] saw {len(messages)} messages{' after search' if used_tool else ''}."
        return AIMessage(content=_pad(head, ANSWER_CHARS))
