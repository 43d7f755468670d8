"""Attached files through the real service: what the model receives, what is stored, what is refused."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from core.agents.agent import _tokens
from core.agents.attachments import IMAGE_TOKENS, REFS, vision_on
from core.conversations.service import ConversationService
from core.keys import ThreadKey
from core.runtime import open_service
from core.settings import Settings
from core.types import Attachment, Unread
from tests.fakes.files import CSV, pdf, png
from tests.fakes.openai_server import FakeOpenAI, content_parts


def images(request: dict[str, Any]) -> list[str]:
    """The ``data:`` URLs of every image part the model was sent."""
    return [p["image_url"]["url"] for parts in content_parts(request) for p in parts if p["type"] == "image_url"]


def texts(request: dict[str, Any]) -> str:
    return "\n".join(p["text"] for parts in content_parts(request) for p in parts if p["type"] == "text")


async def file_rows(service: ConversationService, key: ThreadKey) -> int:
    async with service.pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT count(*) AS n FROM conversation_files c JOIN files f USING (sha256)"
            " WHERE c.conversation_key = %s", (str(key),))).fetchone()
    assert row is not None
    return int(row["n"])


async def stored(service: ConversationService, data: bytes) -> int:
    """How many times these bytes are in the ``files`` table (0 or 1)."""
    async with service.pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS n FROM files WHERE sha256 = %s",
                                        (hashlib.sha256(data).hexdigest(),))).fetchone()
    assert row is not None
    return int(row["n"])


async def checkpoint_bytes(service: ConversationService, key: ThreadKey) -> int:
    sql = """
    SELECT (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM checkpoints c WHERE thread_id = %(k)s)
         + (SELECT coalesce(sum(pg_column_size(b.*)), 0) FROM checkpoint_blobs b WHERE thread_id = %(k)s)
         + (SELECT coalesce(sum(pg_column_size(w.*)), 0) FROM checkpoint_writes w WHERE thread_id = %(k)s) AS n
    """
    async with service.pool.connection() as conn:
        row = await (await conn.execute(sql, {"k": str(key)})).fetchone()
    assert row is not None
    return int(row["n"])


@pytest.fixture
def open_with(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    def opened(**overrides: Any) -> Any:
        return open_service(make_settings(**overrides), maintenance=False)

    return opened


async def test_image_pdf_and_csv_reach_the_model_and_history_names_them(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("files"))
    image = png()
    files = [
        Attachment("chart.png", "image/png", image),
        Attachment("report.pdf", "application/pdf", pdf("Quarterly revenue grew 12 percent")),
        Attachment("cities.csv", "text/csv", CSV),
    ]
    answer = await service.ask(key, "what do these say?", files=files)
    [request] = fake_llm.requests
    assert images(request) == ["data:image/png;base64," + base64.b64encode(image).decode()]
    sent = texts(request)
    assert "Quarterly revenue grew 12 percent" in sent and "Lima,Peru" in sent
    assert sent.startswith("[attached: chart.png, report.pdf, cities.csv] what do these say?")
    assert answer.text.startswith("heard: [attached: chart.png, report.pdf, cities.csv] what do these say?")
    [turn] = await service.history(key)
    assert turn.question == "[attached: chart.png, report.pdf, cities.csv] what do these say?"
    assert await file_rows(service, key) == 3


async def test_a_later_turn_sends_the_image_again_without_growing_the_checkpoints(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    """A 1 MB image is stored once; each later turn's checkpoints grow by a small reference."""
    key = ThreadKey.api(unique("big"))
    image = png(600)
    assert len(image) > 1_000_000
    await service.ask(key, "look", files=[Attachment("big.png", "image/png", image)])
    first = await checkpoint_bytes(service, key)
    assert first < 100_000, "the image itself went into the checkpoint"
    await service.ask(key, "and now?")
    second = await checkpoint_bytes(service, key)
    await service.ask(key, "once more")
    third = await checkpoint_bytes(service, key)
    assert second - first < 50_000 and third - second < 50_000
    assert len(images(fake_llm.requests[-1])) == 1, "the image left the model's context"


