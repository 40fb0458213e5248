"""The composition root: the one place that turns a config into a working station.

``build_station(config)`` returns a :class:`Station` whose methods hand out services wired to real
adapters. Tests pass overrides (a fixed clock, a fake) instead of patching. Nothing here runs at
import time: adapters are imported and opened only when a service first needs them.

Threading: a :class:`Station` and the store it opened belong to the thread that built them. A slot
worker builds its own (``station.for_thread()``), because SQLite connections and serial ports are
single-owner resources.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from station.config import StationConfig
from station.ports import BoardFinder, BoardLink, BoardWatcher, Clock, IdentityStore
from station.services.ca import CaService
from station.services.database import DatabaseService
from station.services.devices import DeviceService
from station.services.operators import OperatorService

if TYPE_CHECKING:
    from station.lab.boards.runner import LabBoards
    from station.services.labels import LabelService


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
    _board_links: list[BoardLink] = field(default_factory=list)
    _ca: CaService | None = None

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

    def board_session(self, port: str, *, handshake: bool = True) -> BoardLink:
        """Open a protocol session with the board on ``port`` (device path or pyserial URL).

        With ``handshake`` the session says hello first (and fails early on a wrong board or
        protocol version). The session is closed by :meth:`close` unless closed before.
        """
        from station.adapters.board.session import open_session

        board = self.config.board
        link = open_session(
            port,
            baud=board.baud,
            timeout_s=board.timeout_s,
            slow_timeout_s=board.slow_timeout_s,
            retries=board.retries,
        )
        self._board_links.append(link)
        if handshake:
            try:
                link.hello()
            except BaseException:
                link.close()
                raise
        return link

    def discovery(self) -> BoardFinder:
        """Board discovery: USB serial ports, the lab registry and the slot bindings."""
        from station.adapters.board.discovery import BoardDiscovery, SlotBindings

        board = self.config.board
        return BoardDiscovery(
            SlotBindings(board.slots_file or self.config.data_dir / "slots.toml"),
            usb_ids=board.usb_ids,
            lab_registry=self.config.lab_dir / "boards.json",
        )

    def hotplug(self) -> BoardWatcher:
        """A poller that reports board arrival and removal per slot."""
        from station.adapters.board.discovery import BoardDiscovery, HotplugMonitor

        finder = self.discovery()
        assert isinstance(finder, BoardDiscovery)
        return HotplugMonitor(finder)

    def lab_boards(self, *, baud: int | None = None, lab_dir: Path | None = None) -> LabBoards:
        """A runner for virtual boards under the lab directory (the caller stops it)."""
        from station.lab.boards.runner import LabBoards

        return LabBoards(
            lab_dir or self.config.lab_dir,
            baud=self.config.board.baud if baud is None else baud,
            registry=self.config.lab_dir / "boards.json",
        )

    def for_thread(self) -> Station:
        """A sibling station for another thread: same config and clock, its own connections."""
        return Station(config=self.config, clock=self.clock, operator=self.operator)

    def close(self) -> None:
        """Close every adapter this station opened."""
        if self._store is not None:
            self._store.close()
            self._store = None
        for link in self._board_links:
            link.close()
        self._board_links.clear()
        if self._ca is not None:
            self._ca.close()
            self._ca = None

    # ------------------------------------------------------------------ services
    def database(self) -> DatabaseService:
        """Initialise, verify, back up and migrate the identity store."""
        return DatabaseService(
            self.store(),
            clock=self.clock,
            station_id=self.config.station.id,
            operator=self.operator,
        )

    def operators(self) -> OperatorService:
        """Manage and authenticate operators."""
        return OperatorService(
            self.store(),
            clock=self.clock,
            station_id=self.config.station.id,
            operator=self.operator,
            random_bytes=secrets.token_bytes,
        )

    def ca(self, *, pin_prompt: Callable[[str], str] | None = None) -> CaService:
        """The station's CA: set-up, chain import, status and issuance.

        The CA key is opened on first issuance and stays open until :meth:`close`.

        Args:
            pin_prompt: asks a person for the token PIN when neither ``[ca] pin_file`` nor
                ``$STATION_PKCS11_PIN`` provides it (interactive CLI and GUI only).
        """
        if self._ca is None:
            from station.adapters.ca.admin import FileCaAdministration
            from station.adapters.ca.keys import pin_source
            from station.adapters.ca.profiles import default_profile_dir, load_profiles

            section = self.config.ca
            admin = FileCaAdministration(
                section.dir or self.config.data_dir / "ca",
                configured_uri=section.key_uri,
                pin_source=pin_source(section.pin_file, pin_prompt),
                chain_file=section.chain_file,
                root_file=section.root_file,
            )
            self._ca = CaService(
                store=self.store(),
                admin=admin,
                authority=admin.open_authority,
                profiles=load_profiles(section.profile_dir or default_profile_dir()),
                clock=self.clock,
                station_id=self.config.station.id,
                operator=self.operator,
                default_profile=section.default_profile,
                quota_spare=section.quota_spare,
                expiry_warning_days=section.expiry_warning_days,
            )
        return self._ca

    def devices(self) -> DeviceService:
        """Find and show recorded identities."""
        return DeviceService(self.store())

    def labels(self) -> LabelService:
        """Print, reprint and verify identity labels; batch reports (nothing to close)."""
        from station.adapters.labels.templates import TemplateLibrary
        from station.adapters.labels.toolkit import ReportlabLabels
        from station.services.labels import LabelService

        toolkit = ReportlabLabels()
        section = self.config.labels
        return LabelService(
            store=self.store(),
            templates=TemplateLibrary(section.template_dir),
            printers=toolkit,
            renderer=toolkit,
            clock=self.clock,
            station_id=self.config.station.id,
            operator=self.operator,
            default_template=section.device_template,
            batch_template=section.batch_template,
            default_printer=section.printer,
        )


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
