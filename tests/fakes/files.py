"""Real small files for the attachment tests: a PNG, a PDF with text, a CSV, and a server elsewhere.

The PNG is built with zlib and struct (random pixels, so it does not compress: a 1 MB
image is 1 MB stored), the PDF with pypdf (one page, one line of text in Helvetica).
``Elsewhere`` is a plain file server on another port: not a platform host, so the bot
must refuse what it serves and any redirect that leads there.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from tests.fakes.http import serving

__all__ = ["CSV", "Elsewhere", "elsewhere", "pdf", "png"]

CSV = b"city,country\nParis,France\nLima,Peru\n"


def png(side: int = 8) -> bytes:
    """A ``side`` x ``side`` RGB PNG of random pixels (about 3 * side**2 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(
        b"IEND", b""
    )


def pdf(text: str) -> bytes:
    """A one-page PDF whose page shows ``text`` (ASCII, no parentheses)."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    font = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    })
    page[NameObject("/Resources")] = DictionaryObject({
        NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})
    })
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class Elsewhere:
    """A web server that is not the platform's: serves ``/file.png`` to anyone."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.hits = 0


@asynccontextmanager
async def elsewhere(body: bytes) -> AsyncIterator[Elsewhere]:
    server: Elsewhere | None = None

    async def serve(request: web.Request) -> web.Response:
        assert server is not None
        server.hits += 1
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_get("/file.png", serve)
    async with serving(app, access_log=None) as url:
        server = Elsewhere(url)
        yield server
