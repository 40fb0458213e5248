"""An in-memory identity store with just what the CA service uses (fast tests).

``atomic`` keeps the issuance log and the audit events in a transaction: an exception inside the
block (or a failing commit, when ``fail_commit`` is set) leaves both as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from station.domain.audit import AuditEvent, EventDraft, chain
from station.domain.errors import StoreError
from station.domain.records import (
    BatchRecord,
    CertificateRecord,
    DeviceRecord,
    JobRecord,
    OperatorRecord,
)


class FakeStore:
    def __init__(self) -> None:
        self.certs: dict[str, CertificateRecord] = {}
        self.event_log: list[AuditEvent] = []
        self.batches: dict[str, BatchRecord] = {}
        self.operators: dict[str, OperatorRecord] = {}
        self.fail_commit = False
        self.depth = 0

    @contextmanager
    def atomic(self) -> Iterator[None]:
        certs, events = dict(self.certs), list(self.event_log)
        self.depth += 1
        try:
            yield
            if self.fail_commit and self.depth == 1:
                raise StoreError("disk full while committing")
        except BaseException:
            self.certs, self.event_log = certs, events
            raise
        finally:
            self.depth -= 1

    def append_event(self, draft: EventDraft) -> AuditEvent:
        prev = self.event_log[-1] if self.event_log else None
        event = chain(draft, prev=prev, time=datetime(2026, 11, 26, tzinfo=UTC))
        self.event_log.append(event)
        return event

    def certificate(self, serial_number: str) -> CertificateRecord | None:
        return self.certs.get(serial_number.upper())

    def save_certificate(self, record: CertificateRecord) -> None:
        assert self.depth > 0, "the issuance log must be written inside a transaction"
        self.certs[record.serial_number.upper()] = record

    def count_certificates(self, *, batch: str = "", status: str = "") -> int:
        return sum(
            1
            for c in self.certs.values()
            if (not batch or c.batch == batch) and (not status or c.status == status)
        )

    def iter_certificates(self) -> Iterator[CertificateRecord]:
        return iter(list(self.certs.values()))

    def certificates_for(self, registration_id: str) -> list[CertificateRecord]:
        return [c for c in self.certs.values() if c.registration_id == registration_id]

    def device(self, registration_id: str) -> DeviceRecord | None:
        return None  # the CA tests record no devices

    def open_jobs(self) -> list[JobRecord]:
        return []

    def batch(self, name: str) -> BatchRecord | None:
        return self.batches.get(name)

    def save_batch(self, record: BatchRecord) -> BatchRecord:
        self.batches[record.name] = record
        return record

    def operator(self, name: str) -> OperatorRecord | None:
        return self.operators.get(name)

    def save_operator(self, record: OperatorRecord) -> OperatorRecord:
        self.operators[record.name] = record
        return record
