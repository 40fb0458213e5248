"""One set of assertions, run against the in-memory fake and the real SQLite unit of work.

What a service may rely on: repositories per aggregate, ``with uow:`` as one transaction that
rolls everything back when the block raises (nested blocks too), lookups that ignore case where
the store promises it, and seals and the clone index as records of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.domain.audit import EventDraft
from station.domain.records import (
    BatchCounts,
    BatchRecord,
    CertificateRecord,
    CertificateStatus,
    DeviceQuery,
    DeviceRecord,
    JobRecord,
    LabelRecord,
    OperatorRecord,
    Role,
    SealRecord,
    StoredManifest,
)
from station.domain.states import DeviceStatus, JobState
from station.ports import UnitOfWork
from tests.support.fake_store import FakeUnitOfWork


class Boom(Exception):
    pass


@pytest.fixture(params=["fake", "sqlite"])
def uow(request: pytest.FixtureRequest, tmp_path: Path, clock) -> Iterator[UnitOfWork]:
    if request.param == "fake":
        yield FakeUnitOfWork()
        return
    from station.adapters.store.unit_of_work import SqliteUnitOfWork

    real = SqliteUnitOfWork.open(tmp_path / "station.db", clock=clock)
    try:
        yield real
    finally:
        real.close()


def _device(index: int, *, batch: str = "WO-1", status: DeviceStatus = DeviceStatus.PROVISIONED):
    return DeviceRecord(
        registration_id=f"dev-{index}",
        serial=f"SN-{index}",
        batch=batch,
        product="p",
        attestation="tpm",
        status=status,
        ek_sha256=f"{index:064x}",
        cert_thumbprint="",
        manifest_json="{}",
        manifest_hash=f"{index:064x}",
        event_seq=index,
        created_at="t0",
        updated_at="t0",
    )


def test_wrong_pins_are_counted_per_operator_and_cleared_by_zero(uow: UnitOfWork) -> None:
    assert uow.operators.pin_failures("tina") == 0
    with uow:
        uow.operators.save_pin_failures("tina", 2)
        uow.operators.save_pin_failures("quinn", 1)
    uow.operators.save_pin_failures("tina", 3)
    assert uow.operators.pin_failures("tina") == 3
    assert uow.operators.iter_pin_failures() == [("quinn", 1), ("tina", 3)]
    uow.operators.save_pin_failures("tina", 0)
    assert uow.operators.pin_failures("tina") == 0
    assert uow.operators.iter_pin_failures() == [("quinn", 1)]
    with pytest.raises(Boom), uow:
        uow.operators.save_pin_failures("quinn", 4)
        raise Boom
    assert uow.operators.pin_failures("quinn") == 1


def test_a_raising_block_writes_nothing_in_any_repository(uow: UnitOfWork) -> None:
    with pytest.raises(Boom), uow:
        uow.devices.save(_device(1))
        uow.batches.save(BatchRecord("WO-1", "p", 10, "open", "t0"))
        uow.batches.save_seal(SealRecord("WO-1", 1, "d" * 64, "t1"))
        uow.devices.claim_key("ab" * 32, "dev-1")
        uow.audit.append(EventDraft(kind="batch.opened", subject="WO-1"))
        uow.labels.save(LabelRecord("dev-1", "t", "p", "print", "o", "t0"))
        uow.settings.save("k", "v")
        raise Boom
    assert uow.devices.get("dev-1") is None
    assert uow.batches.get("WO-1") is None
    assert uow.batches.seal("WO-1") is None
    assert uow.devices.key_owner("ab" * 32) is None
    assert uow.audit.head() is None
    assert uow.labels.for_device("dev-1") == []
    assert uow.settings.get("k") is None


def test_a_nested_block_rolls_back_alone(uow: UnitOfWork) -> None:
    with uow:
        uow.settings.save("outer", "1")
        with pytest.raises(Boom), uow:
            uow.settings.save("inner", "1")
            raise Boom
    assert uow.settings.get("outer") == "1"
    assert uow.settings.get("inner") is None


def test_devices_are_found_counted_and_streamed_by_batch_in_order(uow: UnitOfWork) -> None:
    with uow:
        for index in range(1, 6):
            uow.devices.save(_device(index, batch="WO-1" if index % 2 else "WO-2"))
        uow.devices.save(_device(7, status=DeviceStatus.VOIDED))
    assert uow.devices.get("DEV-3") is not None  # registration IDs ignore case
    assert [d.registration_id for d in uow.devices.iter_batch("WO-1", "provisioned")] == [
        "dev-1",
        "dev-3",
        "dev-5",
    ]
    assert uow.devices.count(DeviceQuery(batch="WO-1")) == 4
    newest = uow.devices.find(DeviceQuery(batch="WO-1", limit=2))
    assert [d.registration_id for d in newest] == ["dev-7", "dev-5"]
    assert len(list(uow.devices.iter_all())) == 6
    assert list(uow.devices.iter_manifests("WO-1", "provisioned")) == [
        StoredManifest(f"dev-{index}", f"{index:064x}", "{}") for index in (1, 3, 5)
    ]


def test_a_live_serial_is_recorded_once(uow: UnitOfWork) -> None:
    from station.domain.errors import StoreError

    uow.devices.save(_device(1))
    clone = DeviceRecord(**{**_device(2).__dict__, "serial": "SN-1"})
    with pytest.raises(StoreError):
        uow.devices.save(clone)


def test_seals_and_the_clone_index_are_records_of_their_own(uow: UnitOfWork) -> None:
    with uow:
        uow.batches.save(BatchRecord("WO-1", "p", 10, "sealed", "t0"))
        uow.batches.save_seal(SealRecord("WO-1", 3, "d" * 64, "t1"))
        uow.devices.claim_key("cd" * 32, "dev-2")
        uow.devices.claim_key("ab" * 32, "dev-1")
    assert uow.batches.seal("WO-1") == SealRecord("WO-1", 3, "d" * 64, "t1")
    assert list(uow.batches.iter_seals()) == [SealRecord("WO-1", 3, "d" * 64, "t1")]
    assert uow.devices.key_owner("ab" * 32) == "dev-1"
    assert list(uow.devices.iter_keys()) == [("ab" * 32, "dev-1"), ("cd" * 32, "dev-2")]
    assert uow.settings.with_prefix("") == []  # none of it hides in the settings


def test_the_audit_chain_links_events_and_finds_them(uow: UnitOfWork) -> None:
    first = uow.audit.append(EventDraft(kind="batch.opened", subject="WO-1"))
    second = uow.audit.append(EventDraft(kind="batch.sealed", subject="WO-1"))
    assert second.prev_hash == first.hash
    assert uow.audit.head() == (second.seq, second.hash)
    assert uow.audit.event(first.seq) == first
    assert uow.audit.events_at([second.seq, 99]) == {second.seq: second}
    assert [e.kind for e in uow.audit.events_for("WO-1")] == ["batch.opened", "batch.sealed"]
    assert list(uow.audit.events(after_seq=first.seq)) == [second]


def test_jobs_certificates_operators_and_labels_round_trip(uow: UnitOfWork) -> None:
    job = uow.jobs.save(JobRecord("slot-1", "WO-1", JobState.RUNNING, "keygen", "t0", "t0"))
    assert job.id is not None
    assert uow.jobs.get(job.id) == job
    assert uow.jobs.open() == [job]
    uow.jobs.save(JobRecord(**{**job.__dict__, "state": JobState.PASSED}))
    assert uow.jobs.open() == []
    cert = CertificateRecord("0a1b", "dev-1", "f" * 64, "pem", "a", "b", "p", "issued", "t")
    uow.certificates.save(cert)
    stored = uow.certificates.get("0A1B")
    assert stored is not None and stored.serial_number == "0A1B"
    assert uow.certificates.count(status="issued") == 1
    assert [c.serial_number for c in uow.certificates.for_device("DEV-1")] == ["0A1B"]
    saved = uow.operators.save(OperatorRecord("tina", Role.TECHNICIAN, True, "t0"))
    assert uow.operators.get("tina") == saved
    assert [o.name for o in uow.operators.all()] == ["tina"]
    label = uow.labels.save(LabelRecord("dev-1", "t", "p", "print", "tina", "t0"))
    assert label.id is not None
    assert uow.labels.for_device("DEV-1") == [label]


def test_a_row_edited_after_recording_is_never_vouched_for(uow: UnitOfWork, make_manifest) -> None:
    import dataclasses
    from datetime import UTC, datetime

    from station.services.identities import record_identity

    class Clock:
        def now(self) -> datetime:
            return datetime(2026, 11, 26, tzinfo=UTC)

    for serial in ("SN1", "SN2"):
        record_identity(uow, make_manifest(serial), clock=Clock(), station="s", operator="o")
    stored = uow.devices.get("dev-sn2")
    assert stored is not None
    uow.devices.save(dataclasses.replace(stored, serial="SN9"))
    rows = {row.registration_id: row for row in uow.devices.iter_cross_checked()}
    assert list(rows) == ["dev-sn1", "dev-sn2"]
    assert not rows["dev-sn2"].consistent
    assert uow.devices.by_id(rows["dev-sn2"].id) == uow.devices.get("dev-sn2")
    assert uow.devices.by_id(10_000) is None


def test_batch_counts_follow_devices_and_certificates_and_roll_back_with_them(
    uow: UnitOfWork,
) -> None:
    def certificate(serial: str, batch: str) -> CertificateRecord:
        return CertificateRecord(
            serial, f"dev-{serial}", serial * 32, "pem", "a", "b", "p", "issued", "t", batch=batch
        )

    with uow:
        for index in range(1, 4):
            uow.devices.save(_device(index))
        uow.devices.save(_device(4, status=DeviceStatus.PROVISIONING))
        uow.devices.save(_device(5, batch="WO-2"))
        uow.certificates.save(certificate("01", "WO-1"))
        uow.certificates.save(certificate("02", "WO-1"))
    assert uow.batches.counts("WO-1") == BatchCounts("WO-1", provisioned=3, certificates=2)
    assert uow.batches.counts("WO-2") == BatchCounts("WO-2", provisioned=1, certificates=0)
    assert uow.batches.counts("WO-9") == BatchCounts("WO-9")
    # a device voided or finished, a certificate voided: counts move with the status
    uow.devices.save(_device(2, status=DeviceStatus.VOIDED))
    uow.devices.save(_device(4))
    uow.certificates.save(
        dataclasses.replace(certificate("02", "WO-1"), status=CertificateStatus.VOIDED)
    )
    assert uow.batches.counts("WO-1") == BatchCounts("WO-1", provisioned=3, certificates=2)
    with pytest.raises(Boom), uow:
        uow.devices.save(_device(6))
        uow.certificates.save(certificate("03", "WO-1"))
        raise Boom
    assert uow.batches.counts("WO-1") == BatchCounts("WO-1", provisioned=3, certificates=2)
    kept = {c.batch: c for c in uow.batches.iter_counts() if c.provisioned or c.certificates}
    assert kept == {c.batch: c for c in uow.batches.recount()}
