"""The :class:`~station.ports.UnitOfWork` on a SQLite file through sqlite-utils.

One connection, one transaction per ``with uow:`` block (``BEGIN IMMEDIATE``; nested blocks are
savepoints), and one small repository per aggregate sharing both. Opening migrates an older
database after writing a verified backup next to it, and refuses a database that holds migrations
this station does not know (written by a newer version).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from station.adapters.store import background
from station.adapters.store.audit_log import SqliteAuditLog
from station.adapters.store.batches import SqliteBatches
from station.adapters.store.certificates import SqliteCertificates
from station.adapters.store.connection import Transactions, connect, prepare_file
from station.adapters.store.devices import SqliteDevices
from station.adapters.store.jobs import SqliteJobs
from station.adapters.store.labels import SqliteLabels
from station.adapters.store.maintenance import SqliteMaintenance
from station.adapters.store.operators import SqliteOperators
from station.adapters.store.pushes import SqlitePushes
from station.adapters.store.settings import SqliteSettings
from station.domain.errors import SchemaTooNewError
from station.ports import Clock, UnitOfWork

T = TypeVar("T")


class SqliteUnitOfWork:
    """The station database. Create it with :meth:`open`; use it from one thread."""

    def __init__(self, tx: Transactions, clock: Clock) -> None:
        self._tx = tx
        self._blocks: list[AbstractContextManager[None]] = []
        self.audit = SqliteAuditLog(tx, clock)
        self.devices = SqliteDevices(tx)
        self.certificates = SqliteCertificates(tx)
        self.jobs = SqliteJobs(tx)
        self.batches = SqliteBatches(tx)
        self.operators = SqliteOperators(tx)
        self.labels = SqliteLabels(tx)
        self.pushes = SqlitePushes(tx)
        self.settings = SqliteSettings(tx)
        self.maintenance = SqliteMaintenance(tx, self.audit, clock)
        #: audit events from which :meth:`in_background` starts a process (``None``: never)
        self.background_from_events: int | None = background.BACKGROUND_FROM_EVENTS

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        busy_timeout_ms: int = 10_000,
        backup_dir: Path | None = None,
        clock: Clock,
        migrate: bool = True,
        create: bool = True,
    ) -> SqliteUnitOfWork:
        """Open (creating it if allowed and missing) and migrate the database at ``path``.

        A new database file is readable by its owner only (0600, in a 0700 folder if the
        folder is new too); SQLite gives its WAL and shared-memory files the same mode.

        Raises:
            SchemaTooNewError: the file was written by a newer station.
            StoreError: the file is missing (and ``create`` is off), empty (zero bytes: it was
                truncated, and SQLite would silently start a new database in it), or cannot be
                opened or migrated.
        """
        prepare_file(path, create=create)
        uow = cls(Transactions(connect(path, busy_timeout_ms), path), clock)
        try:
            status = uow.maintenance.schema_status()
            if status.unknown:
                raise SchemaTooNewError(
                    f"the database {path} was written by a newer station version "
                    f"(it has migrations {', '.join(status.unknown)} that this version "
                    "does not know)",
                    remedy="Run the station version that wrote it, or restore a backup made "
                    "by this version.",
                    path=str(path),
                    unknown=list(status.unknown),
                )
            if migrate and status.pending:
                uow.maintenance.migrate(backup_dir=backup_dir or path.parent / "backups")
        except BaseException:
            uow.close()
            raise
        return uow

    @property
    def path(self) -> Path:
        """The database file."""
        return self._tx.path

    def in_background(self, task: Callable[[UnitOfWork], T]) -> Callable[[], T]:
        """Run the read-only ``task`` on a second connection, in another process if it pays.

        It pays from :attr:`background_from_events` audit events on (a process takes about a
        second to start); below that, or in a frozen app, ``task`` runs on this unit of work
        when its result is asked for.
        """
        if self.background_from_events is not None and background.can_start():
            row = self._tx.db.execute("SELECT ifnull(max(seq), 0) FROM events").fetchone()
            if int(row[0]) >= self.background_from_events:
                return background.start(self.path, task)
        return lambda: task(self)

    def __enter__(self) -> SqliteUnitOfWork:
        """Begin a transaction (``BEGIN IMMEDIATE``), or a savepoint inside the open one."""
        block = self._tx.atomic()
        block.__enter__()
        self._blocks.append(block)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        """Commit (release the savepoint), or roll back when the block raised."""
        self._blocks.pop().__exit__(exc_type, exc, tb)

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._tx.db.conn.close()
