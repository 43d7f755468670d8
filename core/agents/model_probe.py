"""Ask a local model server its context size at start, and warn when the budget cannot fit.

llama-server answers ``GET /props`` with the context of a slot, Ollama ``POST /api/show``
with the model's parameters (``num_ctx`` when set). Other servers (OpenAI, vLLM) say
nothing here, and then nothing is logged: a refused conversation is still reported when it
happens (``core.agents.agent``). The probe never stops a start: any failure is logged at DEBUG.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["PROBE_SECONDS", "check_server_context", "server_context"]

_log = logging.getLogger(__name__)

PROBE_SECONDS = 2.0
"""How long the start waits for the answer: a local server answers in milliseconds."""

_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)", re.MULTILINE)


async def server_context(base_url: str, model: str) -> int | None:
    """The server's context in tokens, if it exposes it (llama-server, Ollama); else None."""
    root = re.sub(r"/v1/?$", "", base_url.rstrip("/"))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_SECONDS)) as session:
        async with session.get(f"{root}/props") as response:
            if response.status == 200:
                props: Any = await response.json(content_type=None)
                n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
                if isinstance(n_ctx, int) and n_ctx > 0:
                    return n_ctx
        async with session.post(f"{root}/api/show", json={"model": model}) as response:
            if response.status == 200:
                shown: Any = await response.json(content_type=None)
                found = _NUM_CTX.search(str(shown.get("parameters") or ""))
                if found:
                    return int(found.group(1))
    return None


async def check_server_context(settings: Settings) -> None:
    """One warning at start when ``BACKTRACK_CONTEXT_TOKENS`` exceeds what the server holds."""
    if settings.openai_base_url is None:
        return
    try:
        size = await server_context(settings.openai_base_url, settings.model)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        _log.debug("could not read the model server's context size: %r", exc)
        return
    if size is not None and settings.context_tokens >= size:
        _log.warning(
            "BACKTRACK_CONTEXT_TOKENS is %d but the model server's context is %d tokens: long "
            "conversations will be refused; set BACKTRACK_CONTEXT_TOKENS to about %d",
            settings.context_tokens, size, size * 3 // 4,
        )
