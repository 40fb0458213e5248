"""The :class:`~station.ports.IdentityStore` on a SQLite file through sqlite-utils.

* WAL journal, ``synchronous=NORMAL``, a busy timeout, foreign-key-free simple schema.
* Every write transaction starts with ``BEGIN IMMEDIATE``: two processes never both read the chain
  head and then race to append (a deferred transaction would fail at the lock upgrade instead of
  waiting for the busy timeout).
* Opening migrates an older database after writing a verified backup next to it, and refuses a
  database that holds migrations this station does not know (written by a newer version).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from station.adapters.outputs import OwnedPaths, write_output_with
from station.adapters.store import migrations as schema
from station.adapters.store import row_scan
from station.domain.audit import AuditEvent, EventDraft, chain, format_time
from station.domain.errors import SchemaTooNewError, StoreBusyError, StoreError
from station.domain.records import (
    BatchRecord,
    CertificateRecord,
    DeviceQuery,
    DeviceRecord,
    JobRecord,
    LabelRecord,
    OperatorRecord,
    Role,
    SchemaStatus,
)
from station.domain.states import DeviceStatus, JobState
from station.ports import Clock

log = logging.getLogger(__name__)

_AUDIT_HEAD = "audit_head"


def _prepare_file(path: Path, *, create: bool) -> None:
    """Refuse a missing (unless ``create``) or zero-length database; create a new one 0600."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if not create:
            raise StoreError(
                f"there is no station database at {path}",
                remedy="Check [station] data_dir (or [database] path) in the config; run "
                "'station init' only to set up a new station.",
                path=str(path),
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # another process may have created it meanwhile: then open that one
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except OSError as exc:
        raise StoreError(f"cannot open the station database {path}: {exc.strerror}") from exc
    if size == 0:
        raise StoreError(
            f"the station database {path} is empty (zero bytes)",
            remedy="The file was truncated; restore the latest backup ('station db verify "
            "--anchor' tells you which head it must reach). The station does not start a new "
            "database in its place.",
            path=str(path),
        )


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=True
        )
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"cannot open the station database {path}: {exc}",
            remedy="Check that the file is a station database and that the disk is not full; "
            "restore the latest backup if it is damaged.",
            path=str(path),
        ) from exc
    return conn


def _translate(exc: sqlite3.Error, path: Path) -> StoreError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return StoreBusyError(
            f"the station database {path} stayed locked by another process",
            remedy="Wait a moment and retry; if it persists, close other station windows.",
            path=str(path),
        )
    return StoreError(f"database error on {path}: {text}", path=str(path))


