"""Installing the Slack app into many workspaces: Slack's OAuth v2 flow through slack-bolt.

With ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET`` set, bolt serves ``/slack/install``
(a page with the *Add to Slack* link, carrying a fresh state) and ``/slack/oauth_redirect``
(Slack's callback: the state is consumed once, the code exchanged with ``oauth.v2.access``,
the installation stored). Every request is then authorised by its workspace's
installation, so each workspace is answered with its own bot token, and ``app_uninstalled``
/ ``tokens_revoked`` delete it. The rows are kept by the core
(``core/storage/installations.py``, through ``service.installations``); this module only
translates slack-sdk's ``Installation`` and ``Bot`` to and from them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

if TYPE_CHECKING:
    from core.settings import Settings


class Installations(Protocol):
    """``service.installations`` (``core/storage/installations.py``), as these stores use it."""

    async def save(self, platform: str, enterprise: str | None, workspace: str | None,
                   data: dict[str, Any]) -> None: ...
    async def find(self, platform: str, enterprise: str | None,
                   workspace: str | None) -> dict[str, Any] | None: ...
    async def delete(self, platform: str, enterprise: str | None, workspace: str | None) -> None: ...
    async def issue_state(self, platform: str, seconds: int) -> str: ...
    async def consume_state(self, platform: str, state: str) -> bool: ...

__all__ = ["BOT_SCOPES", "InstallationRows", "OAuthStates", "oauth_settings"]

_log = logging.getLogger(__name__)

BOT_SCOPES = (
    "app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history", "chat:write",
    "commands", "users:read", "assistant:write", "files:read",
)
"""The bot scopes of ``slack-manifest.yaml``, asked for at install."""
_STATE_SECONDS = 600


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """An installation as JSON: times as epoch seconds (what slack-sdk reads back)."""
    return {k: v.timestamp() if isinstance(v, datetime) else v for k, v in data.items()}


class InstallationRows(AsyncInstallationStore):
    """bolt's installation store, on the core's ``installations`` rows."""

    def __init__(self, rows: Installations) -> None:
        self._rows = rows

    @property
    def logger(self) -> logging.Logger:
        return _log

    async def async_save(self, installation: Installation) -> None:
        workspace = None if installation.is_enterprise_install else installation.team_id
        await self._rows.save("slack", installation.enterprise_id, workspace,
                              _plain(installation.to_dict_for_copying()))
        _log.info("slack app installed in %s", installation.enterprise_id or installation.team_id)

    async def async_save_bot(self, bot: Bot) -> None:  # kept with its installation
        return None

    async def async_find_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        data = None if is_enterprise_install else await self._rows.find("slack", enterprise_id, team_id)
        if data is None and enterprise_id:  # an org-wide install answers for every workspace of it
            data = await self._rows.find("slack", enterprise_id, None)
        return Installation(**data) if data else None

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        found = await self.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install)
        return found.to_bot() if found and found.bot_token else None

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
    ) -> None:
        await self._rows.delete("slack", enterprise_id, team_id)
        _log.info("slack app removed from %s", enterprise_id or team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._rows.delete("slack", enterprise_id, team_id)
        if enterprise_id:
            await self._rows.delete("slack", enterprise_id, None)
        _log.info("slack app uninstalled from %s", enterprise_id or team_id)


class OAuthStates(AsyncOAuthStateStore):
    """Each install link's state, valid once for ten minutes."""

    def __init__(self, rows: Installations) -> None:
        self._rows = rows

    @property
    def logger(self) -> logging.Logger:
        return _log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await self._rows.issue_state("slack", _STATE_SECONDS)

    async def async_consume(self, state: str) -> bool:
        return await self._rows.consume_state("slack", state)


def _page(title: str, text: str, status: int) -> BoltResponse:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{text}</p></body></html>")
    return BoltResponse(status=status, body=body, headers={"Content-Type": "text/html; charset=utf-8"})


async def _installed(args: AsyncSuccessArgs) -> BoltResponse:
    where = args.installation.team_name or args.installation.enterprise_name or "your workspace"
    return _page("backtrack is installed", f"backtrack now answers in {where}. Mention it in a channel "
                 "or send it a direct message.", 200)


async def _failed(args: AsyncFailureArgs) -> BoltResponse:
    _log.info("slack install failed: %s", args.reason)  # the reason, never a code or a token
    again = "start again from the install page"
    reasons = {
        "invalid_state": f"The install link expired or was already used: {again}.",
        "invalid_browser": f"The install was started in another browser (or without cookies): {again}.",
        "missing_code": f"Slack sent no authorisation code: {again}.",
        "invalid_code": f"Slack refused the authorisation code: {again}.",
        "access_denied": "The installation was cancelled in Slack; nothing was installed.",
    }
    text = reasons.get(args.reason, "Slack did not complete the installation; nothing was installed.")
    return _page("backtrack was not installed", text, 400)


def oauth_settings(settings: Settings, rows: Installations) -> AsyncOAuthSettings | None:
    """The OAuth settings when the app is distributed (``SLACK_CLIENT_ID``), else None."""
    if settings.slack_client_id is None or settings.slack_client_secret is None:
        return None
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        redirect_uri=settings.slack_redirect_uri,
        authorization_url=settings.slack_authorize_url,
        installation_store=InstallationRows(rows),
        installation_store_bot_only=True,
        state_store=OAuthStates(rows),
        state_expiration_seconds=_STATE_SECONDS,
        callback_options=AsyncCallbackOptions(success=_installed, failure=_failed),
        logger=_log,
    )
