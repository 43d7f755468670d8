"""The conversation service against a real PostgreSQL and the real langchain-openai client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from core.conversations.service import ConversationService
from core.errors import AgentFailed, ConversationNotFound, InvalidInput, RewindOutOfRange
from core.keys import ThreadKey
from tests.fakes.openai_server import Fail, FakeOpenAI, Reply, ToolCall, user_texts


async def test_follow_up_sees_earlier_turns(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("cont"))
    await service.ask(key, "My name is Ada.")
    answer = await service.ask(key, "What is my name?")
    assert answer.text == "heard: My name is Ada. | What is my name?"
    assert answer.turn is not None and answer.turn.index == 2


async def test_concurrent_conversations_never_see_each_other(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    keys = [ThreadKey.api(unique(f"iso{i}")) for i in range(6)]

    async def talk(n: int, key: ThreadKey) -> list[str]:
        return [(await service.ask(key, f"secret {n}-{i}")).text for i in range(3)]

    answers = await asyncio.gather(*(talk(n, k) for n, k in enumerate(keys)))
    for n, texts in enumerate(answers):
        assert texts[-1] == f"heard: secret {n}-0 | secret {n}-1 | secret {n}-2"
    for request in fake_llm.requests:
        owners = {text.split()[1].split("-")[0] for text in user_texts(request)}
        assert len(owners) == 1, "a model request mixed two conversations"


async def test_streaming_reports_partial_answers(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    long_answer = "word " * 60
    fake_llm.queue(Reply(long_answer))
    seen: list[str] = []

    async def on_partial(text: str) -> None:
        seen.append(text)

    answer = await service.ask(ThreadKey.api(unique("stream")), "talk", on_partial=on_partial)
    assert answer.text == long_answer
    assert len(seen) > 1 and seen[-1] == long_answer
    assert all(long_answer.startswith(s) for s in seen)


async def test_history_after_rewind_shows_only_the_live_branch(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("hist"))
    for q in ("one", "two", "three"):
        await service.ask(key, q, user="u1")
    result = await service.rewind(key, 2, user="u1")
    assert [t.question for t in result.removed] == ["two", "three"]
    assert result.head is not None and result.head.question == "one"
    answer = await service.ask(key, "four")
    assert answer.text == "heard: one | four"
    turns = await service.history(key)
    assert [(t.index, t.question) for t in turns] == [(1, "one"), (2, "four")]
    assert [t.user for t in turns] == ["u1", None]
    # the abandoned turns stay readable: rewind_to brings "three" back as the head
    back = await service.rewind_to(key, result.removed[-1].checkpoint_id)
    assert back.head is not None and back.head.question == "three"
    assert [t.question for t in await service.history(key)] == ["one", "two", "three"]


async def test_rewind_to_the_start_then_continue(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("root"))
    await service.ask(key, "alpha")
    await service.ask(key, "beta")
    result = await service.rewind(key, 2)
    assert result.head is None and len(result.removed) == 2
    assert await service.history(key) == []
    assert (await service.ask(key, "gamma")).text == "heard: gamma"
    # repeated rewinds keep working on the new branch
    await service.ask(key, "delta")
    await service.rewind(key, 1)
    assert [t.question for t in await service.history(key)] == ["gamma"]


async def test_rewind_of_a_tool_using_turn_is_one_unit(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("tool"))
    await service.ask(key, "hello")
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    answer = await service.ask(key, "What is the capital of France?")
    assert answer.text == "Paris."
    tool_results = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_results and "Paris" in tool_results[0]["content"]

    await service.rewind(key, 1)
    fake_llm.requests.clear()
    await service.ask(key, "and now?")
    sent = fake_llm.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert all(not m.get("tool_calls") for m in sent)


async def test_rewind_errors_change_nothing(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("bad"))
    with pytest.raises(ConversationNotFound):
        await service.rewind(key, 1)
    await service.ask(key, "only")
    for steps in (0, -1, 2):
        with pytest.raises(RewindOutOfRange):
            await service.rewind(key, steps)
    with pytest.raises(RewindOutOfRange):
        await service.rewind_to(key, "not-a-checkpoint")
    assert [t.question for t in await service.history(key)] == ["only"]


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x01\x02"])
async def test_empty_messages_are_refused(
    service: ConversationService, unique: Callable[[str], str], text: str
) -> None:
    key = ThreadKey.api(unique("empty"))
    with pytest.raises(InvalidInput, match="empty"):
        await service.ask(key, text)
    with pytest.raises(ConversationNotFound):
        await service.history(key)


async def test_model_failure_leaves_the_conversation_usable(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("fail"))
    await service.ask(key, "first")
    fake_llm.queue(Fail(500))
    with pytest.raises(AgentFailed):
        await service.ask(key, "second")
    assert [t.question for t in await service.history(key)] == ["first"]
    assert (await service.ask(key, "third")).text == "heard: first | third"


async def test_a_failed_first_turn_leaves_nothing_behind(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("first"))
    fake_llm.queue(Fail(500))
    with pytest.raises(AgentFailed):
        await service.ask(key, "first try")
    assert await service.exists(key) and await service.history(key) == []
    assert (await service.ask(key, "second try")).text == "heard: second try"


async def test_long_conversations_are_trimmed_for_the_model_not_in_storage(
    make_settings: Callable[..., object], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    from core.runtime import open_service

    settings = make_settings(BACKTRACK_CONTEXT_TOKENS=300)
    key = ThreadKey.api(unique("trim"))
    async with open_service(settings) as service:  # type: ignore[arg-type]
        for i in range(12):
            await service.ask(key, f"message number {i} " + "padding " * 20)
        sent = user_texts(fake_llm.requests[-1])
        assert sent[-1].startswith("message number 11")
        assert len(sent) < 12
        assert len(await service.history(key, 50)) == 12
