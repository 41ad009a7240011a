"""Configuration read from the environment (or passed explicitly).

Every field reads ``CQRS_<NAME>`` (names case-insensitive; keyword arguments win; the
region reads AWS's own variables), as pydantic-settings' ``env_prefix="CQRS_"`` would,
without pydantic: :class:`Settings` is built on the Lambda handler's cold path, where
pydantic and pydantic-settings were the largest imports. A bad value is an
:class:`InvalidSettingsError` naming the variable (or keyword) and what it must be.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import urlsplit

from .errors import InvalidSettingsError
from .large import BUCKET_NAME, DEFAULT_ATTRIBUTE_LIMIT

#: ``CQRS_ENDPOINT_URL`` value that selects the in-process moto engine.
EMBEDDED = "embedded"


@dataclass(frozen=True, init=False)
class Settings:
    """Where the tables live and how they are named.

    - ``endpoint_url`` (``CQRS_ENDPOINT_URL``): unset for AWS, ``embedded`` for
      in-process moto, or a URL (moto server, DynamoDB Local).
    - ``region`` (``AWS_REGION``/``AWS_DEFAULT_REGION``).
    - ``table_prefix`` (``CQRS_TABLE_PREFIX``), e.g. ``dev-shop-``.
    - ``tables_dir`` (``CQRS_TABLES_DIR``): the folder holding ``cqrs.json``.
    - ``time_zone`` (``CQRS_TIME_ZONE``) and ``fiscal_start_month``
      (``CQRS_FISCAL_START_MONTH``): how sequences rotate (default UTC, April).
    - ``sns_topic_arn`` (``CQRS_SNS_TOPIC_ARN``): where command status notifications go.
    - ``appsync_endpoint`` (``CQRS_APPSYNC_ENDPOINT``) and ``appsync_api_key``
      (``CQRS_APPSYNC_API_KEY``): an AppSync GraphQL endpoint command statuses are also
      sent to, as MBC does (API key, else SigV4); unset: none (:mod:`cqrs.events.appsync`).
    - ``sync_max_attempts`` (``CQRS_SYNC_MAX_ATTEMPTS``): failed sync attempts of one
      command before its entity is stuck and the stream moves on (default 5).
    - ``command_ttl_days`` (``CQRS_COMMAND_TTL_DAYS``) and ``command_ttl_master_data``
      (``CQRS_COMMAND_TTL_MASTER_DATA``): retention of superseded command versions, days
      for every command table and whether MBC's ``MASTER#<tenant>`` / ``TTL#<table>`` rows
      of ``<prefix>master-data`` override it; unset: kept for ever
      (:mod:`cqrs.write.retention`).
    - ``s3_bucket`` (``CQRS_S3_BUCKET``): where ``attributes`` over
      ``attribute_limit_size`` (``CQRS_ATTRIBUTE_LIMIT_SIZE``, bytes of JSON, default
      102400) are kept, as MBC keeps them; unset: none are (:mod:`cqrs.store.objects`).
      ``s3_endpoint_url`` (``CQRS_S3_ENDPOINT_URL``): S3's endpoint when not AWS's,
      default ``endpoint_url``.
    """

    #: The prefix of every field's variable (the region reads :data:`REGION_VARIABLES`).
    env_prefix: ClassVar[str] = "CQRS_"

    endpoint_url: str | None = None
    region: str = "ap-northeast-1"
    table_prefix: str = ""
    tables_dir: Path = Path("tables")
    time_zone: str = "UTC"
    fiscal_start_month: int = 4
    sns_topic_arn: str | None = None
    appsync_endpoint: str | None = None
    appsync_api_key: str | None = field(default=None, repr=False)
    sync_max_attempts: int = 5
    command_ttl_days: float | None = None
    command_ttl_master_data: bool = False
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    attribute_limit_size: int = DEFAULT_ATTRIBUTE_LIMIT

    def __init__(self, **values: object) -> None:
        """Keyword arguments (field names, or ``AWS_REGION``/``AWS_DEFAULT_REGION`` for the
        region; others are ignored), else the environment, else the defaults. Raises
        :class:`InvalidSettingsError` naming every bad value."""
        given = {_ALIASES.get(k, k): (k, v) for k, v in values.items()}
        environ = {name.lower(): value for name, value in os.environ.items()}
        problems: list[tuple[str, str, str]] = []
        for f in fields(self):
            where, raw = given.get(f.name) or _from_environment(f.name, environ) or (None, None)
            try:
                value = _PARSERS[f.name](f.default if where is None else raw)
            except ValueError as exc:
                problems.append((f.name, where or f.name, str(exc)))
                continue
            object.__setattr__(self, f.name, value)
        if problems:
            raise InvalidSettingsError(problems)

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes`` (validated; the environment is not read again)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        return type(self)(**{**current, **changes})

    def model_copy(self, *, update: Mapping[str, object] | None = None) -> Self:
        """:meth:`replace`, spelled as pydantic's ``model_copy(update=...)``."""
        return self.replace(**dict(update or {}))

    @property
    def embedded(self) -> bool:
        """True when the in-process moto engine is selected."""
        return self.endpoint_url == EMBEDDED