async def test_with_vision_off_the_image_is_not_sent_and_the_user_is_told(
    open_with: Callable[..., Any], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    async with open_with(BACKTRACK_VISION="false") as service:
        key = ThreadKey.api(unique("novision"))
        answer = await service.ask(key, "what is this?", files=[Attachment("chart.png", "image/png", png())])
        [request] = fake_llm.requests
        assert images(request) == []
        assert answer.text.endswith("\n\nI could not read chart.png: this bot's model does not read images.")
        assert "[not read: chart.png] what is this?" in texts(request)
        assert await file_rows(service, key) == 0


async def test_caps_and_unsupported_types_are_refused_and_the_rest_still_works(
    open_with: Callable[..., Any], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    caps = {"BACKTRACK_ATTACHMENT_MAX_BYTES": 2000, "BACKTRACK_ATTACHMENTS_PER_MESSAGE": 3,
            "BACKTRACK_ATTACHMENTS_MAX_TOTAL_BYTES": 3000}
    async with open_with(**caps) as service:
        key = ThreadKey.api(unique("caps"))
        files = [
            Attachment("ok.csv", "text/csv", CSV),
            Attachment("huge.txt", "text/plain", b"x" * 2500),
            Attachment("archive.zip", "application/zip", b"PK\x03\x04" + b"\x00" * 50),
            Attachment("fourth.md", "text/markdown", b"# four"),
            Unread("gone.png", "the download failed (HTTP 404)"),
        ]
        answer = await service.ask(key, "summarise", files=files)
        lines = answer.text.splitlines()
        assert lines[-4:] == [
            "I could not read huge.txt: it is larger than the 2 kB limit per file.",
            "I could not read archive.zip: application/zip are not supported (images, text, code and PDF "
            "files are).",
            "I could not read fourth.md: I read at most 3 files per message.",
            "I could not read gone.png: the download failed (HTTP 404).",
        ]
        assert "Lima,Peru" in texts(fake_llm.requests[0])
        assert await file_rows(service, key) == 1
        total = [Attachment(f"{n}.txt", "text/plain", b"y" * 1800) for n in "ab"]
        answer = await service.ask(key, "and these", files=total)
        assert answer.text.endswith("\n\nI could not read b.txt: the files of one message may add up to 3 kB.")


async def test_long_text_is_cut_to_the_budget_with_a_note(
    open_with: Callable[..., Any], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    async with open_with(BACKTRACK_ATTACHMENT_TEXT_CHARS=100) as service:
        body = ("line of text\n" * 50).encode()
        answer = await service.ask(ThreadKey.api(unique("cut")), "", files=[Attachment("log.txt", None, body)])
        assert answer.text.endswith("\n\nlog.txt is long: I read only its first 100 characters.")
        sent = texts(fake_llm.requests[0])
        assert "[log.txt was cut to its first 100 characters]" in sent
        assert sent.count("line of text") == 100 // len("line of text\n"), "more than the budget was sent"


async def test_replay_and_rewind_see_the_same_files(
    service: ConversationService, fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    key = ThreadKey.api(unique("replay"))
    image = png()
    first = await service.ask(key, "describe", files=[Attachment("cat.png", "image/png", image)])
    await service.ask(key, "thanks")
    await service.replay(key, first.checkpoint_id)
    assert len(images(fake_llm.requests[-1])) == 1, "the replayed question lost its image"
    assert texts(fake_llm.requests[-1]).endswith("[attached: cat.png] describe")
    await service.rewind_to(key, first.checkpoint_id)
    await service.ask(key, "what colour?")
    assert len(images(fake_llm.requests[-1])) == 1


async def test_forget_deletes_the_files_but_keeps_one_another_conversation_shares(
    service: ConversationService, unique: Callable[[str], str]
) -> None:
    one, two = ThreadKey.api(unique("f1")), ThreadKey.api(unique("f2"))
    shared, own = Attachment("a.csv", None, CSV + unique("s").encode()), Attachment("b.png", None, png())
    await service.ask(one, "x", files=[shared, own])
    await service.ask(two, "y", files=[shared])
    assert await stored(service, shared.data) == 1 and await file_rows(service, two) == 1
    await service.forget(one)
    assert await file_rows(service, one) == 0 and await stored(service, own.data) == 0
    assert await stored(service, shared.data) == 1 and await file_rows(service, two) == 1
    await service.forget(two)
    assert await stored(service, shared.data) == 0


def test_a_reference_counts_by_what_the_model_reads_not_by_its_bytes() -> None:
    """The window counts a reference by what the model reads, never by the file's bytes."""
    refs = [{"sha256": "0" * 64, "name": "big.png", "mime": "image/png", "kind": "image", "size": 9_000_000}]
    message = HumanMessage("[attached: big.png]", id="m1", additional_kwargs={REFS: refs})
    assert IMAGE_TOKENS <= _tokens(message) < IMAGE_TOKENS + 50


async def test_retention_deletes_an_idle_conversations_files(
    open_with: Callable[..., Any], unique: Callable[[str], str]
) -> None:
    async with open_with(BACKTRACK_RETENTION_DAYS=30) as service:
        idle, active = ThreadKey.api(unique("idle")), ThreadKey.api(unique("active"))
        old, new = png(), png()
        await service.ask(idle, "old", files=[Attachment("old.png", None, old)])
        await service.ask(active, "new", files=[Attachment("new.png", None, new)])
        async with service.pool.connection() as conn:
            await conn.execute("UPDATE conversations SET last_active_at = now() - interval '31 days'"
                               " WHERE key = %s", (str(idle),))
        report = await service.prune()
        assert report.conversations >= 1
        assert await stored(service, old) == 0 and await file_rows(service, idle) == 0
        assert await stored(service, new) == 1 and await file_rows(service, active) == 1


@pytest.mark.parametrize(("model", "vision", "on"), [
    ("gpt-4o-mini", "auto", True), ("gpt-4.1-nano", "auto", True), ("gpt-5", "auto", True),
    ("o3", "auto", True), ("openai/gpt-4o", "auto", True), ("gpt-3.5-turbo", "auto", False),
    ("llama3.1:8b", "auto", False), ("llama3.1:8b", "true", True), ("gpt-4o", "false", False),
])
def test_vision_auto_follows_the_model_name_and_the_setting_overrides_it(
    make_settings: Callable[..., Settings], model: str, vision: str, on: bool
) -> None:
    assert vision_on(make_settings(BACKTRACK_MODEL=model, BACKTRACK_VISION=vision)) is on


async def test_images_follow_the_model_the_place_chose(
    open_with: Callable[..., Any], fake_llm: FakeOpenAI, unique: Callable[[str], str]
) -> None:
    """A place that chose a vision model (``/model``) gets its images read; another place on a
    default model that reads none is told so, from the same bot."""
    tag = unique("V").upper().replace("-", "")[:12]
    seeing, blind = ThreadKey.slack("T9", "C" + tag, "1.1"), ThreadKey.slack("T9", "D" + tag, "1.1")
    async with open_with(BACKTRACK_MODEL="plain-model", BACKTRACK_MODELS="gpt-4o") as service:
        await service.change_place(seeing.scopes[0], "admin", model="gpt-4o")
        answer = await service.ask(seeing, "what is this?", files=[Attachment("chart.png", "image/png", png())])
        assert fake_llm.requests[-1]["model"] == "gpt-4o" and len(images(fake_llm.requests[-1])) == 1
        assert "could not read" not in answer.text
        answer = await service.ask(blind, "and this?", files=[Attachment("chart.png", "image/png", png())])
        assert fake_llm.requests[-1]["model"] == "plain-model" and images(fake_llm.requests[-1]) == []
        assert answer.text.endswith("I could not read chart.png: this bot's model does not read images.")
