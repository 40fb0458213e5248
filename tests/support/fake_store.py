"""One in-memory :class:`~station.ports.UnitOfWork` for fast tests (dictionaries and lists).

``with uow:`` snapshots every repository and puts the snapshot back when the block raises (or,
with ``fail_commit`` set, when the outermost block would commit), like the SQLite transaction.
``tests/contract`` runs the same assertions against this fake and the real SQLite adapter.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from station.domain.audit import AuditEvent, EventDraft, chain
from station.domain.errors import StoreError
from station.domain.records import (
    BatchCounts,
    BatchRecord,
    CertificateRecord,
    CrossChecked,
    DeviceQuery,
    DeviceRecord,
    JobRecord,
    LabelRecord,
    OperatorRecord,
    SchemaStatus,
    SealRecord,
    StoredManifest,
)
from station.domain.states import DeviceStatus
from station.ports import UnitOfWork

T = TypeVar("T")

FIXED_TIME = datetime(2026, 11, 26, tzinfo=UTC)


class _State:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.devices: dict[str, DeviceRecord] = {}
        self.device_keys: dict[str, str] = {}
        self.certificates: dict[str, CertificateRecord] = {}
        self.jobs: dict[int, JobRecord] = {}
        self.batches: dict[str, BatchRecord] = {}
        self.seals: dict[str, SealRecord] = {}
        self.operators: dict[str, OperatorRecord] = {}
        self.labels: list[LabelRecord] = []
        self.pushes: list[tuple[str, str, str]] = []
        self.settings: dict[str, str] = {}
        self.pin_failures: dict[str, int] = {}
        self.next_id = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


class _Part:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    @property
    def _s(self) -> _State:
        return self._uow.state


class FakeAuditLog(_Part):
    """The audit chain in a list (events are chained exactly as the real store chains them)."""

    def append(self, draft: EventDraft) -> AuditEvent:
        prev = self._s.events[-1] if self._s.events else None
        event = chain(draft, prev=prev, time=FIXED_TIME)
        self._s.events.append(event)
        return event

    def events(self, *, after_seq: int = 0) -> Iterator[AuditEvent]:
        return iter([e for e in self._s.events if e.seq > after_seq])

    def event(self, seq: int) -> AuditEvent | None:
        return next((e for e in self._s.events if e.seq == seq), None)

    def events_for(self, subject: str) -> list[AuditEvent]:
        return [e for e in self._s.events if e.subject == subject]

    def events_at(self, seqs: Sequence[int]) -> dict[int, AuditEvent]:
        wanted = set(seqs)
        return {e.seq: e for e in self._s.events if e.seq in wanted}

    def head(self) -> tuple[int, str] | None:
        return (self._s.events[-1].seq, self._s.events[-1].hash) if self._s.events else None


class FakeDevices(_Part):
    """Devices by registration ID, in recording order."""

    def save(self, record: DeviceRecord) -> None:
        old = self._s.devices.get(record.registration_id)
        for other in self._s.devices.values():
            clash = other.registration_id != record.registration_id and (
                other.status != DeviceStatus.VOIDED and record.status != DeviceStatus.VOIDED
            )
            if clash and (
                other.serial == record.serial
                or (record.ek_sha256 and other.ek_sha256 == record.ek_sha256)
            ):
                raise StoreError(
                    f"device {record.registration_id} conflicts with a recorded identity",
                    registration_id=record.registration_id,
                )
        if old is None:
            self._s.devices[record.registration_id] = replace(record, id=self._s.new_id())
        else:
            self._s.devices[record.registration_id] = replace(
                record, id=old.id, created_at=old.created_at
            )

    def get(self, registration_id: str) -> DeviceRecord | None:
        return self._s.devices.get(registration_id.lower())

    def _matching(self, query: DeviceQuery) -> list[DeviceRecord]:
        return [
            d
            for d in self._s.devices.values()
            if (not query.batch or d.batch == query.batch)
            and (not query.status or str(d.status) == query.status)
            and (not query.serial or d.serial == query.serial)
            and (not query.registration_id or d.registration_id == query.registration_id.lower())
            and (not query.ek_sha256 or d.ek_sha256 == query.ek_sha256.lower())
            and (not query.cert_thumbprint or d.cert_thumbprint == query.cert_thumbprint.lower())
        ]

    def find(self, query: DeviceQuery) -> list[DeviceRecord]:
        found = sorted(self._matching(query), key=lambda d: d.id or 0, reverse=True)
        return found[query.offset : query.offset + query.limit]

    def count(self, query: DeviceQuery) -> int:
        return len(self._matching(query))

    def iter_all(self) -> Iterator[DeviceRecord]:
        return iter(sorted(self._s.devices.values(), key=lambda d: d.id or 0))

    def iter_batch(self, batch: str, status: str) -> Iterator[DeviceRecord]:
        return (d for d in self.iter_all() if d.batch == batch and str(d.status) == status)

    def iter_cross_checked(self) -> Iterator[CrossChecked]:
        # the fake checks nothing itself: db verify checks every row fully
        return (
            CrossChecked(
                r.id or 0,
                r.registration_id,
                r.attestation,
                str(r.status),
                r.cert_thumbprint,
                r.manifest_json,
                r.manifest_hash,
                False,
            )
            for r in self.iter_all()
        )

    def by_id(self, row_id: int) -> DeviceRecord | None:
        return next((r for r in self._s.devices.values() if r.id == row_id), None)

    def iter_manifests(self, batch: str, status: str) -> Iterator[StoredManifest]:
        return iter(
            [
                StoredManifest(r.registration_id, r.manifest_hash, r.manifest_json)
                for r in self.iter_batch(batch, status)
            ]
        )

    def key_owner(self, spki_sha256: str) -> str | None:
        return self._s.device_keys.get(spki_sha256)

    def claim_key(self, spki_sha256: str, registration_id: str) -> None:
        self._s.device_keys[spki_sha256] = registration_id

    def iter_keys(self) -> Iterator[tuple[str, str]]:
        return iter(sorted(self._s.device_keys.items()))


class FakeCertificates(_Part):
    """The issuance log by serial number."""

    def save(self, record: CertificateRecord) -> None:
        self._uow.check_write("certificates")
        serial = record.serial_number.upper()
        old = self._s.certificates.get(serial)
        new_id = old.id if old is not None else self._s.new_id()
        self._s.certificates[serial] = replace(record, serial_number=serial, id=new_id)

    def get(self, serial_number: str) -> CertificateRecord | None:
        return self._s.certificates.get(serial_number.upper())

    def count(self, *, batch: str = "", status: str = "") -> int:
        return sum(
            1
            for c in self._s.certificates.values()
            if (not batch or c.batch == batch) and (not status or c.status == status)
        )

    def for_device(self, registration_id: str) -> list[CertificateRecord]:
        return [c for c in self.iter_all() if c.registration_id == registration_id.lower()]

    def iter_all(self) -> Iterator[CertificateRecord]:
        return iter(sorted(self._s.certificates.values(), key=lambda c: c.id or 0))


class FakeJobs(_Part):
    """Provisioning jobs by id."""

    def save(self, record: JobRecord) -> JobRecord:
        job_id = record.id if record.id is not None else self._s.new_id()
        saved = replace(record, id=job_id)
        self._s.jobs[job_id] = saved
        return saved

    def get(self, job_id: int) -> JobRecord | None:
        return self._s.jobs.get(job_id)

    def open(self) -> list[JobRecord]:
        return [j for j in self.iter_all() if not j.state.is_final]

    def iter_all(self) -> Iterator[JobRecord]:
        return iter(sorted(self._s.jobs.values(), key=lambda j: j.id or 0))


class FakeBatches(_Part):
    """Batches by name, and their seals."""

    def save(self, record: BatchRecord) -> BatchRecord:
        old = self._s.batches.get(record.name)
        saved = replace(
            record,
            id=old.id if old is not None else self._s.new_id(),
            created_at=old.created_at if old is not None else record.created_at,
        )
        self._s.batches[record.name] = saved
        return saved

    def get(self, name: str) -> BatchRecord | None:
        return self._s.batches.get(name)

    def all(self) -> list[BatchRecord]:
        return sorted(self._s.batches.values(), key=lambda b: b.id or 0, reverse=True)

    def seal(self, name: str) -> SealRecord | None:
        return self._s.seals.get(name)

    def save_seal(self, seal: SealRecord) -> None:
        self._s.seals[seal.batch] = seal

    def iter_seals(self) -> Iterator[SealRecord]:
        return iter([self._s.seals[name] for name in sorted(self._s.seals)])

    def counts(self, name: str) -> BatchCounts:
        # the fake counts its rows; the SQLite store keeps the counts (same answers: contract)
        provisioned = sum(
            1
            for d in self._s.devices.values()
            if d.batch == name and d.status == DeviceStatus.PROVISIONED
        )
        certificates = sum(1 for c in self._s.certificates.values() if c.batch == name)
        return BatchCounts(name, provisioned, certificates)

    def iter_counts(self) -> Iterator[BatchCounts]:
        return self.recount()

    def recount(self) -> Iterator[BatchCounts]:
        batches = {d.batch for d in self._s.devices.values()}
        batches |= {c.batch for c in self._s.certificates.values()}
        return iter([self.counts(name) for name in sorted(batches)])


class FakeOperators(_Part):
    """Operators by name."""

    def get(self, name: str) -> OperatorRecord | None:
        return self._s.operators.get(name)

    def all(self) -> list[OperatorRecord]:
        return [self._s.operators[name] for name in sorted(self._s.operators)]

    def save(self, record: OperatorRecord) -> OperatorRecord:
        old = self._s.operators.get(record.name)
        saved = replace(
            record,
            id=old.id if old is not None else self._s.new_id(),
            created_at=old.created_at if old is not None else record.created_at,
        )
        self._s.operators[record.name] = saved
        return saved

    def pin_failures(self, name: str) -> int:
        return self._s.pin_failures.get(name, 0)

    def save_pin_failures(self, name: str, failures: int) -> None:
        if failures > 0:
            self._s.pin_failures[name] = failures
        else:
            self._s.pin_failures.pop(name, None)

    def iter_pin_failures(self) -> list[tuple[str, int]]:
        return sorted(self._s.pin_failures.items())


class FakeLabels(_Part):
    """The print log in a list."""

    def save(self, record: LabelRecord) -> LabelRecord:
        saved = replace(record, id=self._s.new_id())
        self._s.labels.append(saved)
        return saved

    def for_device(self, registration_id: str) -> list[LabelRecord]:
        return [r for r in self._s.labels if r.registration_id == registration_id.lower()]

    def iter_all(self) -> Iterator[LabelRecord]:
        return iter(list(self._s.labels))


class FakePushes(_Part):
    """Outbox rows (tests append ``(batch, registration ID, state)`` to ``state.pushes``)."""

    def iter_all(self) -> Iterator[tuple[str, str, str]]:
        return iter(list(self._s.pushes))


class FakeSettings(_Part):
    """Settings by key."""

    def get(self, key: str) -> str | None:
        return self._s.settings.get(key)

    def save(self, key: str, value: str) -> None:
        self._s.settings[key] = value

    def with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in self._s.settings.items() if k.startswith(prefix))


class FakeMaintenance(_Part):
    """A fake database is always current, has no file to back up and no damaged rows."""

    def schema_status(self) -> SchemaStatus:
        return SchemaStatus(applied=("fake",), pending=(), unknown=())

    def migrate(self, *, backup_dir: Path) -> Path | None:
        return None

    def backup(self, target: Path, *, force: bool = False) -> None:
        raise StoreError("the in-memory fake store cannot be backed up", target=str(target))

    def damaged_rows(
        self, tables: Collection[str] | None = None, *, exclude: Collection[str] = ()
    ) -> list[tuple[str, str, str]]:
        return []


class FakeUnitOfWork:
    """The whole :class:`~station.ports.UnitOfWork` in memory."""

    def __init__(self, *, transactional: frozenset[str] = frozenset()) -> None:
        """``transactional`` names repositories whose writes must happen inside ``with uow:``."""
        self.state = _State()
        self.fail_commit = False
        self._transactional = transactional
        self._snapshots: list[_State] = []
        self.audit = FakeAuditLog(self)
        self.devices = FakeDevices(self)
        self.certificates = FakeCertificates(self)
        self.jobs = FakeJobs(self)
        self.batches = FakeBatches(self)
        self.operators = FakeOperators(self)
        self.labels = FakeLabels(self)
        self.pushes = FakePushes(self)
        self.settings = FakeSettings(self)
        self.maintenance = FakeMaintenance(self)

    @property
    def in_transaction(self) -> bool:
        """Whether a ``with uow:`` block is open (fakes of other ports may assert on it)."""
        return bool(self._snapshots)

    def check_write(self, repository: str) -> None:
        """Fail a test whose use case writes a transactional repository outside a block."""
        assert not (repository in self._transactional and not self._snapshots), (
            f"{repository} must be written inside a transaction"
        )

    def in_background(self, task: Callable[[UnitOfWork], T]) -> Callable[[], T]:
        # nothing to gain in memory: the task runs when its result is asked for
        return lambda: task(self)

    def __enter__(self) -> FakeUnitOfWork:
        self._snapshots.append(copy.copy(self.state))
        self._snapshots[-1].__dict__ = {k: copy.copy(v) for k, v in self.state.__dict__.items()}
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        snapshot = self._snapshots.pop()
        if exc_type is not None:
            self.state = snapshot
            return
        if self.fail_commit and not self._snapshots:
            self.state = snapshot
            raise StoreError("disk full while committing")

    @contextmanager
    def durable(self) -> Iterator[FakeUnitOfWork]:
        assert not self._snapshots, "a durable transaction cannot be nested"
        with self:
            yield self

    def close(self) -> None:
        pass