class SqliteStore:
    """The identity store. Create it with :meth:`open`; use it from one thread."""

    def __init__(self, db: Database, path: Path, clock: Clock) -> None:
        self._db = db
        self._path = path
        self._clock = clock

    # ------------------------------------------------------------------ lifecycle
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
    ) -> SqliteStore:
        """Open (creating it if allowed and missing) and migrate the database at ``path``.

        A new database file is readable by its owner only (0600, in a 0700 folder if the
        folder is new too); SQLite gives its WAL and shared-memory files the same mode.

        Raises:
            SchemaTooNewError: the file was written by a newer station.
            StoreError: the file is missing (and ``create`` is off), empty (zero bytes: it was
                truncated, and SQLite would silently start a new database in it), or cannot be
                opened or migrated.
        """
        _prepare_file(path, create=create)
        store = cls(Database(_connect(path, busy_timeout_ms)), path, clock)
        try:
            status = store.schema_status()
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
                store.migrate(backup_dir=backup_dir or path.parent / "backups")
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._db.conn.close()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # ------------------------------------------------------------------ schema
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

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One use case = one transaction. The outer block takes the write lock up front."""
        conn = self._db.conn
        if conn.in_transaction:
            with self._db.atomic():  # nested use case: a savepoint inside the outer transaction
                yield
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc, self._path) from exc
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _translate(exc, self._path) from exc

    @contextmanager
    def _write(self) -> Iterator[None]:
        """A single write: joins the caller's transaction, or is its own."""
        if self._db.conn.in_transaction:
            yield
        else:
            with self.atomic():
                yield

    def _rollback(self) -> None:
        # An error inside SQLite may already have ended the transaction.
        if self._db.conn.in_transaction:
            self._db.conn.execute("ROLLBACK")

    # ------------------------------------------------------------------ audit
    def append_event(self, draft: EventDraft) -> AuditEvent:
        """Chain ``draft`` after the current head and store it, with the new head, atomically."""
        with self._write():
            row = self._db.execute(
                "SELECT seq, time, station, operator, kind, subject, payload, prev_hash, hash "
                "FROM events ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            prev = _event(row) if row else None
            event = chain(draft, prev=prev, time=self._clock.now())
            self._db.execute(
                "INSERT INTO events (seq, time, station, operator, kind, subject, payload, "
                "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    event.seq,
                    event.time,
                    event.station,
                    event.operator,
                    event.kind,
                    event.subject,
                    event.payload_json,
                    event.prev_hash,
                    event.hash,
                ],
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [_AUDIT_HEAD, f"{event.seq}:{event.hash}"],
            )
        return event

    def events(self, *, after_seq: int = 0) -> Iterator[AuditEvent]:
        """Iterate events in seq order, in pages, so a long chain streams in constant memory."""
        last = after_seq
        while True:
            rows = self._db.execute(
                "SELECT seq, time, station, operator, kind, subject, payload, prev_hash, hash "
                "FROM events WHERE seq > ? ORDER BY seq LIMIT 1000",
                [last],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _event(row)
            last = rows[-1][0]

    def event(self, seq: int) -> AuditEvent | None:
        """Return one event by sequence number."""
        row = self._db.execute(
            "SELECT seq, time, station, operator, kind, subject, payload, prev_hash, hash "
            "FROM events WHERE seq = ?",
            [seq],
        ).fetchone()
        return _event(row) if row else None

    def events_for(self, subject: str) -> list[AuditEvent]:
        """Return the events about one subject, oldest first."""
        rows = self._db.execute(
            "SELECT seq, time, station, operator, kind, subject, payload, prev_hash, hash "
            "FROM events WHERE subject = ? ORDER BY seq",
            [subject],
        ).fetchall()
        return [_event(row) for row in rows]

    def audit_head(self) -> tuple[int, str] | None:
        """The (seq, hash) recorded as chain head in the same transaction as the last event."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [_AUDIT_HEAD]).fetchone()
        if row is None:
            return None
        seq, _, digest = str(row[0]).partition(":")
        return int(seq), digest

    # ------------------------------------------------------------------ devices
    def save_device(self, record: DeviceRecord) -> None:
        """Insert or replace the row for ``record.registration_id``."""
        values = _device_values(record)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "created_at")
        try:
            with self._write():
                self._db.execute(
                    f"INSERT INTO devices ({columns}) VALUES ({marks}) "
                    f"ON CONFLICT(registration_id) DO UPDATE SET {updates}",
                    list(values.values()),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"device {record.registration_id} conflicts with a recorded identity: {exc}",
                registration_id=record.registration_id,
            ) from exc

    def device(self, registration_id: str) -> DeviceRecord | None:
        """Return the device with this registration ID (case-insensitive)."""
        row = self._db.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE registration_id = ?",
            [registration_id.lower()],
        ).fetchone()
        return _device(row) if row else None

    def devices(self, query: DeviceQuery) -> list[DeviceRecord]:
        """Return devices matching ``query``, newest first, bounded by ``query.limit``."""
        where, params = _device_filter(query)
        rows = self._db.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, query.limit, query.offset],
        ).fetchall()
        return [_device(row) for row in rows]

    def count_devices(self, query: DeviceQuery) -> int:
        """Count devices matching ``query``."""
        where, params = _device_filter(query)
        row = self._db.execute(f"SELECT count(*) FROM devices{where}", params).fetchone()
        return int(row[0])

    def iter_devices(self) -> Iterator[DeviceRecord]:
        """Every device row as stored, in id order, streamed in pages."""
        last = 0
        while True:
            rows = self._db.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id > ? ORDER BY id LIMIT 1000",
                [last],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _device(row)
            last = rows[-1][-1]

    # ------------------------------------------------------------------ certificates
    def save_certificate(self, record: CertificateRecord) -> None:
        """Insert or update (by serial number) one issuance-log entry."""
        values = {
            "serial_number": record.serial_number.upper(),
            "registration_id": record.registration_id,
            "thumbprint_sha256": record.thumbprint_sha256,
            "certificate_pem": record.certificate_pem,
            "not_before": record.not_before,
            "not_after": record.not_after,
            "profile": record.profile,
            "status": record.status,
            "issued_at": record.issued_at,
            "batch": record.batch,
            "job_id": record.job_id,
            "void_reason": record.void_reason,
        }
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "serial_number")
        with self._write():
            self._db.execute(
                f"INSERT INTO certificates ({columns}) VALUES ({marks}) "
                f"ON CONFLICT(serial_number) DO UPDATE SET {updates}",
                list(values.values()),
            )

    def certificate(self, serial_number: str) -> CertificateRecord | None:
        """Return one issuance-log entry by serial number (hex, any case)."""
        row = self._db.execute(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE serial_number = ?",
            [serial_number.upper()],
        ).fetchone()
        return _certificate(row) if row else None

    def count_certificates(self, *, batch: str = "", status: str = "") -> int:
        """Count issuance-log entries for a batch and/or a status."""
        clauses, params = [], []
        if batch:
            clauses.append("batch = ?")
            params.append(batch)
        if status:
            clauses.append("status = ?")
            params.append(status)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return int(
            self._db.execute(f"SELECT count(*) FROM certificates{where}", params).fetchone()[0]
        )

    def certificates_for(self, registration_id: str) -> list[CertificateRecord]:
        """Every issuance-log entry for one registration ID, oldest first."""
        rows = self._db.execute(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE registration_id = ? ORDER BY id",
            [registration_id.lower()],
        ).fetchall()
        return [_certificate(row) for row in rows]

    def iter_certificates(self) -> Iterator[CertificateRecord]:
        """The issuance log in order."""
        last = 0
        while True:
            rows = self._db.execute(
                f"SELECT {_CERT_COLUMNS} FROM certificates WHERE id > ? ORDER BY id LIMIT 1000",
                [last],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _certificate(row)
            last = rows[-1][-1]

    # ------------------------------------------------------------------ jobs
    def save_job(self, record: JobRecord) -> JobRecord:
        """Insert or update a provisioning job."""
        values = {
            "slot": record.slot,
            "batch": record.batch,
            "state": str(record.state),
            "step": record.step,
            "board_serial": record.board_serial,
            "registration_id": record.registration_id,
            "data": json.dumps(record.data, sort_keys=True),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
        with self._write():
            if record.id is None:
                cursor = self._db.execute(
                    f"INSERT INTO jobs ({', '.join(values)}) "
                    f"VALUES ({', '.join('?' for _ in values)})",
                    list(values.values()),
                )
                job_id = int(cursor.lastrowid or 0)
            else:
                self._db.execute(
                    f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
                    [*values.values(), record.id],
                )
                job_id = record.id
        return JobRecord(**{**record.__dict__, "id": job_id})

    def job(self, job_id: int) -> JobRecord | None:
        """Return one job."""
        row = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", [job_id]).fetchone()
        return _job(row) if row else None

    def open_jobs(self) -> list[JobRecord]:
        """Jobs not yet passed or voided, oldest first."""
        rows = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state NOT IN ('passed', 'voided') ORDER BY id"
        ).fetchall()
        return [_job(row) for row in rows]

    # ------------------------------------------------------------------ batches
    def save_batch(self, record: BatchRecord) -> BatchRecord:
        """Insert or update a batch by name."""
        with self._write():
            self._db.execute(
                "INSERT INTO batches (name, product, size, status, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "product = excluded.product, size = excluded.size, status = excluded.status",
                [record.name, record.product, record.size, record.status, record.created_at],
            )
        saved = self.batch(record.name)
        assert saved is not None  # just written in this connection
        return saved

    def batch(self, name: str) -> BatchRecord | None:
        """Return the batch called ``name``."""
        row = self._db.execute(
            "SELECT name, product, size, status, created_at, id FROM batches WHERE name = ?", [name]
        ).fetchone()
        return BatchRecord(*row) if row else None

    def batches(self) -> list[BatchRecord]:
        """Every batch, newest first."""
        rows = self._db.execute(
            "SELECT name, product, size, status, created_at, id FROM batches ORDER BY id DESC"
        ).fetchall()
        return [BatchRecord(*row) for row in rows]

    # ------------------------------------------------------------------ settings
    def setting(self, key: str) -> str | None:
        """A station-wide setting from ``meta``."""
        if key == _AUDIT_HEAD:
            raise StoreError("the audit head is not a setting", key=key)
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def save_setting(self, key: str, value: str) -> None:
        """Store a station-wide setting in ``meta``."""
        if key == _AUDIT_HEAD:
            raise StoreError("the audit head is not a setting", key=key)
        with self._write():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    # ------------------------------------------------------------------ operators
    def operator(self, name: str) -> OperatorRecord | None:
        """Return the operator called ``name``."""
        row = self._db.execute(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE name = ?", [name]
        ).fetchone()
        return _operator(row) if row else None

    def operators(self) -> list[OperatorRecord]:
        """Every operator, by name."""
        rows = self._db.execute(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators ORDER BY name"
        ).fetchall()
        return [_operator(row) for row in rows]

    def save_operator(self, record: OperatorRecord) -> OperatorRecord:
        """Insert or update an operator by name."""
        with self._write():
            self._db.execute(
                "INSERT INTO operators (name, role, enabled, pin_hash, badge_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET role = excluded.role, "
                "enabled = excluded.enabled, pin_hash = excluded.pin_hash, "
                "badge_hash = excluded.badge_hash",
                [
                    record.name,
                    str(record.role),
                    int(record.enabled),
                    record.pin_hash,
                    record.badge_hash,
                    record.created_at,
                ],
            )
        saved = self.operator(record.name)
        assert saved is not None  # just written in this connection
        return saved

    # ------------------------------------------------------------------ labels
    def save_label(self, record: LabelRecord) -> LabelRecord:
        """Append one print-log entry."""
        with self._write():
            cursor = self._db.execute(
                "INSERT INTO labels (registration_id, template, printer, kind, reason, operator, "
                "printed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    record.registration_id,
                    record.template,
                    record.printer,
                    record.kind,
                    record.reason,
                    record.operator,
                    record.printed_at,
                ],
            )
        return LabelRecord(**{**record.__dict__, "id": int(cursor.lastrowid or 0)})

    def labels(self, registration_id: str) -> list[LabelRecord]:
        """The print log of one device, oldest first."""
        rows = self._db.execute(
            "SELECT registration_id, template, printer, kind, operator, printed_at, reason, id "
            "FROM labels WHERE registration_id = ? ORDER BY id",
            [registration_id.lower()],
        ).fetchall()
        return [LabelRecord(*row) for row in rows]

    # ------------------------------------------------------------------ maintenance
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
        own = self.path
        owned = OwnedPaths(
            files=tuple(
                (own.with_name(own.name + suffix), "the station's database")
                for suffix in ("", "-wal", "-shm", "-journal")
            )
        )
        source_head = self.audit_head()

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
                    copy.execute("SELECT value FROM meta WHERE key = ?", [_AUDIT_HEAD]).fetchone()
                    if has_meta
                    else None
                )
            except sqlite3.Error as exc:
                raise StoreError(f"backup to {target} failed: {exc}", target=str(target)) from exc
            finally:
                copy.close()
            copy_head = None
            if row is not None:
                seq, _, digest = str(row[0]).partition(":")
                copy_head = (int(seq), digest)
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

    def damaged_rows(self) -> list[tuple[str, str, str]]:
        """``(table, row, reason)`` for every row with a column the store cannot read."""
        return list(row_scan.damaged_rows(self._db.conn))

    def settings(self, prefix: str) -> list[tuple[str, str]]:
        """Every setting whose key starts with ``prefix``, by key."""
        rows = self._db.execute(
            "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ? AND key != ? ORDER BY key",
            [len(prefix), prefix, _AUDIT_HEAD],
        ).fetchall()
        return [(str(key), str(value)) for key, value in rows]

    def iter_labels(self) -> Iterator[LabelRecord]:
        """The whole print log, oldest first."""
        rows = self._db.execute(
            "SELECT registration_id, template, printer, kind, operator, printed_at, reason, id "
            "FROM labels ORDER BY id"
        ).fetchall()
        return iter([LabelRecord(*row) for row in rows])

    def iter_jobs(self) -> Iterator[JobRecord]:
        """Every provisioning job, oldest first."""
        rows = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id").fetchall()
        return iter([_job(row) for row in rows])

    def iter_pushes(self) -> Iterator[tuple[str, str, str]]:
        """Every outbox row as ``(batch, registration ID, state)``, in order."""
        rows = self._db.execute(
            "SELECT batch, registration_id, state FROM pushes ORDER BY id"
        ).fetchall()
        return iter([(str(b), str(r), str(s)) for b, r, s in rows])

    def raw_execute(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only diagnostic query (used by ``station db verify`` reports and tests)."""
        return [tuple(row) for row in self._db.execute(sql, params or []).fetchall()]


# ---------------------------------------------------------------------- row mapping
_DEVICE_COLUMNS = (
    "registration_id, serial, batch, product, attestation, status, ek_sha256, cert_thumbprint, "
    "manifest, manifest_hash, event_seq, created_at, updated_at, id"
)
_CERT_COLUMNS = (
    "serial_number, registration_id, thumbprint_sha256, certificate_pem, not_before, not_after, "
    "profile, status, issued_at, batch, job_id, void_reason, id"
)
_JOB_COLUMNS = (
    "slot, batch, state, step, created_at, updated_at, board_serial, registration_id, data, id"
)
_OPERATOR_COLUMNS = "name, role, enabled, created_at, pin_hash, badge_hash, id"


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        seq=row[0],
        time=row[1],
        station=row[2],
        operator=row[3],
        kind=row[4],
        subject=row[5],
        payload_json=row[6],
        prev_hash=row[7],
        hash=row[8],
    )


