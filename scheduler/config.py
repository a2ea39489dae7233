"""Settings: environment variables with the prefix ``REMINDERS_`` (DESIGN §13).

Reading settings performs no I/O beyond the environment; ``check()`` validates what
pydantic cannot (the database URL's dialect), so a bad configuration fails with one
clear line before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from scheduler.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///./var/reminders.db"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REMINDERS_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL schema to work in (search_path); unset means the server's default.
    database_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    sender: Literal["outbox", "ses"] = "outbox"
    outbox_dir: Path = Path("./var/outbox")
    base_url: str = "http://127.0.0.1:8000"
    # Comma-separated; the first signs, all verify (rotation). Empty: the embedded
    # default generates one into ./var/signing.key on first start.
    signing_keys: str = ""
    signing_key_file: Path = Path("./var/signing.key")
    token_max_age_days: int = Field(default=180, ge=1)
    ses_region: str = "us-east-1"
    ses_configuration_set: str = "timeplan-transactional"
    aws_endpoint_url: str | None = None
    batch_window_seconds: int = Field(default=60, ge=0, le=86_400)
    batch_max_items: int = Field(default=10, ge=1, le=1000)
    ses_events_queue_url: str | None = None
    sns_topic_arns: str = ""
    min_rule_interval_seconds: int = Field(default=300, ge=60)
    lease_seconds: int = Field(default=60, ge=5)
    stage_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Sends in flight at once per worker process (delivery/handoff.py).
    send_concurrency: int = Field(default=8, ge=1, le=64)
    # Final occurrences/messages and SES events older than this are deleted (retention.py).
    retention_days: int = Field(default=30, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=65_536, ge=1024)
    mail_domain: str = "timeplanpush.com"
    stream: str = "transactional"
    seed_demo: bool = False

    @field_validator("database_url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"malformed database URL: {exc}") from None
        if url.get_backend_name() not in SUPPORTED_DIALECTS:
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql"
            )
        return value

    @property
    def dialect(self) -> str:
        return make_url(self.database_url).get_backend_name()

    @property
    def topic_arns(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.sns_topic_arns.split(",") if a.strip())

    @property
    def signing_key_list(self) -> list[str]:
        return [k.strip() for k in self.signing_keys.split(",") if k.strip()]


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, or ``ConfigurationError`` with one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "REMINDERS_" + "_".join(str(p) for p in first["loc"]).upper()
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(f"{name}: {message}") from None
