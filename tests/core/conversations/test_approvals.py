"""Human in the loop: a gated tool pauses the turn until a permitted person decides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from core.conversations.service import ConversationService
from core.errors import AgentFailed, ApprovalPending, NotPermitted, StaleApproval
from core.keys import ThreadKey
from core.records import Approval
from core.runtime import open_service
from core.settings import Settings
from tests.conftest import FakeWebhook
from tests.fakes.openai_server import Fail, FakeOpenAI, Reply, ToolCall


@pytest.fixture
def hitl_settings(make_settings: Callable[..., Settings], fake_webhook: FakeWebhook) -> Settings:
    return make_settings(BACKTRACK_WEBHOOK_URL=fake_webhook.url)


@pytest.fixture
async def hitl(hitl_settings: Settings) -> AsyncIterator[ConversationService]:
    async with open_service(hitl_settings) as service:
        yield service


def wants_to_post(fake_llm: FakeOpenAI, message: str, answer: str = "Posted it.") -> None:
    fake_llm.queue(ToolCall("post_to_webhook", {"message": message}), Reply(answer))


async def test_approval_runs_the_tool_and_finishes_the_turn(
    hitl: ConversationService, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("ok"))
    await hitl.ask(key, "hello", user="ada")
    wants_to_post(fake_llm, "deploy at 5pm")
    paused = await hitl.ask(key, "announce the deploy", user="ada")
    assert paused.turn is None and paused.approval is not None
    assert paused.approval.tool == "post_to_webhook" and paused.approval.args == {"message": "deploy at 5pm"}
    assert '"deploy at 5pm"' in paused.text and fake_webhook.posts == []
    assert [t.question for t in await hitl.history(key)] == ["hello"]

    done = await hitl.resolve(key, paused.approval.id, True, user="ada")
    assert done.text == "Posted it." and done.turn is not None
    assert fake_webhook.posts == [{"text": "deploy at 5pm", "content": "deploy at 5pm"}]
    assert [t.question for t in await hitl.history(key)] == ["hello", "announce the deploy"]
    tool_result = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_result[-1]["content"] == "Posted."
    assert (await hitl.ask(key, "next")).text.startswith("heard: hello | announce the deploy | next")


async def test_rejection_tells_the_model_and_runs_nothing(
    hitl: ConversationService, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("no"))
    wants_to_post(fake_llm, "spam", answer="Understood, I did not post it.")
    paused = await hitl.ask(key, "post spam", user="ada")
    assert paused.approval is not None
    done = await hitl.resolve(key, paused.approval.id, False, user="ada")
    assert done.text == "Understood, I did not post it."
    assert fake_webhook.posts == []
    tool_result = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert "ada rejected this action" in tool_result[-1]["content"]


async def test_pending_request_survives_a_restart_and_blocks_new_messages(
    hitl_settings: Settings, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("restart"))
    async with open_service(hitl_settings) as first:
        wants_to_post(fake_llm, "after restart")
        paused = await first.ask(key, "post it", user="ada")
    assert paused.approval is not None
    async with open_service(hitl_settings) as second:
        with pytest.raises(ApprovalPending, match="approve or reject it first"):
            await second.ask(key, "are you there?", user="ada")
        pending = await second.pending(key)
        assert pending is not None and pending.id == paused.approval.id
        done = await second.resolve(key, pending.id, True, user="ada")
        assert done.text == "Posted it." and fake_webhook.posts[-1]["text"] == "after restart"


async def test_only_permitted_people_decide_and_only_once(
    make_settings: Callable[..., Settings], fake_webhook: FakeWebhook, fake_llm: FakeOpenAI,
    unique: Callable[[str], str],
) -> None:
    key = ThreadKey.api(unique("perm"))
    async with open_service(make_settings(BACKTRACK_WEBHOOK_URL=fake_webhook.url)) as service:
        wants_to_post(fake_llm, "x")
        paused = await service.ask(key, "post x", user="ada")
        assert paused.approval is not None
        with pytest.raises(NotPermitted):
            await service.resolve(key, paused.approval.id, True, user="mallory")
        with pytest.raises(StaleApproval, match="no such approval"):
            await service.resolve(ThreadKey.api(unique("other")), paused.approval.id, True, user="ada")
        await service.resolve(key, paused.approval.id, True, user="ada")
        with pytest.raises(StaleApproval, match="already approved by ada"):
            await service.resolve(key, paused.approval.id, False, user="ada")
    async with open_service(
        make_settings(BACKTRACK_WEBHOOK_URL=fake_webhook.url, BACKTRACK_APPROVERS="boss")
    ) as service:
        wants_to_post(fake_llm, "y")
        paused = await service.ask(key, "post y", user="ada")
        assert paused.approval is not None
        with pytest.raises(NotPermitted):
            await service.resolve(key, paused.approval.id, True, user="ada")
        assert (await service.resolve(key, paused.approval.id, True, user="boss")).text == "Posted it."
    assert [p["text"] for p in fake_webhook.posts] == ["x", "y"]


async def test_rewind_cancels_a_pending_request(
    hitl: ConversationService, fake_llm: FakeOpenAI, fake_webhook: FakeWebhook, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("cancel"))
    await hitl.ask(key, "one", user="ada")
    wants_to_post(fake_llm, "z")
    paused = await hitl.ask(key, "post z", user="ada")
    assert paused.approval is not None
    await hitl.rewind(key, 1, user="ada")
    with pytest.raises(StaleApproval, match="already cancelled"):
        await hitl.resolve(key, paused.approval.id, True, user="ada")
    assert fake_webhook.posts == [] and await hitl.history(key) == []
    fake_llm.script.clear()  # the reply scripted for after the tool never came
    assert (await hitl.ask(key, "fresh")).text == "heard: fresh"


async def test_the_decision_is_reported_stored_before_the_turn_goes_on(
    hitl: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    """``on_decided`` is the fact adapters update their buttons from: it comes once, with the
    stored decision, before the model streams, and also when the turn after it fails."""
    events: list[str] = []

    async def decided(approval: Approval) -> None:
        stored = await hitl.pending(key)
        events.append(f"decided:{approval.status}:{approval.decided_by}:{stored is None}")

    async def partial(_: str) -> None:
        if not events or events[-1] != "streamed":
            events.append("streamed")

    key = ThreadKey.api(unique("phases"))
    wants_to_post(fake_llm, "ship it")
    paused = await hitl.ask(key, "announce", user="ada")
    assert paused.approval is not None
    await hitl.resolve(key, paused.approval.id, True, user="ada", on_partial=partial, on_decided=decided)
    assert events == ["decided:approved:ada:True", "streamed"]

    events.clear()
    fake_llm.queue(ToolCall("post_to_webhook", {"message": "again"}), Fail(500))
    paused = await hitl.ask(key, "announce again", user="ada")
    assert paused.approval is not None
    with pytest.raises(AgentFailed):
        await hitl.resolve(key, paused.approval.id, False, user="ada", on_decided=decided)
    assert events == ["decided:rejected:ada:True"]
    assert await hitl.pending(key) is None, "the decision stands although the turn after it failed"


async def test_a_refused_decision_reports_nothing(
    hitl: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    calls: list[Approval] = []

    async def decided(approval: Approval) -> None:
        calls.append(approval)

    key = ThreadKey.api(unique("refused"))
    wants_to_post(fake_llm, "nope")
    paused = await hitl.ask(key, "announce", user="ada")
    assert paused.approval is not None
    with pytest.raises(NotPermitted):
        await hitl.resolve(key, paused.approval.id, True, user="mallory", on_decided=decided)
    assert calls == [] and await hitl.pending(key) is not None
    await hitl.resolve(key, paused.approval.id, False, user="ada", on_decided=decided)
    assert [c.status for c in calls] == ["rejected"]
