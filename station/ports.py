"""Ports: the boundaries between the station's services and the outside world.

Each port is a small :class:`typing.Protocol`. Services depend only on these; adapters implement
them (``station.adapters``), fakes implement them for fast tests, and ``station.bootstrap`` is the
one place that decides which implementation a running station gets.

Lifecycle rules shared by every port: an object is created by bootstrap, used from exactly one
thread (the slot worker, a CLI command, a one-shot job) and closed by whoever created it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Protocol

from station.domain.audit import AuditEvent, EventDraft
from station.domain.records import (
    BatchRecord,
    CertificateRecord,
    DeviceQuery,
    DeviceRecord,
    JobRecord,
    LabelRecord,
    OperatorRecord,
    SchemaStatus,
)


class Clock(Protocol):
    """Where the station gets the time from (injected so tests and golden files are stable)."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class IdentityStore(Protocol):
    """The station database: identities, issuance log, jobs, batches and the audit chain.

    Every use case runs inside one :meth:`atomic` block: either all of its rows and its audit events
    are written, or none are.
    """

    def atomic(self) -> AbstractContextManager[None]:
        """Group the writes of one use case into one transaction (nested blocks are savepoints)."""
        ...

    def schema_status(self) -> SchemaStatus:
        """Report applied, pending and unknown (newer) migrations."""
        ...

    def migrate(self, *, backup_dir: Path) -> Path | None:
        """Apply pending migrations, backing up first; returns the backup file, if one was made."""
        ...

    def append_event(self, draft: EventDraft) -> AuditEvent:
        """Chain and store one audit event; returns the stored event with its hash."""
        ...

    def events(self, *, after_seq: int = 0) -> Iterator[AuditEvent]:
        """Iterate audit events in chain order."""
        ...

    def event(self, seq: int) -> AuditEvent | None:
        """Return one event by sequence number."""
        ...

    def events_for(self, subject: str) -> list[AuditEvent]:
        """Return the events about one subject (registration ID, batch, ...), oldest first."""
        ...

    def audit_head(self) -> tuple[int, str] | None:
        """Return the (seq, hash) the store recorded as the chain head, if any."""
        ...

    def save_device(self, record: DeviceRecord) -> None:
        """Insert or replace a device row (its manifest, hash and index columns)."""
        ...

    def devices(self, query: DeviceQuery) -> list[DeviceRecord]:
        """Return the devices matching ``query`` (bounded by ``query.limit``)."""
        ...

    def iter_devices(self) -> Iterator[DeviceRecord]:
        """Iterate every device row as stored, in id order."""
        ...

    def device(self, registration_id: str) -> DeviceRecord | None:
        """Return the device with this registration ID (any case), if recorded."""
        ...

    def count_devices(self, query: DeviceQuery) -> int:
        """Count the devices matching ``query`` (ignoring limit and offset)."""
        ...

    def certificate(self, serial_number: str) -> CertificateRecord | None:
        """Return the issuance-log entry for a certificate serial number (hex, any case)."""
        ...

    def count_certificates(self, *, batch: str = "", status: str = "") -> int:
        """Count issuance-log entries, optionally for one batch and/or one status."""
        ...

    def certificates_for(self, registration_id: str) -> list[CertificateRecord]:
        """Return every issuance-log entry for one registration ID, oldest first."""
        ...

    def iter_certificates(self) -> Iterator[CertificateRecord]:
        """Iterate the issuance log in order."""
        ...

    def save_certificate(self, record: CertificateRecord) -> None:
        """Insert or update one issuance-log entry."""
        ...

    def save_job(self, record: JobRecord) -> JobRecord:
        """Insert (``id is None``) or update a job; returns it with its id."""
        ...

    def job(self, job_id: int) -> JobRecord | None:
        """Return one job."""
        ...

    def open_jobs(self) -> list[JobRecord]:
        """Return provisioning jobs that have not reached a final state."""
        ...

    def batch(self, name: str) -> BatchRecord | None:
        """Return the batch called ``name``."""
        ...

    def save_batch(self, record: BatchRecord) -> BatchRecord:
        """Insert or update a batch (by name); returns it with its id."""
        ...

    def batches(self) -> list[BatchRecord]:
        """Return every batch, newest first."""
        ...

    def operator(self, name: str) -> OperatorRecord | None:
        """Return the operator called ``name``."""
        ...

    def operators(self) -> list[OperatorRecord]:
        """Return every operator."""
        ...

    def save_operator(self, record: OperatorRecord) -> OperatorRecord:
        """Insert or update an operator (by name); returns it with its id."""
        ...

    def save_label(self, record: LabelRecord) -> LabelRecord:
        """Append one print-log entry; returns it with its id."""
        ...

    def labels(self, registration_id: str) -> list[LabelRecord]:
        """Return the print log of one device, oldest first."""
        ...

    def backup(self, target: Path) -> None:
        """Write an online, consistent copy of the database to ``target``."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
