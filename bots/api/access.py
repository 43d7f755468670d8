"""Who may call the HTTP API and the viewer, and from where: tokens, grants, hosts and origins.

- **Tokens.** ``/api/*`` takes ``Authorization: Bearer <token>``: the operator's ``API_TOKEN``
  reaches everything; a scoped token (``backtrack token create``) only the conversations and
  places inside its scopes. On a loopback address without ``API_TOKEN`` a request without a
  token reaches everything, as a local tool would.
- **A request for another scope** gets 403 with the same sentence whether that conversation
  exists or not, so a guessed id tells nothing.
- **Web pages** cannot use a loopback server through the user's browser: a ``Host`` that is
  not one of the server's names is refused (DNS rebinding), and so is a change (POST, PUT,
  DELETE) sent with a foreign ``Origin`` or a body that is not ``application/json`` (a form
  or a ``text/plain`` fetch, which a browser sends cross-site without asking). Jupyter and
  the modern dev servers defend the same way.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from bots.serving import SERVICE
from core.errors import NotPermitted
from core.settings import Settings
from core.types import Grant

__all__ = ["LOOPBACK_NAMES", "authenticate", "grant_of", "guard", "is_loopback", "require"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Error = Callable[[int, str, str], web.Response]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_GRANT: web.RequestKey[Grant] = web.RequestKey("grant", Grant)
_EVERYTHING = Grant()
_NOTHING = Grant(())


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _name(host_header: str) -> str:
    """``Host: [::1]:8080`` → ``::1``; ``Host: Example.COM:80`` → ``example.com``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def guard(settings: Settings, listening_on: str, error: Error) -> Middleware:
    """The Host, Origin and Content-Type rules (module docstring)."""
    names = {n.lower() for n in settings.allowed_hosts}
    if is_loopback(listening_on):
        names |= LOOPBACK_NAMES  # a loopback server answers to its loopback names only
    elif names:
        names.add(listening_on.lower())
    origins = {o.rstrip("/").lower() for o in settings.allowed_origins}

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if names and _name(request.host) not in names:
            return error(403, "forbidden_host", "this server does not answer to that host name")
        if request.method in _CHANGES:
            origin = request.headers.get("Origin")
            foreign = origin is not None and not _same_origin(origin, request.host)
            if foreign and origin is not None and origin.lower() not in origins:
                return error(403, "forbidden_origin", "changes are not accepted from another web origin")
            if request.body_exists and request.content_type != "application/json":
                return error(415, "unsupported_media_type", "send the body as application/json")
        return await handler(request)

    return check


def _same_origin(origin: str, host: str) -> bool:
    try:
        return urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False


def authenticate(admin_token: str | None, error: Error) -> Middleware:
    """The grant of each ``/api/`` request, from its bearer token (module docstring)."""

    admin = admin_token or ""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            given = request.headers.get("Authorization", "")
            scheme, _, token = given.partition(" ")
            if not given and not admin_token:
                request[_GRANT] = _EVERYTHING  # loopback without a token (checked at start)
            elif scheme == "Bearer" and admin_token and hmac.compare_digest(token.encode(), admin.encode()):
                request[_GRANT] = _EVERYTHING
            elif scheme == "Bearer" and token and (grant := await request.app[SERVICE].access.grant(token)):
                request[_GRANT] = grant
            else:
                return error(401, "unauthorized", "missing or wrong bearer token")
        return await handler(request)

    return check


def grant_of(request: web.Request) -> Grant:
    grant: Grant = request.get(_GRANT, _NOTHING)  # only /api/ routes have one
    return grant


def require(request: web.Request, name: str) -> None:
    """Refuse a conversation or place outside the caller's grant: the same words whether it exists or not."""
    if not grant_of(request).allows(name):
        raise NotPermitted("this token does not reach that conversation or place")
