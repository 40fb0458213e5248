"""Use cases on the identity store itself: initialise, verify, back up, migrate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from station.domain.anchors import ChainAnchor
from station.domain.audit import AuditEvent, EventDraft
from station.domain.records import OperatorRecord, Role, SchemaStatus
from station.ports import Clock, UnitOfWork
from station.services.integrity import IntegrityReport, verify_store

INITIALIZED = "station.initialized"


@dataclass(frozen=True)
class InitResult:
    """What ``station init`` did."""

    created: bool  # False when the station was already initialised
    event: AuditEvent | None


@dataclass(frozen=True)
class BackupResult:
    """A verified backup."""

    path: Path
    events: int
    head_hash: str


class DatabaseService:
    """Initialise, verify, back up and migrate the identity store."""

    def __init__(self, store: UnitOfWork, *, clock: Clock, station_id: str) -> None:
        self._store = store
        self._clock = clock
        self._station = station_id

    def initialize(
        self, *, config_file: str, data_dir: str, admin: str = "", operator: str
    ) -> InitResult:
        """Record the station's initialisation as the first audit event (idempotent).

        Args:
            operator: who initialises (may be empty: ``admin`` is named then).
            config_file: the config file path, recorded in the event.
            data_dir: the data directory, recorded in the event.
            admin: if given and no operator exists yet, this operator is created as admin, so
                the station is never without someone allowed to manage it.
        """
        with self._store:
            if self._store.audit.head() is not None:
                return InitResult(created=False, event=None)
            event = self._store.audit.append(
                EventDraft(
                    kind=INITIALIZED,
                    subject=self._station,
                    payload={"config_file": config_file, "data_dir": data_dir},
                    operator=operator or admin,
                    station=self._station,
                )
            )
            if admin and not self._store.operators.all():
                self._store.operators.save(
                    OperatorRecord(name=admin, role=Role.ADMIN, enabled=True, created_at=event.time)
                )
                self._store.audit.append(
                    EventDraft(
                        kind="operator.added",
                        subject=admin,
                        payload={
                            "role": str(Role.ADMIN),
                            "enabled": True,
                            "has_pin": False,
                            "has_badge": False,
                        },
                        operator=operator or admin,
                        station=self._station,
                    )
                )
        return InitResult(created=True, event=event)

    def verify(self, *, anchor: ChainAnchor | None = None) -> IntegrityReport:
        """Walk the audit chain and every cross-reference (and reach ``anchor``, if given)."""
        return verify_store(self._store, anchor=anchor)

    def backup(self, target: Path, *, force: bool = False, operator: str) -> BackupResult:
        """Make an online, verified copy at ``target`` and record it in the audit trail.

        ``operator`` (who backs up) is named in the audit event.
        An existing ``target`` is replaced only with ``force``.
        """
        self._store.maintenance.backup(target, force=force)
        head = self._store.audit.head() or (0, "")
        self._store.audit.append(
            EventDraft(
                kind="database.backup",
                subject=self._station,
                payload={"path": str(target), "events": head[0], "head": head[1]},
                operator=operator,
                station=self._station,
            )
        )
        return BackupResult(path=target, events=head[0], head_hash=head[1])

    def anchor(self) -> ChainAnchor:
        """The chain head now, as an anchor to keep outside the database."""
        head = self._store.audit.head() or (0, "")
        return ChainAnchor(seq=head[0], hash=head[1], station=self._station)

    def schema_status(self) -> SchemaStatus:
        """Applied, pending and unknown migrations."""
        return self._store.maintenance.schema_status()

    def migrate(self, *, backup_dir: Path) -> tuple[SchemaStatus, Path | None]:
        """Apply pending migrations (after a backup); return the new status and the backup."""
        backup = self._store.maintenance.migrate(backup_dir=backup_dir)
        return self._store.maintenance.schema_status(), backup
