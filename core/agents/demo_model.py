"""The offline demo model: a tiny deterministic chat model that drives the real tool loop.

It stands in when no ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` is set, so ``make run`` works
on a machine with no network. It emits real tool calls (``web_search``), answers from the
tool's result, and resolves "its"/"it" from the conversation, which is just enough to show
that context survives between turns. It reaches every capability through the real path: a
sum goes to the calculator, "remember that …" to the memory tools, "create a ticket: …" to
the bundled demo MCP server (``mcp.demo.json``, whose ``create_ticket`` asks for approval),
and an attached file is read from what the model is sent. In team mode it plays each role
its system prompt names: the coordinator delegates, the researcher searches once per place
it was asked about and cites each search, the analyst computes with the calculator.

The first answer of each kind in a conversation says, once, what a real model would do
differently; the answers after it are plain. It is a demo aid, not a product feature.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

from core.agents.approvals import rejected_by
from core.agents.tools import facts

__all__ = ["OFFLINE_NOTICE", "DemoChatModel", "RuleChatModel"]

OFFLINE_NOTICE = "offline demo model: set OPENAI_API_KEY for real answers"
_TOPICS = ("capital", "population", "currency", "landmark")
_PRONOUNS = {"it", "its", "there", "their", "it's"}
_ROLE = re.compile(r"You are the (coordinator|researcher|analyst) of backtrack's team")
_MILLIONS = re.compile(r"(\w+) has a population of about ([\d.]+) million")
_ARITHMETIC = re.compile(r"(\d+(?:\.\d+)?)\s*(\+|-|\*|/|x|times|plus|minus|divided by)\s*(\d+(?:\.\d+)?)")
_OPERATORS = {"times": "*", "x": "*", "plus": "+", "minus": "-", "divided by": "/"}
_REMEMBER = re.compile(r"\bremember (?:that )?(.+?)[.!]?$", re.IGNORECASE)
_FORGET = re.compile(r"\bforget (?:that |about |my )?(.+?)[.!?]?$", re.IGNORECASE)
_CREATE_TICKET = re.compile(
    r"\b(?:create|open|file|raise) (?:a |an )?(?:new )?ticket\b\W*(?:for |about |saying )?(.*?)[.!]?$",
    re.IGNORECASE)
_LIST_TICKETS = re.compile(r"\b(?:list|show|which|what) (?:\w+ )*tickets\b", re.IGNORECASE)
_LOOKUP_TICKET = re.compile(r"\bticket #?(\d+)\b", re.IGNORECASE)
_FILE = re.compile(r"--- (.+?) ---\n(.*?)\n--- end of \1 ---", re.DOTALL)
_UNREAD = re.compile(r"not read: ([^\]]+)\]")
"""The marker of files the model is not sent (``core/conversations/files.py``), e.g. images."""
_TICKET_TOOLS = ("create_ticket", "list_tickets", "lookup_ticket")
_NOTES = {
    "search": "a real model answers any question, and searches the web when TAVILY_API_KEY is set",
    "calculator": "a real model decides by itself when a question needs the calculator",
    "tickets": "a real model chooses the MCP tool and writes its arguments from what you ask",
    "memory": "a real model decides by itself what is worth remembering, and when",
    "file": "a real model reads the whole file and answers what you ask about it; a vision model sees images",
    "team": "a real coordinator decides whom to ask and writes each brief itself",
}
"""What a real model would do differently, said once per conversation for each kind of answer."""
_KINDS = {"web_search": "search", "calculator": "calculator", "remember": "memory", "forget": "memory",
          **dict.fromkeys(_TICKET_TOOLS, "tickets")}


def _arithmetic(text: str) -> str | None:
    """``17 times 23`` → ``17 * 23``: what the analyst's calculator is asked."""
    found = _ARITHMETIC.search(text.lower())
    return f"{found[1]} {_OPERATORS.get(found[2], found[2])} {found[3]}" if found else None


def _noted(text: str, kind: str, messages: Sequence[BaseMessage]) -> AIMessage:
    """``text``, with what a real model would do differently when this conversation has not seen it."""
    note = f"(Offline demo: {_NOTES[kind]}.)"
    if any(isinstance(m, AIMessage) and note in m.text for m in messages):
        return AIMessage(content=text)
    return AIMessage(content=f"{text}\n\n{note}")


def _topic(fact: str) -> str:
    """A short topic for a fact: its last word ("I am on the payments team" → "team")."""
    words = re.findall(r"[a-z]+", fact.lower())
    return words[-1] if words else "note"


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


