"""The composition root: the one place that turns a config into a working station.

``build_station(config)`` returns a :class:`Station` whose methods hand out services wired to real
adapters. Tests pass overrides (a fixed clock, a fake) instead of patching. Nothing here runs at
import time: adapters are imported and opened only when a service first needs them.

Threading: a :class:`Station` and the store it opened belong to the thread that built them. A slot
worker builds its own (``station.for_thread()``), because SQLite connections and serial ports are
single-owner resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from station.config import StationConfig
from station.ports import Clock, IdentityStore
from station.services.database import DatabaseService
from station.services.devices import DeviceService


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


@dataclass
class Station:
    """A configured station: services on top of lazily opened adapters."""

    config: StationConfig
    clock: Clock = field(default_factory=SystemClock)
    operator: str = ""
    _store: IdentityStore | None = None

    # ------------------------------------------------------------------ adapters
    def store(self) -> IdentityStore:
        """The identity store, opened (and migrated if needed) on first use."""
        if self._store is None:
            from station.adapters.store.sqlite_store import SqliteStore

            self._store = SqliteStore.open(
                self.config.database_path,
                busy_timeout_ms=self.config.database.busy_timeout_ms,
                backup_dir=self.config.backup_dir,
                clock=self.clock,
            )
        return self._store

    def for_thread(self) -> Station:
        """A sibling station for another thread: same config and clock, its own connections."""
        return Station(config=self.config, clock=self.clock, operator=self.operator)

    def close(self) -> None:
        """Close every adapter this station opened."""
        if self._store is not None:
            self._store.close()
            self._store = None

    # ------------------------------------------------------------------ services
    def database(self) -> DatabaseService:
        """Initialise, verify, back up and migrate the identity store."""
        return DatabaseService(
            self.store(),
            clock=self.clock,
            station_id=self.config.station.id,
            operator=self.operator,
        )

    def devices(self) -> DeviceService:
        """Find and show recorded identities."""
        return DeviceService(self.store())


def build_station(
    config: StationConfig, *, clock: Clock | None = None, operator: str = ""
) -> Station:
    """Build a station from ``config``.

    Args:
        config: the loaded configuration.
        clock: replaces the system clock (tests, golden files).
        operator: the operator whose name goes into audit events.
    """
    return Station(config=config, clock=clock or SystemClock(), operator=operator)
