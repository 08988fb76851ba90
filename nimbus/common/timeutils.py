"""Time helpers: everything is UTC and timezone-aware inside, ISO 8601 at the API."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime) -> datetime:
    """Databases such as SQLite hand back naive datetimes: they are UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def isotime(dt: datetime | None, *, micro: bool = False) -> str | None:
    """Keystone style: 2026-11-22T08:24:40.000000Z (micro) or 2026-11-22T08:24:40Z."""
    if dt is None:
        return None
    dt = aware(dt).astimezone(UTC)
    if micro:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_isotime(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return aware(datetime.fromisoformat(text))