#: The region reads AWS's variables, unprefixed, in this order (keyword aliases too).
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "REGION")
_ALIASES = {"AWS_REGION": "region", "AWS_DEFAULT_REGION": "region"}


def _from_environment(name: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """``(variable, value)`` of field ``name`` in the (lowercased) environment, if set."""
    variables = REGION_VARIABLES if name == "region" else (Settings.env_prefix + name.upper(),)
    for variable in variables:
        if variable.lower() in environ:
            return variable, environ[variable.lower()]
    return None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {value!r}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _endpoint(value: object) -> str | None:
    text = _optional_text(value)
    if not text or text == EMBEDDED:
        return text or None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"endpoint URL {text!r} must be 'embedded' or an http(s) URL such as "
            "http://127.0.0.1:8000"
        )
    return text


def _path(value: object) -> Path:
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise ValueError(f"must be a path, got {value!r}")


def _number(value: object, kind: type[int] | type[float]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number, got {value!r}")
    try:
        number = kind(value.strip() if isinstance(value, str) else value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"must be {what}, got {value!r}") from None
    if kind is int and number != value and not isinstance(value, str):
        raise ValueError(f"must be an integer, got {value!r}")
    return number


def _int_from(low: int, high: int | None = None) -> Callable[[object], int]:
    def parse(value: object) -> int:
        number = int(_number(value, int))
        if number < low or (high is not None and number > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be an integer {bound}, got {value!r}")
        return number

    return parse


def _positive_days(value: object) -> float | None:
    if value is None or value == "":
        return None
    days = _number(value, float)
    if days <= 0:
        raise ValueError(f"must be a number of days above 0, got {value!r}")
    return days


def _bucket(value: object) -> str | None:
    text = _optional_text(value)
    if text and not BUCKET_NAME.fullmatch(text):
        raise ValueError(
            f"must be an S3 bucket name (3-63 lowercase letters, digits, dots and "
            f"hyphens), got {text!r}"
        )
    return text or None


_TRUE, _FALSE = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"must be true or false, got {value!r}")


_PARSERS: dict[str, Callable[[object], object]] = {
    "endpoint_url": _endpoint,
    "region": _text,
    "table_prefix": _text,
    "tables_dir": _path,
    "time_zone": _text,
    "fiscal_start_month": _int_from(1, 12),
    "sns_topic_arn": _optional_text,
    "appsync_endpoint": _optional_text,
    "appsync_api_key": _optional_text,
    "sync_max_attempts": _int_from(1),
    "command_ttl_days": _positive_days,
    "command_ttl_master_data": _flag,
    "s3_bucket": _bucket,
    "s3_endpoint_url": _endpoint,
    "attribute_limit_size": _int_from(1),
}
