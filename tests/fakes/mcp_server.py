"""A small real MCP server (the official SDK's FastMCP) for the tests: run as a subprocess.

``python -m tests.fakes.mcp_server`` speaks stdio; ``--http PORT`` serves streamable HTTP
at ``/mcp``. Its tools: ``lookup_ticket`` (read-only by its annotations), ``create_ticket``
(appends one line to the file ``TICKETS_FILE`` names: the side effect a replay must not
repeat), ``slow`` (hangs) and ``explode`` (the process dies mid-call). A name written in
the file ``MCP_EXTRA_FILE`` names adds a tool, so a test can change the tool list between turns. A request
over HTTP without ``Authorization: Bearer $MCP_TOKEN`` (when set) is refused.
"""

from __future__ import annotations

import argparse
import os
import time

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

server = FastMCP("tickets", log_level="WARNING")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def lookup_ticket(number: int) -> str:
    """Look up a ticket by its number."""
    return f"Ticket {number}: the printer on floor 2 is out of toner (open)."


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False))
def create_ticket(title: str) -> str:
    """Create a ticket in the team's tracker."""
    path = os.environ["TICKETS_FILE"]
    with open(path, "a", encoding="utf-8") as f:
        f.write(title + "\n")
    with open(path, encoding="utf-8") as f:
        number = sum(1 for _ in f)
    return f"Created ticket #{number}: {title}"


@server.tool()
def slow(seconds: float) -> str:
    """Wait that many seconds (a hung server)."""
    time.sleep(seconds)
    return "done"


@server.tool()
def explode() -> str:
    """Crash the server in the middle of the call."""
    os._exit(3)


_extra = os.environ.get("MCP_EXTRA_FILE")
if _extra and os.path.exists(_extra) and (extra := open(_extra, encoding="utf-8").read().strip()):
    @server.tool(name=extra, annotations=ToolAnnotations(readOnlyHint=True))
    def extra_tool() -> str:
        """A tool added after the first listing."""
        return "extra"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None)
    args = parser.parse_args()
    if args.http is None:
        server.run("stdio")
        return
    import uvicorn
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import JSONResponse

    app = server.streamable_http_app()
    token = os.environ.get("MCP_TOKEN")

    async def check(request, call_next):  # type: ignore[no-untyped-def]
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=check)
    uvicorn.run(app, host="127.0.0.1", port=args.http, log_level="warning")


if __name__ == "__main__":
    main()
