"""``backtrack console``: a terminal chat, scriptable through piped stdin.

Piped, each answer is printed as it is, over as many lines as it has; ``--json`` prints one
JSON object per input line instead (``{"input": ..., "output": ...}``), which stays one line
whatever the answer holds. Log records reach the terminal as one short line each: the chat
owns the screen.

In a terminal it also serves the web viewer on loopback, with a token made for this run
and printed once in a ready-to-open URL (``--no-ui`` skips it): chat here, watch the tree
grow in the browser. The viewer follows the API's loopback rules (Host and Origin checks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import mimetypes
import secrets
import shlex
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TextIO

from aiohttp import web
from pydantic import SecretStr

from bots.api import build_app
from core.conversations.boundary import boundary
from core.conversations.commands import parse_command
from core.conversations.service import ConversationService
from core.conversations.wording import format_help, progress
from core.errors import InvalidInput
from core.keys import ThreadKey
from core.logs import configure_logging
from core.runtime import open_service
from core.settings import Settings
from core.types import Attachment

__all__ = ["Console", "run"]


HELP = format_help() + """
Console:
  /attach PATH [question] \u2014 ask with a file (text, PDF or image), e.g. /attach notes.txt What is due?
  /threads \u2014 list console conversations; /new NAME starts one
  /quit \u2014 leave (Ctrl-D works too)"""


class Console:
    def __init__(self, service: ConversationService, thread: str, out: TextIO) -> None:
        self.service = service
        self.key = ThreadKey.console(thread)
        self.out = out
        self.interactive = sys.stdin.isatty()
        self.collected: list[str] | None = None
        self._progress: str | None = None
        """With ``--json``: what the current line printed, emitted as one object."""

    def say(self, text: str) -> None:
        if self.collected is not None:
            self.collected.append(text)
        else:
            print(text, file=self.out, flush=True)

    async def handle_json(self, line: str) -> bool:
        """``handle``, printing everything one input line produced as one JSON line."""
        self.collected = []
        try:
            keep = await self.handle(line)
        finally:
            output, self.collected = "\n".join(self.collected), None
        if keep and line.strip():
            self.say(json.dumps({"input": line.strip(), "output": output}, ensure_ascii=False))
        return keep

    async def handle(self, line: str) -> bool:
        """Answer one input line; False means quit."""
        text = line.strip()
        if not text:
            return True
        go_on = True
        async with boundary(self._tell, f"console line on {self.key}"):
            if text.startswith("/"):
                go_on = await self._command(text)
            else:
                await self._ask(text)
        return go_on

    async def _ask(self, text: str, files: Sequence[Attachment] = ()) -> None:
        answer = await self.service.ask(self.key, text, user="console", on_status=self._status, files=files)
        self.say(f"{answer.text} (/approve or /reject)" if answer.approval else answer.text)

    async def _attach(self, arg: str) -> None:
        """``/attach PATH [question]``: the file goes with the question, as a chat app would send it."""
        try:
            path, *question = shlex.split(arg)
        except ValueError:
            raise InvalidInput("/attach takes a path, e.g. /attach notes.txt What is due?") from None
        limit = self.service.settings.attachments_max_total_bytes
        await self._ask(" ".join(question), [await asyncio.to_thread(_read, path, limit)])

    async def _status(self, tool: str | None) -> None:
        """A team turn's progress ("researching…"), on a terminal only: piped output stays answers."""
        if tool is None:  # the coordinator works again: a later delegation shows again
            self._progress = None
        elif (text := progress(tool)) is not None and text != self._progress and self.interactive:
            self._progress = text
            self.say(f"  … {text}")

    async def _tell(self, text: str) -> None:
        self.say(text)

    async def _command(self, text: str) -> bool:
        name, _, arg = text[1:].partition(" ")
        if name in ("quit", "exit"):
            return False
        if name == "help":
            self.say(HELP)
        elif name == "attach" and arg.strip():
            await self._attach(arg)
        elif name == "threads":
            await self._threads()
        elif name == "new":
            self.key = ThreadKey.console(arg.strip() or f"chat-{int(time.time())}")
            self.say(f"New conversation: {self.key.parts[0]}")
        elif command := parse_command(text):
            self.say(await self.service.run(self.key, command, "console"))
        else:
            raise InvalidInput(f"unknown command /{name}; /help lists the commands")
        return True

    async def _threads(self) -> None:
        found = await self.service.threads(platform="console")
        if not found:
            self.say("No console conversations yet.")
        for info in found:
            mark = "*" if info.key == self.key else " "
            self.say(f"{mark} {info.key.parts[0]}: {info.turns} turns, {info.title!r}")


def _read(path: str, limit: int) -> Attachment:
    """The file at ``path``, refused with a sentence when it is unreadable or over ``limit`` bytes."""
    file = Path(path).expanduser()
    try:
        if file.stat().st_size > limit:
            raise InvalidInput(f"{file.name} is larger than the {limit:,} bytes a message may attach")
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or 'not a readable file'}") from None
    return Attachment(file.name, mimetypes.guess_type(file.name)[0], data)


@asynccontextmanager
async def viewer(settings: Settings, service: ConversationService) -> AsyncIterator[str]:
    """The web viewer on a free loopback port; yields its URL with this run's token."""
    token = secrets.token_urlsafe(24)
    app = build_app(settings.model_copy(update={"api_token": SecretStr(token)}), service, host="127.0.0.1")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/ui#token={token}"
    finally:
        await runner.cleanup()


async def run(settings: Settings, args: argparse.Namespace) -> int:
    root = logging.getLogger()
    configure_logging(logging.getLevelName(root.level), brief=True)
    async with open_service(settings) as service, AsyncExitStack() as stack:
        console = Console(service, args.thread, sys.stdout)
        handle = console.handle_json if getattr(args, "json", False) else console.handle
        if console.interactive:
            console.say(f"backtrack console, conversation {args.thread!r}. /help lists commands.")
            if not getattr(args, "no_ui", False):
                url = await stack.enter_async_context(viewer(settings, service))
                console.say(f"Watch the conversation tree in your browser: {url}")
        while True:
            if console.interactive:
                print("you> ", end="", flush=True)
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line or not await handle(line):
                return 0