def _turn(messages: Sequence[BaseMessage]) -> Sequence[BaseMessage]:
    """From the last human message on: the question (or task) being worked on."""
    starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    return messages[starts[-1]:] if starts else messages


def _results(turn: Sequence[BaseMessage], tool: str) -> list[str]:
    return [m.text for m in turn if isinstance(m, ToolMessage) and m.name == tool]


def _searches(turn: Sequence[BaseMessage]) -> dict[str, str]:
    """Each query searched this turn, with what it found."""
    queries = {c["id"]: str(c["args"].get("query", "")) for m in turn if isinstance(m, AIMessage)
               for c in m.tool_calls if c["name"] == "web_search"}
    return {queries[m.tool_call_id]: m.text for m in turn
            if isinstance(m, ToolMessage) and m.tool_call_id in queries}


class DemoChatModel(RuleChatModel):
    offered: frozenset[str] = frozenset()
    """The names of the tools bound to it: a ticket is asked for only where the MCP tool is."""

    @property
    def _llm_type(self) -> str:
        return "backtrack-offline-demo"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        names = frozenset(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self.model_copy(update={"offered": names})

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        system = messages[0].text if messages and isinstance(messages[0], SystemMessage) else ""
        if role := _ROLE.match(system):
            turn = _turn(messages)
            if role.group(1) == "coordinator":
                return self._coordinate(turn, messages, "step limit" in system)
            return self._research(turn) if role.group(1) == "researcher" else self._analyse(turn)
        return self._single(messages)

    def _coordinate(
        self, turn: Sequence[BaseMessage], messages: list[BaseMessage], limited: bool
    ) -> AIMessage:
        question = turn[0].text if turn else ""
        words = set(re.findall(r"[a-z]+", question.lower()))
        subjects = list(dict.fromkeys(_entities_in(question))) or [
            s for s in [_subject(question, messages[: len(messages) - len(turn)])] if s]
        topic = next((t for t in _TOPICS if t in words), None)
        found, analysed = _results(turn, "research"), _results(turn, "analyse")
        if (sum_ := _arithmetic(question)) and not analysed and not limited:
            return self._call("analyse", {"task": f"Compute {sum_}."})
        if analysed and not found:
            return _noted("\n\n".join(analysed), "team", messages)
        if not found and not limited and (words & {"time", "date", "today"} or (subjects and topic)):
            what = f"the {topic} of {' and '.join(subjects)}" if subjects and topic else "the current date"
            return self._call("research", {"task": f"Find {what}, with sources."})
        if found and not analysed and not limited and topic == "population" and len(subjects) > 1:
            task = f"Compare the populations of {subjects[0]} and {subjects[1]}."
            return self._call("analyse", {"task": task})
        if not found:
            return AIMessage(content=f"I am the offline demo team ({OFFLINE_NOTICE}). Ask about the capital, "
                             f"population, currency or a landmark of: {', '.join(facts())}.")
        return _noted("\n\n".join([*found, *analysed]), "team", messages)

    def _research(self, turn: Sequence[BaseMessage]) -> AIMessage:
        task = turn[0].text.split("\n\n")[0] if turn else ""
        words = set(re.findall(r"[a-z]+", task.lower()))
        searched = _searches(turn)
        topic = next((t for t in _TOPICS if t in words), None)
        for subject in dict.fromkeys(_entities_in(task)) if topic else ():
            if (query := f"{topic} of {subject}") not in searched:
                return self._call("web_search", {"query": query})
        dated = _results(turn, "current_datetime")
        if words & {"date", "time"} and not dated:
            return self._call("current_datetime", {})
        lines = [f"- {found} (source: web_search “{query}”)" for query, found in searched.items()]
        lines += [f"- It is now {now} UTC (source: current_datetime)" for now in dated]
        return AIMessage(content="\n".join(["The researcher found:", *lines]) if lines else "Nothing found.")

    def _analyse(self, turn: Sequence[BaseMessage]) -> AIMessage:
        task = turn[0].text.split("\n\n")[0] if turn else ""
        if task.startswith("Compute ") and (sum_ := _arithmetic(task)):
            done = _results(turn, "calculator")
            if not done:
                return self._call("calculator", {"expression": sum_})
            return AIMessage(content=f"The analyst: {done[-1]} (worked out with the calculator tool).")
        numbers = _MILLIONS.findall(turn[0].text if turn else "")
        if len(numbers) < 2:
            return AIMessage(content="Analysis: the findings hold no two populations to compare.")
        (a, x), (b, y) = numbers[:2]
        done = _results(turn, "calculator")
        if not done:
            return self._call("calculator", {"expression": f"{x} / {y}"})
        ratio = float(done[-1].rsplit("= ", 1)[-1])
        return AIMessage(content=f"The analyst: {a} has about {ratio:.2f} times the population of {b} "
                         f"(calculator: {done[-1]}).")

    def _single(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return self._answer(last, messages)
        question = last.text if isinstance(last, HumanMessage) else ""
        if files := self._files(question):
            return _noted(files, "file", messages)
        if sum_ := _arithmetic(question):
            return self._call("calculator", {"expression": sum_})
        if ticket := self._ticket(question):
            return ticket
        words = set(re.findall(r"[a-z]+", question.lower()))
        system = messages[0].text if isinstance(messages[0], SystemMessage) else ""
        if "about me" in question.lower() and "What you know about" not in system:
            return AIMessage(content='I remember nothing about you yet: tell me, e.g. "remember that I '
                             'am on the payments team".')
        if "about me" in question.lower():
            known = system.split("What you know about", 1)[1].split(":\n", 1)[-1]
            return AIMessage(content=f"Here is what I remember about you:\n{known}")
        if remembered := _REMEMBER.search(question):  # the memory tools (core/agents/memory.py)
            return self._call("remember", {"topic": _topic(remembered[1]), "fact": remembered[1]})
        if forgotten := _FORGET.search(question):
            return self._call("forget", {"topic": _topic(forgotten[1])})
        if words & {"time", "date", "today"}:
            return self._call("current_datetime", {})
        subject = _subject(question, messages[:-1])
        topic = next((t for t in _TOPICS if t in words), None)
        if subject and topic:
            return self._call("web_search", {"query": f"{topic} of {subject}"})
        known = ", ".join(facts())
        return AIMessage(
            content=f"I am the offline demo model ({OFFLINE_NOTICE}). I can look up the capital, "
            f"population, currency or a landmark of: {known}. I can also work out a sum (\"What is 17 "
            f"times 23?\"), remember what you tell me (\"remember that …\"), create a ticket through "
            f"an MCP tool, after you approve it (\"create a ticket: printer out of toner\"), and read a "
            f"file you attach (/attach PATH in the console). /team on hands questions to a team."
        )

    def _answer(self, result: ToolMessage, messages: Sequence[BaseMessage]) -> AIMessage:
        """The answer from a tool's result: said as it is, or why the tool did not run."""
        text: str = str(result.text)
        kind = _KINDS.get(str(result.name))
        if (by := rejected_by(text)) is not None:
            return AIMessage(content=f"I did not run {result.name}: {by} rejected it.")
        if result.name == "calculator" and not text.startswith("Not calculated"):
            text = f"{text} (worked out with the calculator tool)"
        return _noted(text, kind, messages) if kind else AIMessage(content=text)

    def _ticket(self, question: str) -> AIMessage | None:
        """A ticket asked for: the demo MCP server's tool, or where to find it when it is absent."""
        create, listing = _CREATE_TICKET.search(question), _LIST_TICKETS.search(question)
        lookup = _LOOKUP_TICKET.search(question)
        if not (create or listing or lookup):
            return None
        if not set(_TICKET_TOOLS) <= self.offered:
            return AIMessage(content="There is no ticket tool here: `make run` connects the bundled demo MCP "
                             "server (mcp.demo.json), or an admin adds it with /tools add demo.")
        if create:
            return self._call("create_ticket", {"title": create[1].strip(" :") or "Untitled"})
        if listing:
            return self._call("list_tickets", {})
        return self._call("lookup_ticket", {"number": int(lookup[1]) if lookup else 0})

    @staticmethod
    def _files(question: str) -> str | None:
        """What the demo can say about attached files, from the parts the model is sent."""
        said = [f"{name}: {len(text.splitlines())} lines, {len(text):,} characters; it begins "
                f"\u201c{text.strip().splitlines()[0][:80] if text.strip() else ''}\u201d."
                for name, text in _FILE.findall(question)]
        said += [f"{names}, which this model is not sent." for names in _UNREAD.findall(question[:500])]
        return "You attached " + " ".join(said) if said else None

    @staticmethod
    def _call(name: str, args: dict[str, Any]) -> AIMessage:
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])
