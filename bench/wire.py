"""A counting proxy in front of PostgreSQL: statements and round trips, read off the wire.

Counting on the wire instead of in our code keeps the three systems honest alike: the
naive saver, LangGraph's own pipelines and our lock connection all pass through it.

- A **statement** is one the server executes: a simple ``Query`` message or an extended
  protocol ``Execute`` (so ``executemany`` of five rows is five, as the server sees it).
- A **round trip** is one wait for the server: the client sent something since the server
  last answered, and now the server answers. A pipeline of five statements followed by one
  ``Sync`` is one round trip; five ``execute`` calls in a row are five.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from psycopg.conninfo import conninfo_to_dict

__all__ = ["Counts", "counting_proxy"]

_SSL_REQUEST, _GSS_REQUEST = 80877103, 80877104


@dataclass
class Counts:
    statements: int = 0
    round_trips: int = 0

    def copy(self) -> Counts:
        return Counts(self.statements, self.round_trips)

    def since(self, earlier: Counts) -> Counts:
        return Counts(self.statements - earlier.statements, self.round_trips - earlier.round_trips)


class _Link:
    """One client connection: parses what the client sends, notices when the server answers."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.waiting = False
        self._buffer = b""
        self._started = False

    def client_sent(self, data: bytes) -> None:
        self.waiting = True
        self._buffer += data
        while True:
            if not self._started:  # startup phase: length-prefixed, no type byte
                if len(self._buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self._buffer[:8])
                if len(self._buffer) < length:
                    return
                self._buffer = self._buffer[length:]
                self._started = code not in (_SSL_REQUEST, _GSS_REQUEST)
                continue
            if len(self._buffer) < 5:
                return
            kind, length = self._buffer[:1], struct.unpack("!i", self._buffer[1:5])[0]
            if len(self._buffer) < 1 + length:
                return
            self._buffer = self._buffer[1 + length:]
            if kind in (b"Q", b"E"):
                self.counts.statements += 1

    def server_sent(self) -> None:
        if self.waiting:
            self.counts.round_trips += 1
            self.waiting = False


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_data: object) -> None:
    try:
        while data := await reader.read(65536):
            on_data(data)  # type: ignore[operator]
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@asynccontextmanager
async def counting_proxy(url: str) -> AsyncIterator[tuple[str, Counts]]:
    """``url`` rewritten to go through a proxy on 127.0.0.1, and the counts it keeps."""
    params = conninfo_to_dict(url)
    host, port = str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
    counts = Counts()
    tasks: set[asyncio.Task[None]] = set()

    async def accept(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await link(client_r, client_w)

    async def link(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if host.startswith("/"):  # the embedded server listens on a Unix socket
            server_r, server_w = await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        else:
            server_r, server_w = await asyncio.open_connection(host, port)
        seen = _Link(counts)
        up = asyncio.create_task(_pipe(client_r, server_w, seen.client_sent))
        down = asyncio.create_task(_pipe(server_r, client_w, lambda _data: seen.server_sent()))
        tasks.update((up, down))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        tasks.difference_update((up, down))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    bound = server.sockets[0].getsockname()[1]
    user, dbname = params.get("user") or "postgres", params.get("dbname") or "postgres"
    password = f":{params['password']}" if params.get("password") else ""
    proxied = f"postgresql://{user}{password}@127.0.0.1:{bound}/{dbname}?sslmode=disable&gssencmode=disable"
    try:
        yield proxied, counts
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await server.wait_closed()
