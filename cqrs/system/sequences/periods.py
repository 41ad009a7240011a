"""Which period a moment belongs to: local time, fiscal year, the rotate value of a key."""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...core.errors import ConfigurationError, InterfaceError
from .models import RotateBy, parse_rotate_by


class Calendar:
    """A time zone (an IANA name or a ``tzinfo``) and the first month of a fiscal year."""

    def __init__(self, time_zone: str | tzinfo = "UTC", fiscal_start_month: int = 4) -> None:
        if isinstance(time_zone, tzinfo):
            self.time_zone: tzinfo = time_zone
        else:
            try:
                self.time_zone = ZoneInfo(time_zone)
            except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
                raise ConfigurationError(
                    f"unknown time zone {time_zone!r} for sequences", cause=exc
                ) from exc
        if (
            isinstance(fiscal_start_month, bool)
            or not isinstance(fiscal_start_month, int)
            or not 1 <= fiscal_start_month <= 12
        ):
            raise ConfigurationError(
                f"fiscal_start_month must be an integer 1..12, got {fiscal_start_month!r}"
            )
        self.fiscal_start_month = fiscal_start_month

    def local(self, moment: datetime) -> datetime:
        """``moment`` (timezone-aware) in the calendar's time zone."""
        if not isinstance(moment, datetime):
            raise InterfaceError(f"expected a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InterfaceError(
                f"datetime {moment.isoformat()} is naive; pass a timezone-aware datetime"
            )
        return moment.astimezone(self.time_zone)

    def fiscal_year(self, moment: datetime) -> int:
        """The calendar year the fiscal year of ``moment`` (local time) starts in."""
        local = self.local(moment)
        return local.year if local.month >= self.fiscal_start_month else local.year - 1

    def rotate_value(self, rotate: RotateBy | str, moment: datetime) -> str:
        """The period of ``moment`` under ``rotate``, as stored in the sort key."""
        rotate = parse_rotate_by(rotate)
        local = self.local(moment)
        if rotate is RotateBy.YEARLY:
            return f"{local.year:04d}"
        if rotate is RotateBy.FISCAL_YEARLY:
            return f"{self.fiscal_year(local):04d}"
        if rotate is RotateBy.MONTHLY:
            return f"{local.year:04d}{local.month:02d}"
        if rotate is RotateBy.DAILY:
            return f"{local.year:04d}{local.month:02d}{local.day:02d}"
        return RotateBy.NONE.value
