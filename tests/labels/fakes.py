"""A small in-memory identity store: just what the label service uses (fast unit tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from station.domain.audit import AuditEvent, EventDraft, chain
from station.domain.records import (
    BatchRecord,
    DeviceQuery,
    DeviceRecord,
    JobRecord,
    LabelRecord,
    OperatorRecord,
)


class FakeStore:
    """Dictionaries and lists; ``atomic`` rolls back labels and events on an exception."""

    def __init__(self) -> None:
        self.devices_by_id: dict[str, DeviceRecord] = {}
        self.label_log: list[LabelRecord] = []
        self.event_log: list[AuditEvent] = []
        self.operator_by_name: dict[str, OperatorRecord] = {}
        self.batch_by_name: dict[str, BatchRecord] = {}
        self.jobs: list[JobRecord] = []

    @contextmanager
    def atomic(self) -> Iterator[None]:
        labels, events = list(self.label_log), list(self.event_log)
        try:
            yield
        except BaseException:
            self.label_log, self.event_log = labels, events
            raise

    def append_event(self, draft: EventDraft) -> AuditEvent:
        prev = self.event_log[-1] if self.event_log else None
        event = chain(draft, prev=prev, time=datetime(2026, 11, 26, tzinfo=UTC))
        self.event_log.append(event)
        return event

    def events(self, *, after_seq: int = 0) -> Iterator[AuditEvent]:
        return iter([e for e in self.event_log if e.seq > after_seq])

    def save_device(self, record: DeviceRecord) -> None:
        self.devices_by_id[record.registration_id] = record

    def device(self, registration_id: str) -> DeviceRecord | None:
        return self.devices_by_id.get(registration_id.lower())

    def devices(self, query: DeviceQuery) -> list[DeviceRecord]:
        found = [
            d
            for d in self.devices_by_id.values()
            if (not query.batch or d.batch == query.batch)
            and (not query.status or str(d.status) == query.status)
            and (not query.serial or d.serial == query.serial)
        ]
        return found[query.offset : query.offset + query.limit]

    def open_jobs(self) -> list[JobRecord]:
        return [j for j in self.jobs if not j.state.is_final]

    def batch(self, name: str) -> BatchRecord | None:
        return self.batch_by_name.get(name)

    def operator(self, name: str) -> OperatorRecord | None:
        return self.operator_by_name.get(name)

    def save_operator(self, record: OperatorRecord) -> OperatorRecord:
        self.operator_by_name[record.name] = record
        return record

    def save_label(self, record: LabelRecord) -> LabelRecord:
        self.label_log.append(record)
        return record

    def labels(self, registration_id: str) -> list[LabelRecord]:
        return [r for r in self.label_log if r.registration_id == registration_id.lower()]

    def save_job(self, record: JobRecord) -> JobRecord:
        self.jobs.append(record)
        return record

    def save_batch(self, record: BatchRecord) -> BatchRecord:
        self.batch_by_name[record.name] = record
        return record

    def close(self) -> None:
        pass
