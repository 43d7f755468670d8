"""Files people attach: the caps, what is read, and what the user is told about the rest.

Adapters hand the files of a message over as ``Attachment`` (in hand) or ``Unread`` (not
downloaded, and why); ``prepare`` checks them against the caps, judges each by its bytes,
extracts the text of text files and PDFs, and names them in the question. What the model
then receives is ``core/agents/attachments.py``'s; where the bytes live, ``core/storage/files.py``'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.storage.files import StoredFile
from core.types import Attachment, Unread

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["Prepared", "megabytes", "prepare", "too_big", "too_many", "too_much"]

_log = logging.getLogger(__name__)

_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_TEXT_EXTENSIONS = frozenset(
    "txt md markdown rst csv tsv json jsonl ndjson yaml yml toml ini cfg conf env log xml html htm css "
    "js mjs cjs ts tsx jsx py pyi rb go rs java kt kts c h cc cpp hpp cs php sh bash zsh fish ps1 sql r "
    "swift scala lua pl pm ex exs erl hs ml clj dart vue svelte tf hcl diff patch tex proto graphql "
    "gradle properties".split()
)
_TEXT_NAMES = frozenset({"dockerfile", "makefile", "readme", "license", "procfile", "gemfile"})
_TEXT_MIMES = frozenset({"application/json", "application/xml", "application/x-yaml", "application/yaml",
                         "application/javascript", "application/x-sh", "application/sql"})


@dataclass(frozen=True, slots=True)
class _Ready:
    ref: dict[str, Any]
    """What the checkpoint keeps (``core/agents/attachments.py``)."""
    stored: StoredFile


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message's files after the checks: what goes to the model and what the user is told."""

    ready: tuple[_Ready, ...] = ()
    notes: tuple[str, ...] = ()
    unread: tuple[str, ...] = ()

    @property
    def refs(self) -> list[dict[str, Any]]:
        return [r.ref for r in self.ready]

    @property
    def stored(self) -> list[StoredFile]:
        return [r.stored for r in self.ready]

    def for_model(self, vision: bool) -> Prepared:
        """These files as a model that reads images (``vision``) or not is sent them: without
        vision an image is named as not read, and the user is told why."""
        images = [r for r in self.ready if r.ref["kind"] == "image"]
        if vision or not images:
            return self
        said = tuple(Unread(r.ref["name"], "this bot's model does not read images").sentence for r in images)
        names = tuple(r.ref["name"] for r in images)
        kept = tuple(r for r in self.ready if r.ref["kind"] != "image")
        return Prepared(kept, self.notes + said, self.unread + names)

    def question(self, text: str) -> str:
        """The question as stored and shown: a marker naming the files, then the text."""
        parts = []
        if self.ready:
            parts.append("attached: " + ", ".join(r.ref["name"] for r in self.ready))
        if self.unread:
            parts.append("not read: " + ", ".join(self.unread))
        marker = f"[{'; '.join(parts)}]" if parts else ""
        return f"{marker} {text}".strip() if marker else text


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:.3g} MB" if n >= 1_000_000 else f"{n / 1000:.3g} kB"


def _kind(name: str, mime: str | None, data: bytes) -> tuple[str, str] | str:
    """``(kind, mime)`` of a file judged by its bytes first, or why it is not read."""
    for magic, image in _IMAGES:
        if data.startswith(magic):
            return "image", image
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image", "image/webp"
    if data.startswith(b"%PDF-"):
        return "pdf", "application/pdf"
    stem, _, extension = name.lower().rpartition(".")
    declared = (mime or "").split(";")[0].strip().lower()
    texty = (extension in _TEXT_EXTENSIONS and bool(stem)) or name.lower() in _TEXT_NAMES
    if texty or declared.startswith("text/") or declared in _TEXT_MIMES:
        return "text", declared or "text/plain"
    if declared.startswith("image/") or extension in ("png", "jpg", "jpeg", "gif", "webp"):
        return "it is not a PNG, JPEG, GIF or WebP image"
    what = declared or (f".{extension} files" if stem else "files of this kind")
    return f"{what} are not supported (images, text, code and PDF files are)"


