"""Model servers as local ones behave: a context smaller than BACKTRACK_CONTEXT_TOKENS, tools ignored without tool_choice."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from core.conversations.wording import user_message
from core.errors import AgentFailed, ContextTooLong, MessageTooLong, SettingsError
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, Reply, ToolCall

LONG = "word " * 150  # about 190 approximate tokens per message


@pytest.mark.parametrize("style", ["llama", "openai"])
async def test_a_context_overflow_says_what_helps_and_tells_the_operator_once(
    style: str, make_settings: Callable[..., Settings], fake_llm: FakeOpenAI,
    unique: Callable[[str], str], caplog: pytest.LogCaptureFixture,
) -> None:
    fake_llm.context_limit, fake_llm.overflow_style = 512, style
    key = ThreadKey.api(unique("ctx"))
    caplog.set_level(logging.DEBUG, logger="core.agents.agent")
    async with open_service(make_settings()) as service:
        await service.ask(key, LONG)
        with pytest.raises(ContextTooLong) as raised:
            for _ in range(5):
                await service.ask(key, LONG)
        turns = len(await service.history(key))
        with pytest.raises(ContextTooLong):
            await service.ask(key, "and again: " + LONG)
        assert len(await service.history(key)) == turns  # a refused turn changes nothing

        text = user_message(raised.value)
        assert "try again" not in text.replace("trying again will not help", "")
        assert "/rewind" in text and "/forget" in text and "BACKTRACK_CONTEXT_TOKENS" in text
        assert raised.value.code == "context_too_long" and isinstance(raised.value, AgentFailed)

        warnings = [r for r in caplog.records if r.name == "core.agents.agent" and r.levelno == logging.WARNING]
        assert len(warnings) == 1  # once per process, not once per refused turn
        assert "BACKTRACK_CONTEXT_TOKENS is 16000" in warnings[0].getMessage()
        assert "the server's context is 512 tokens" in warnings[0].getMessage()

        assert turns == 1
        await service.rewind(key, 1)  # what the message advises does help
        assert (await service.ask(key, "short")).text.startswith("heard: ")


async def test_a_smaller_context_budget_avoids_the_overflow(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    fake_llm.context_limit = 512
    key = ThreadKey.api(unique("fit"))
    async with open_service(make_settings(BACKTRACK_CONTEXT_TOKENS=300)) as service:
        for i in range(6):
            answer = await service.ask(key, f"{i} {LONG}")
        assert answer.text.startswith("heard: 5 ")
        assert len(await service.history(key, limit=20)) == 6


async def test_other_bad_requests_stay_ordinary_failures(
    service: object, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    from core.conversations.service import ConversationService
    from tests.fakes.openai_server import Fail

    assert isinstance(service, ConversationService)
    fake_llm.queue(Fail(400, "Invalid value for 'temperature'"))
    with pytest.raises(AgentFailed) as raised:
        await service.ask(ThreadKey.api(unique("bad")), "hi")
    assert not isinstance(raised.value, ContextTooLong)


async def test_tools_run_on_a_server_that_ignores_them_without_tool_choice(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    fake_llm.drop_tools_without_choice = True
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}), Reply("Paris."))
    async with open_service(make_settings()) as service:
        answer = await service.ask(ThreadKey.api(unique("tc")), "What is the capital of France?")
    assert answer.text == "Paris."
    assert fake_llm.requests[0]["tool_choice"] == "auto"
    tool_results = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_results and "Paris" in tool_results[0]["content"]


async def test_without_tool_choice_such_a_server_never_calls_a_tool(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    """What ``BACKTRACK_TOOL_CHOICE=omit`` costs on llama-cpp-python: the reason ``auto`` is the default."""
    fake_llm.drop_tools_without_choice = True
    fake_llm.queue(ToolCall("web_search", {"query": "capital of France"}))
    async with open_service(make_settings(BACKTRACK_TOOL_CHOICE="omit")) as service:
        answer = await service.ask(ThreadKey.api(unique("omit")), "What is the capital of France?")
    assert "tool_choice" not in fake_llm.requests[0] and fake_llm.requests[0]["tools"]
    assert answer.text.startswith("(no tools were offered") and len(fake_llm.requests) == 1


def test_tool_choice_names_the_variable_when_malformed(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(SettingsError, match="BACKTRACK_TOOL_CHOICE"):
        make_settings(BACKTRACK_TOOL_CHOICE="always")


async def test_a_server_smaller_than_the_budget_is_named_at_start(
    make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="core.agents.model_probe")
    fake_llm.context_limit = 512
    async with open_service(make_settings()):
        pass
    async with open_service(make_settings(BACKTRACK_CONTEXT_TOKENS=384)):
        pass
    fake_llm.context_limit = None  # a server that does not say (OpenAI, vLLM): nothing to warn about
    async with open_service(make_settings()):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "BACKTRACK_CONTEXT_TOKENS is 16000 but the model server's context is 512 tokens: long "
        "conversations will be refused; set BACKTRACK_CONTEXT_TOKENS to about 384"
    ]


@pytest.mark.parametrize("team", [False, True])
async def test_a_message_alone_over_the_budget_is_refused_not_answered_blind(
    team: bool, make_settings: Callable[..., Settings], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    """The local-model docs suggest a small budget; a long paste then fits nothing of itself."""
    key = ThreadKey.api(unique("huge"))
    huge = "lorem ipsum dolor " * 834  # 15,012 characters, about 3,750 approximate tokens
    async with open_service(make_settings(BACKTRACK_CONTEXT_TOKENS="1500")) as service:
        await service.team(key, team)
        await service.ask(key, "hello")
        fake_llm.reset()
        with pytest.raises(MessageTooLong) as raised:
            await service.ask(key, huge)
        assert fake_llm.requests == []  # the model never saw a window without the question
        text = user_message(raised.value)
        assert "That message is too long for the model" in text and "1,500" in text
        assert [t.question for t in await service.history(key)] == ["hello"]  # nothing stored
        assert (await service.ask(key, "short again")).text.endswith("short again")
