"""Reading a request: a JSON object body and its typed fields, or a clear 400.

A request that fails here never reaches the service, so it changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from aiohttp import web

from core.errors import InvalidInput
from core.keys import ThreadKey
from core.records import KEEP, Keep
from core.types import Attachment

__all__ = ["attachments", "field", "json_body", "key_of", "optional_text", "request_id"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_KINDS = {int: "an integer", str: "a string", bool: "true or false", list: "a list"}


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def field(body: dict[str, Any], name: str, kind: type, default: Any = ...) -> Any:
    """``body[name]`` if it is of ``kind`` (a bool is not an int); ``default`` when absent."""
    if name not in body:
        if default is ...:
            raise InvalidInput(f"missing field {name!r}")
        return default
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"field {name!r} must be {_KINDS[kind]}")
    return value


def key_of(raw: Any, what: str = "conversation key") -> ThreadKey:
    """A conversation key as the viewer names it (``slack:T:C:ts``), validated."""
    if not isinstance(raw, str) or not raw:
        raise InvalidInput(f"missing {what}")
    return ThreadKey.decode(raw)


def optional_text(body: dict[str, Any], name: str) -> str | Keep | None:
    """A field that may be a string (set it), null (reset it) or absent (keep it)."""
    if name not in body:
        return KEEP
    value = body[name]
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"field {name!r} must be a string, or null to reset it")
    return value


def attachments(body: dict[str, Any]) -> list[Attachment]:
    """``files``: ``[{"name": "chart.png", "data": "<base64>", "mime": "image/png"}]`` (mime optional)."""
    files = field(body, "files", list, [])
    found = []
    for n, file in enumerate(files):
        name, data = file.get("name") if isinstance(file, dict) else None, None
        mime = file.get("mime") if isinstance(file, dict) else None
        if isinstance(file, dict) and isinstance(file.get("data"), str):
            try:
                data = base64.b64decode(file["data"], validate=True)
            except (binascii.Error, ValueError):
                data = None
        if not (isinstance(name, str) and name.strip()) or data is None or not isinstance(mime, str | None):
            raise InvalidInput(f"files[{n}] must be an object with a \"name\" and base64 \"data\"")
        found.append(Attachment(name.strip(), mime, data))
    return found


def request_id(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header, if given and well formed."""
    value = request.headers.get("Idempotency-Key")
    if value is not None and not _REQUEST_ID.fullmatch(value):
        raise InvalidInput("the Idempotency-Key header must be 1 to 128 letters, digits, '-', '_' or '.'")
    return value