def _decode(data: bytes) -> str | None:
    text = data.decode("utf-8-sig", errors="replace")
    if "\x00" in text or text.count("\ufffd") > max(8, len(text) // 50):
        return None
    return text


def _pdf_text(data: bytes, budget: int) -> str | None:
    """The PDF's text, page by page until past ``budget``; None if it cannot be read."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            return None
        pages: list[str] = []
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            if sum(map(len, pages)) > budget:
                break
        return "\n\n".join(pages)
    except Exception:  # pypdf raises many kinds on malformed input: a refusal, not a failure
        _log.debug("a PDF could not be read", exc_info=True)
        return None


def _read(file: Attachment, settings: Settings) -> _Ready | Unread:
    kind = _kind(file.name, file.mime, file.data)
    if isinstance(kind, str):
        return Unread(file.name, kind)
    kind_name, mime = kind
    text = None
    if kind_name != "image":
        budget = settings.attachment_text_chars
        text = _decode(file.data) if kind_name == "text" else _pdf_text(file.data, budget)
        if text is None:
            return Unread(file.name, "it does not look like UTF-8 text" if kind_name == "text"
                          else "its text could not be extracted")
    ref: dict[str, Any] = {
        "sha256": hashlib.sha256(file.data).hexdigest(), "name": file.name, "mime": mime, "kind": kind_name,
        "size": len(file.data),
    }
    if text is not None:
        ref["chars"] = min(len(text), settings.attachment_text_chars)
        ref["cut"] = len(text) > settings.attachment_text_chars
        text = text[: settings.attachment_text_chars]
    return _Ready(ref, StoredFile(ref["sha256"], mime, len(file.data), file.data, text))


def _over_caps(files: Sequence[Attachment | Unread], settings: Settings) -> list[Attachment | Unread]:
    """The same caps the downloader applies while streaming, for files already in hand (the API)."""
    checked: list[Attachment | Unread] = []
    total, count = 0, 0
    for file in files:
        if isinstance(file, Unread):
            checked.append(file)
            continue
        count += 1
        if count > settings.attachments_per_message:
            checked.append(Unread(file.name, too_many(settings)))
        elif len(file.data) > settings.attachment_max_bytes:
            checked.append(Unread(file.name, too_big(settings)))
        elif total + len(file.data) > settings.attachments_max_total_bytes:
            checked.append(Unread(file.name, too_much(settings)))
        else:
            total += len(file.data)
            checked.append(file)
    return checked


def too_many(settings: Settings) -> str:
    n = settings.attachments_per_message
    return f"I read at most {n} file{'s' if n != 1 else ''} per message"


def too_big(settings: Settings) -> str:
    return f"it is larger than the {megabytes(settings.attachment_max_bytes)} limit per file"


def too_much(settings: Settings) -> str:
    return f"the files of one message may add up to {megabytes(settings.attachments_max_total_bytes)}"


async def prepare(files: Sequence[Attachment | Unread], settings: Settings) -> Prepared:
    """Check and read a message's files (PDF text off the event loop); nothing is stored yet."""
    if not files:
        return Prepared()
    read = [
        await asyncio.to_thread(_read, f, settings) if isinstance(f, Attachment) else f
        for f in _over_caps(files, settings)
    ]
    ready = tuple(r for r in read if isinstance(r, _Ready))
    notes = [r.sentence for r in read if isinstance(r, Unread)]
    notes += [
        f"{r.ref['name']} is long: I read only its first {settings.attachment_text_chars:,} characters."
        for r in ready if r.ref.get("cut")
    ]
    unread = tuple(r.name for r in read if isinstance(r, Unread))
    return Prepared(ready, tuple(notes), unread)
