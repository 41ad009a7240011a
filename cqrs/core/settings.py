"""Configuration read from the environment (or passed explicitly)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: ``CQRS_ENDPOINT_URL`` value that selects the in-process moto engine.
EMBEDDED = "embedded"


class Settings(BaseSettings):
    """Where the tables live and how they are named.

    - ``endpoint_url`` (``CQRS_ENDPOINT_URL``): unset for AWS, ``embedded`` for
      in-process moto, or a URL (moto server, DynamoDB Local).
    - ``region`` (``AWS_REGION``/``AWS_DEFAULT_REGION``).
    - ``table_prefix`` (``CQRS_TABLE_PREFIX``), e.g. ``dev-shop-``.
    - ``tables_dir`` (``CQRS_TABLES_DIR``): the folder holding ``cqrs.json``.
    - ``time_zone`` (``CQRS_TIME_ZONE``) and ``fiscal_start_month``
      (``CQRS_FISCAL_START_MONTH``): how sequences rotate (default UTC, April).
    - ``sns_topic_arn`` (``CQRS_SNS_TOPIC_ARN``): where command status notifications go.
    - ``sync_max_attempts`` (``CQRS_SYNC_MAX_ATTEMPTS``): failed sync attempts of one
      command before its entity is stuck and the stream moves on (default 5).
    """

    # Every field reads CQRS_<NAME> (env_prefix); the region keeps AWS's own variables.
    model_config = SettingsConfigDict(env_prefix="CQRS_", extra="ignore", frozen=True)

    endpoint_url: str | None = None
    region: str = Field(
        default="ap-northeast-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "region"),
    )
    table_prefix: str = ""
    tables_dir: Path = Path("tables")
    time_zone: str = "UTC"
    fiscal_start_month: int = Field(default=4, ge=1, le=12)
    sns_topic_arn: str | None = None
    sync_max_attempts: int = Field(default=5, ge=1)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_is_a_url(cls, value: str | None) -> str | None:
        if value is None or value == "" or value == EMBEDDED:
            return value or None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"endpoint URL {value!r} must be 'embedded' or an http(s) URL "
                "such as http://127.0.0.1:8000"
            )
        return value

    @property
    def embedded(self) -> bool:
        """True when the in-process moto engine is selected."""
        return self.endpoint_url == EMBEDDED
