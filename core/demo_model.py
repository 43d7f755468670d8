"""The offline demo model: a tiny deterministic chat model that drives the real tool loop.

It stands in when no ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` is set, so ``make run`` works
on a machine with no network. It emits real tool calls (``web_search``), answers from the
tool's result, and resolves "its"/"it" from the conversation, which is just enough to show
that context survives between turns. It is a demo aid, not a product feature.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable

from core.tools import facts

__all__ = ["OFFLINE_NOTICE", "DemoChatModel", "RuleChatModel"]

OFFLINE_NOTICE = "offline demo model: set OPENAI_API_KEY for real answers"
_TOPICS = ("capital", "population", "currency", "landmark")
_PRONOUNS = {"it", "its", "there", "their", "it's"}


def _entities_in(text: str) -> list[str]:
    """Known entities in order of their last appearance in ``text``."""
    found = [(m.start(), name) for name in facts() for m in re.finditer(rf"\b{name}\b", text)]
    return [name for _, name in sorted(found)]


def _subject(question: str, earlier: Sequence[BaseMessage]) -> str | None:
    named = _entities_in(question)
    if named:
        return named[-1]
    if _PRONOUNS & set(re.findall(r"[a-z']+", question.lower())):
        for message in reversed(earlier):
            mentioned = _entities_in(message.text)
            if mentioned:
                return mentioned[-1]
    return None


class RuleChatModel(BaseChatModel):
    """A chat model whose reply is a function of the messages: no network, no latency.

    It knows its tools from the graph, so ``bind_tools`` changes nothing.
    """

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        # no thread hop: the default runs _generate in an executor
        return self._generate(messages, stop, None, **kwargs)

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        raise NotImplementedError


class DemoChatModel(RuleChatModel):
    @property
    def _llm_type(self) -> str:
        return "backtrack-offline-demo"

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(content=last.text)
        question = last.text if isinstance(last, HumanMessage) else ""
        words = set(re.findall(r"[a-z]+", question.lower()))
        if words & {"time", "date", "today"}:
            return self._call("current_datetime", {})
        subject = _subject(question, messages[:-1])
        topic = next((t for t in _TOPICS if t in words), None)
        if subject and topic:
            return self._call("web_search", {"query": f"{topic} of {subject}"})
        known = ", ".join(facts())
        return AIMessage(
            content=f"I am the offline demo model ({OFFLINE_NOTICE}). I can look up the capital, "
            f"population, currency or a landmark of: {known}."
        )

    @staticmethod
    def _call(name: str, args: dict[str, Any]) -> AIMessage:
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])