def _device_values(record: DeviceRecord) -> dict[str, Any]:
    return {
        "registration_id": record.registration_id,
        "serial": record.serial,
        "batch": record.batch,
        "product": record.product,
        "attestation": record.attestation,
        "status": str(record.status),
        "ek_sha256": record.ek_sha256,
        "cert_thumbprint": record.cert_thumbprint,
        "manifest": record.manifest_json,
        "manifest_hash": record.manifest_hash,
        "event_seq": record.event_seq,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _device(row: Any) -> DeviceRecord:
    status_text = row[5]
    try:
        status = DeviceStatus(status_text)
    except ValueError:
        # keep rows with an edited status readable; `station db verify` reports them
        status = DeviceStatus.PROVISIONING
        log.warning("device %s has an unknown status %r", row[0], status_text)
    return DeviceRecord(
        registration_id=row[0],
        serial=row[1],
        batch=row[2],
        product=row[3],
        attestation=row[4],
        status=status,
        ek_sha256=row[6],
        cert_thumbprint=row[7],
        manifest_json=row[8],
        manifest_hash=row[9],
        event_seq=row[10],
        created_at=row[11],
        updated_at=row[12],
        id=row[13],
    )


def _device_filter(query: DeviceQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("batch", query.batch),
        ("status", query.status),
        ("serial", query.serial),
        ("registration_id", query.registration_id.lower()),
        ("ek_sha256", query.ek_sha256.lower()),
        ("cert_thumbprint", query.cert_thumbprint.lower()),
    ):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
            if column in ("ek_sha256", "cert_thumbprint"):
                # lets SQLite use the partial index (it cannot prove "? != ''" itself)
                clauses.append(f"{column} != ''")
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _certificate(row: Any) -> CertificateRecord:
    return CertificateRecord(
        serial_number=row[0],
        registration_id=row[1],
        thumbprint_sha256=row[2],
        certificate_pem=row[3],
        not_before=row[4],
        not_after=row[5],
        profile=row[6],
        status=row[7],
        issued_at=row[8],
        batch=row[9],
        job_id=row[10],
        void_reason=row[11],
        id=row[12],
    )


def _job(row: Any) -> JobRecord:
    return JobRecord(
        slot=row[0],
        batch=row[1],
        state=JobState(row[2]),
        step=row[3],
        created_at=row[4],
        updated_at=row[5],
        board_serial=row[6],
        registration_id=row[7],
        data=json.loads(row[8]),
        id=row[9],
    )


def _operator(row: Any) -> OperatorRecord:
    return OperatorRecord(
        name=row[0],
        role=Role(row[1]),
        enabled=bool(row[2]),
        created_at=row[3],
        pin_hash=row[4],
        badge_hash=row[5],
        id=row[6],
    )


def now_text(clock: Clock) -> str:
    """The clock's current time in the store's text form."""
    moment: datetime = clock.now()
    return format_time(moment)
