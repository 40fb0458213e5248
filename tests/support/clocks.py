"""Clocks for tests: a fixed one for deterministic records, a steady real one for outside tools."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FixedClock:
    """A clock that advances one second per reading, from a fixed start."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def now(self) -> datetime:
        value = self.current
        self.current += timedelta(seconds=1)
        return value


class SteadyClock:
    """The real time (openssl and outside tools check against it), never repeating a reading."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def now(self) -> datetime:
        self.current = max(datetime.now(UTC), self.current + timedelta(microseconds=1))
        return self.current
