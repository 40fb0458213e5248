"""The :class:`~station.ports.StoreMaintenance`: schema migrations, verified backups, row scan."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection
from datetime import UTC
from pathlib import Path

from station.adapters.outputs import OwnedPaths, write_output_with
from station.adapters.store import migrations as schema
from station.adapters.store import row_scan
from station.adapters.store.audit_log import parse_head
from station.adapters.store.connection import AUDIT_HEAD, Transactions
from station.domain.errors import StoreError
from station.domain.records import SchemaStatus
from station.ports import AuditLog, Clock

log = logging.getLogger(__name__)


class SqliteMaintenance:
    """What concerns the database file as a whole."""

    def __init__(self, tx: Transactions, audit: AuditLog, clock: Clock) -> None:
        self._tx = tx
        self._db = tx.db
        self._path = tx.path
        self._audit = audit
        self._clock = clock

    def schema_status(self) -> SchemaStatus:
        """Applied, pending and unknown migrations."""
        known = schema.known_migrations()
        applied = tuple(m.name for m in schema.migrations.applied(self._db))
        return SchemaStatus(
            applied=applied,
            pending=tuple(name for name in known if name not in applied),
            unknown=tuple(name for name in applied if name not in known),
        )

    def migrate(self, *, backup_dir: Path) -> Path | None:
        """Apply pending migrations; back up first if the database already holds data.

        Returns:
            the backup file, or ``None`` when the database was new.
        """
        status = self.schema_status()
        if not status.pending:
            return None
        backup: Path | None = None
        if status.applied:
            stamp = self._clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            backup = backup_dir / f"{self._path.stem}-before-{status.pending[0]}-{stamp}.db"
            self.backup(backup)
            log.info("backed up %s to %s before migrating", self._path, backup)
        try:
            schema.migrations.apply(self._db)
        except sqlite3.Error as exc:
            raise StoreError(
                f"migrating {self._path} failed: {exc}",
                remedy=f"The database is unchanged; a backup is at {backup}." if backup else "",
                path=str(self._path),
            ) from exc
        return backup

    def backup(self, target: Path, *, force: bool = False) -> None:
        """Write an online, consistent copy to ``target`` and check the copy before keeping it.

        The copy is written next to ``target`` (readable by its owner only) and renamed into
        place only after SQLite's integrity check passes and its audit head equals the source's
        at copy time. The database and its journals are never a target; an existing file is
        replaced only with ``force``.

        Raises:
            OutputRefusedError: ``target`` is this database, or exists and ``force`` is off.
            StoreError: the copy failed or did not verify.
        """
        own = self._path
        owned = OwnedPaths(
            files=tuple(
                (own.with_name(own.name + suffix), "the station's database")
                for suffix in ("", "-wal", "-shm", "-journal")
            )
        )
        source_head = self._audit.head()

        def produce(partial: Path) -> None:
            copy = sqlite3.connect(str(partial))
            try:
                self._db.conn.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")
                check = copy.execute("PRAGMA integrity_check").fetchone()[0]
                has_meta = copy.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'meta'"
                ).fetchone()[0]
                row = (
                    copy.execute("SELECT value FROM meta WHERE key = ?", [AUDIT_HEAD]).fetchone()
                    if has_meta
                    else None
                )
            except sqlite3.Error as exc:
                raise StoreError(f"backup to {target} failed: {exc}", target=str(target)) from exc
            finally:
                copy.close()
            copy_head = None if row is None else parse_head(str(row[0]))
            if check != "ok" or copy_head != source_head:
                raise StoreError(
                    f"backup to {target} did not verify ({check}; head {copy_head} vs "
                    f"{source_head})",
                    remedy="Check free disk space and retry.",
                    target=str(target),
                )

        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new folder: 0700
            write_output_with(target, produce, force=force, owned=owned, mode=0o600)
        except OSError as exc:
            raise StoreError(
                f"backup to {target} failed: {exc.strerror}",
                remedy="Choose a writable folder with free space.",
                target=str(target),
            ) from exc

    def damaged_rows(
        self, tables: Collection[str] | None = None, *, exclude: Collection[str] = ()
    ) -> list[tuple[str, str, str]]:
        """``(table, row, reason)`` for every row with a column the store cannot read.

        Args:
            tables: scan only these tables (default: every table), in the schema's order.
            exclude: leave these tables out.
        """
        return list(row_scan.damaged_rows(self._db.conn, tables=tables, exclude=exclude))
