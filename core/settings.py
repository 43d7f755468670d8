"""Settings, read once at start from the environment and an optional ``.env`` file.

Every field names its environment variable. ``load_settings`` turns a validation error
into one line that names the variable, so a typo never surfaces as a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import SettingsError

__all__ = ["IdList", "NumericIds", "Settings", "load_settings"]


def _split(raw: object) -> object:
    """``"a, b,,c"`` → ``{"a", "b", "c"}``; a comma-separated setting, parsed once at load."""
    if isinstance(raw, str):
        return frozenset(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _numbers(raw: object) -> object:
    values = _split(raw)
    if isinstance(values, frozenset) and (bad := sorted(v for v in values if not str(v).isdigit())):
        raise ValueError(f"{bad[0]!r} is not a numeric id")
    return values


def _prompts(raw: object) -> object:
    """``"a; b;; c"`` → ``("a", "b", "c")``: Slack shows at most four suggested prompts."""
    if isinstance(raw, str):
        raw = tuple(part.strip() for part in raw.split(";") if part.strip())
    if isinstance(raw, tuple) and len(raw) > 4:
        raise ValueError(f"Slack shows at most 4 suggested prompts, not {len(raw)}")
    return raw


IdList = Annotated[frozenset[str], NoDecode, BeforeValidator(_split)]
"""A comma-separated list of ids (an allow-list: empty admits everyone)."""
NumericIds = Annotated[frozenset[int], NoDecode, BeforeValidator(_numbers)]
"""The same, of numeric ids (Discord's): a value that is not a number is refused at start."""
Prompts = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_prompts)]
"""A semicolon-separated list of up to four prompts."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore"
    )

    # storage
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    data_dir: Path = Field(Path(".backtrack"), validation_alias="BACKTRACK_DATA_DIR")
    db_pool_min: int = Field(1, ge=0, validation_alias="BACKTRACK_DB_POOL_MIN")
    db_pool_max: int = Field(20, ge=1, validation_alias="BACKTRACK_DB_POOL_MAX")
    db_prepare_threshold: int | None = Field(5, validation_alias="BACKTRACK_DB_PREPARE_THRESHOLD")
    lock_database_url: str | None = Field(None, validation_alias="BACKTRACK_LOCK_DATABASE_URL")
    """A direct connection for the advisory locks, when DATABASE_URL is a transaction pooler."""
    db_max_idle: float = Field(300.0, gt=0, validation_alias="BACKTRACK_DB_MAX_IDLE")
    db_max_lifetime: float = Field(3600.0, gt=0, validation_alias="BACKTRACK_DB_MAX_LIFETIME")
    db_timeout: float = Field(5.0, gt=0, validation_alias="BACKTRACK_DB_TIMEOUT")
    db_statement_timeout: float = Field(30.0, gt=0, validation_alias="BACKTRACK_DB_STATEMENT_TIMEOUT")
    """The longest any one round trip to PostgreSQL may take, on every connection (docs/reliability.md)."""

    # model
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    model: str = Field("gpt-4o-mini", min_length=1, validation_alias="BACKTRACK_MODEL")
    context_tokens: int = Field(16000, ge=256, validation_alias="BACKTRACK_CONTEXT_TOKENS")
    llm_timeout: float = Field(60.0, gt=0, validation_alias="BACKTRACK_LLM_TIMEOUT")
    llm_max_retries: int = Field(2, ge=0, validation_alias="BACKTRACK_LLM_MAX_RETRIES")
    tool_choice: Literal["auto", "none", "omit"] = Field("auto", validation_alias="BACKTRACK_TOOL_CHOICE")
    """Sent with every request that offers tools; ``omit`` for servers that reject the field."""
    tavily_api_key: SecretStr | None = Field(None, validation_alias="TAVILY_API_KEY")
    agent: Literal["single", "team"] = Field("single", validation_alias="BACKTRACK_AGENT")
    """What answers a conversation that has not chosen with ``/team on|off``."""
    team_max_steps: int = Field(4, ge=1, le=10, validation_alias="BACKTRACK_TEAM_MAX_STEPS")
    """Delegations per team turn (and tool calls per sub-agent run) before the answer is due."""
    models: IdList = Field(frozenset(), validation_alias="BACKTRACK_MODELS")
    """Models ``/model`` may pick for a place, besides BACKTRACK_MODEL (always allowed)."""

    # per-place settings and usage
    admins: IdList = Field(frozenset(), validation_alias="BACKTRACK_ADMINS")
    """Platform user ids that may change a place's persona and model in chat."""
    daily_tokens_per_user: int | None = Field(
        None, ge=1, validation_alias="BACKTRACK_DAILY_TOKENS_PER_USER"
    )
    daily_tokens_per_place: int | None = Field(
        None, ge=1, validation_alias="BACKTRACK_DAILY_TOKENS_PER_PLACE"
    )

    # conversations
    max_message_chars: int = Field(16000, ge=1, validation_alias="BACKTRACK_MAX_MESSAGE_CHARS")
    busy_policy: Literal["enqueue", "reject", "interrupt"] = Field(
        "enqueue", validation_alias="BACKTRACK_BUSY_POLICY"
    )
    event_ttl_hours: float = Field(48.0, gt=0, validation_alias="BACKTRACK_EVENT_TTL_HOURS")
    lock_timeout: float = Field(300.0, gt=0, validation_alias="BACKTRACK_LOCK_TIMEOUT")
    retention_days: float | None = Field(None, gt=0, validation_alias="BACKTRACK_RETENTION_DAYS")
    max_checkpoints: int | None = Field(None, ge=10, validation_alias="BACKTRACK_MAX_CHECKPOINTS")
    usage_detail_days: float = Field(90.0, gt=0, validation_alias="BACKTRACK_USAGE_DETAIL_DAYS")
    """Per-person token rows older than this fold into their place's daily totals."""
    feedback_days: float | None = Field(None, gt=0, validation_alias="BACKTRACK_FEEDBACK_DAYS")
    audit_days: float | None = Field(None, gt=0, validation_alias="BACKTRACK_AUDIT_DAYS")
    """Rewind records, decided approval requests and revoked tokens older than this go."""
    file_grace_hours: float = Field(24.0, gt=0, validation_alias="BACKTRACK_FILE_GRACE_HOURS")
    """How long a stored file nothing refers to is kept (a turn may be about to refer to it)."""
    prune_interval_minutes: float = Field(60.0, gt=0, validation_alias="BACKTRACK_PRUNE_INTERVAL_MINUTES")
    shutdown_grace: float = Field(30.0, ge=0, validation_alias="BACKTRACK_SHUTDOWN_GRACE")

    # attachments
    vision: Literal["auto", "true", "false"] = Field("auto", validation_alias="BACKTRACK_VISION")
    """Send images to the model; ``auto``: for models known to read them (gpt-4o*, gpt-4.1*, gpt-5*, o1…)."""
    attachment_max_bytes: int = Field(10_000_000, ge=1, validation_alias="BACKTRACK_ATTACHMENT_MAX_BYTES")
    attachments_per_message: int = Field(5, ge=0, validation_alias="BACKTRACK_ATTACHMENTS_PER_MESSAGE")
    attachments_max_total_bytes: int = Field(
        20_000_000, ge=1, validation_alias="BACKTRACK_ATTACHMENTS_MAX_TOTAL_BYTES"
    )
    attachment_text_chars: int = Field(20_000, ge=100, validation_alias="BACKTRACK_ATTACHMENT_TEXT_CHARS")
    """How much of one text file or PDF the model reads; the rest is cut, with a note."""
    download_timeout: float = Field(30.0, gt=0, validation_alias="BACKTRACK_DOWNLOAD_TIMEOUT")

    # human in the loop
    webhook_url: str | None = Field(None, validation_alias="BACKTRACK_WEBHOOK_URL")
    approval_tools: IdList = Field(
        frozenset({"post_to_webhook"}), validation_alias="BACKTRACK_APPROVAL_TOOLS"
    )
    approvers: IdList = Field(frozenset(), validation_alias="BACKTRACK_APPROVERS")

    # MCP tools (docs/tools.md)
    mcp_config: Path | None = Field(None, validation_alias="BACKTRACK_MCP_CONFIG")
    """An ``mcp.json`` naming the MCP servers (Claude Desktop's format), read at start."""
    mcp_timeout: float = Field(30.0, gt=0, validation_alias="BACKTRACK_MCP_TIMEOUT")
    """Seconds one MCP tool call may take (a server may set its own ``timeout``)."""
    mcp_refresh: float = Field(60.0, ge=0, validation_alias="BACKTRACK_MCP_REFRESH")
    """Seconds between re-listing a server's tools, so a changed tool list is picked up."""

    # HTTP servers (api, slack HTTP mode)
    host: str = Field("127.0.0.1", validation_alias="BACKTRACK_HOST")
    port: int = Field(8080, ge=0, le=65535, validation_alias="BACKTRACK_PORT")
    api_token: SecretStr | None = Field(None, validation_alias="API_TOKEN")
    health_port: int | None = Field(None, ge=0, le=65535, validation_alias="BACKTRACK_HEALTH_PORT")
    max_body_bytes: int = Field(256 * 1024, ge=1024, validation_alias="BACKTRACK_MAX_BODY_BYTES")
    allowed_hosts: IdList = Field(frozenset(), validation_alias="BACKTRACK_ALLOWED_HOSTS")
    """Host names the HTTP servers answer to besides the loopback ones (docs/security.md)."""
    allowed_origins: IdList = Field(frozenset(), validation_alias="BACKTRACK_ALLOWED_ORIGINS")
    """Web origins (``https://tools.example.com``) that may send changes besides the server's own."""

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    # Distributing the app (OAuth: installed into many workspaces; docs/slack.md)
    slack_client_id: str | None = Field(None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, validation_alias="SLACK_CLIENT_SECRET")
    slack_redirect_uri: str | None = Field(None, validation_alias="SLACK_REDIRECT_URI")
    slack_authorize_url: str = Field(
        "https://slack.com/oauth/v2/authorize", validation_alias="SLACK_AUTHORIZE_URL"
    )
    slack_allowed_channels: IdList = Field(frozenset(), validation_alias="SLACK_ALLOWED_CHANNELS")
    slack_allowed_users: IdList = Field(frozenset(), validation_alias="SLACK_ALLOWED_USERS")
    slack_file_hosts: IdList = Field(frozenset({"files.slack.com"}), validation_alias="SLACK_FILE_HOSTS")
    slack_greeting: str = Field(
        "Hi! Ask me anything. I remember this thread; `!history` lists it and `!rewind N`"
        " takes back the last N turns.",
        min_length=1, max_length=3000, validation_alias="SLACK_GREETING",
    )
    slack_suggested_prompts: Prompts = Field(
        ("What can you help me with?", "Search the web for today's top tech news",
         "Explain rewinding a conversation with an example"),
        validation_alias="SLACK_SUGGESTED_PROMPTS",
    )

    # Discord
    discord_bot_token: SecretStr | None = Field(None, validation_alias="DISCORD_BOT_TOKEN")
    discord_api_base_url: str | None = Field(None, validation_alias="DISCORD_API_BASE_URL")
    discord_gateway_url: str | None = Field(None, validation_alias="DISCORD_GATEWAY_URL")
    discord_shard_count: int | None = Field(None, ge=1, validation_alias="DISCORD_SHARD_COUNT")
    discord_shard_ids: NumericIds = Field(frozenset(), validation_alias="DISCORD_SHARD_IDS")
    discord_dev_guild_id: int | None = Field(None, validation_alias="DISCORD_DEV_GUILD_ID")
    discord_open_channels: NumericIds = Field(frozenset(), validation_alias="DISCORD_OPEN_CHANNELS")
    discord_allowed_guilds: NumericIds = Field(frozenset(), validation_alias="DISCORD_ALLOWED_GUILDS")
    discord_allowed_channels: NumericIds = Field(frozenset(), validation_alias="DISCORD_ALLOWED_CHANNELS")
    discord_allowed_roles: NumericIds = Field(frozenset(), validation_alias="DISCORD_ALLOWED_ROLES")
    discord_allowed_users: NumericIds = Field(frozenset(), validation_alias="DISCORD_ALLOWED_USERS")
    discord_file_hosts: IdList = Field(
        frozenset({"cdn.discordapp.com", "media.discordapp.net"}), validation_alias="DISCORD_FILE_HOSTS"
    )

    log_level: str = Field("INFO", validation_alias="BACKTRACK_LOG_LEVEL")

    @field_validator("db_prepare_threshold", mode="before")
    @classmethod
    def _threshold_off(cls, value: object) -> object:
        """``off`` disables prepared statements, as PgBouncer in transaction mode needs."""
        if isinstance(value, str) and value.strip().lower() in ("", "off", "none"):
            return None
        return value

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """BACKTRACK_MODEL first, then the other names of BACKTRACK_MODELS in order."""
        return (self.model, *sorted(self.models - {self.model}))

    @property
    def offline_model(self) -> bool:
        """No key and no endpoint: the bundled demo model answers."""
        return self.openai_api_key is None and self.openai_base_url is None


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "settings"
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from None
