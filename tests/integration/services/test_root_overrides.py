"""The composition root takes fakes for its ports: a clock, a unit of work, an enrollment service.

Each override is used by a service the root hands out, on every sibling station, and left open
when the station closes (it is the caller's).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from station.bootstrap import Overrides, Station, build_station
from station.config import StationConfig
from station.domain.errors import ConfigError, EnrollmentServiceError, NotFoundError
from station.domain.products import ProductAttestation
from station.domain.records import DeviceQuery, OperatorRecord, Role
from tests.support.clocks import FixedClock
from tests.support.fake_store import FakeUnitOfWork
from tests.support.label_records import device_record, tpm_manifest
from tests.support.recorded_dps import RecordedShapeDps


@pytest.fixture
def fake_store() -> FakeUnitOfWork:
    store = FakeUnitOfWork()
    store.operators.save(OperatorRecord("boss", Role.ADMIN, True, "2026-01-01T00:00:00Z"))
    return store


def _on_fakes(config: StationConfig, clock: FixedClock, **overrides: Any) -> Station:
    return build_station(config, clock=clock, overrides=Overrides(**overrides))


def test_services_work_on_the_fake_store_and_the_fake_clock(
    config: StationConfig, clock: FixedClock, fake_store: FakeUnitOfWork
) -> None:
    station = _on_fakes(config, clock, store=fake_store)
    start = clock.current
    station.operators().add("quinn", Role.QA, pin="135791", operator="boss")
    station.for_thread().batches().open(name="WO-1", product="lab-tpm", size=2, operator="quinn")
    station.close()

    # the rows and their audit events are in the fake, not in a database file
    assert not config.database_path.exists()
    assert fake_store.batches.get("WO-1") is not None
    assert [(e.kind, e.operator) for e in fake_store.audit.events()] == [
        ("operator.added", "boss"),
        ("batch.opened", "quinn"),
    ]
    # the services read the clock handed in (it starts in January, this run does not)
    quinn, batch = fake_store.operators.get("quinn"), fake_store.batches.get("WO-1")
    assert quinn is not None and batch is not None
    created = [datetime.fromisoformat(r.created_at) for r in (quinn, batch)]
    assert all(start <= moment < clock.current for moment in created)
    # closing the station left the caller's store usable
    assert fake_store.operators.get("quinn") is not None


def test_the_interfaces_service_methods_on_the_fake_store(
    config: StationConfig, clock: FixedClock, fake_store: FakeUnitOfWork
) -> None:
    manifest = tpm_manifest()
    fake_store.devices.save(device_record(manifest, event_seq=1))
    station = _on_fakes(config, clock, store=fake_store)
    station.operators().add("tina", Role.TECHNICIAN, operator="boss")
    station.operators().add("quinn", Role.QA, pin="135791", operator="boss")
    station.batches().open(name="WO-2", product="lab-tpm", size=1, operator="quinn")

    devices = station.devices()
    assert devices.get(manifest.registration_id) == fake_store.devices.get(manifest.registration_id)
    assert devices.get("no-such-device") is None
    query = DeviceQuery(batch=manifest.batch, limit=10)
    assert [d.registration_id for d in devices.page(query)] == [manifest.registration_id]
    assert devices.count(query) == 1

    operators = station.operators()
    assert operators.has_pin("quinn") and not operators.has_pin("tina")
    assert not operators.has_pin("nobody")

    batches = station.batches()
    assert batches.get("WO-2") is not None and batches.get("WO-404") is None
    assert "lab-tpm" in batches.product_names()
    assert batches.recipe("lab-tpm").attestation is ProductAttestation.TPM
    with pytest.raises(NotFoundError):
        batches.recipe("no-such-product")


def test_the_push_outbox_is_refused_on_a_store_override(
    config: StationConfig, clock: FixedClock, fake_store: FakeUnitOfWork
) -> None:
    station = _on_fakes(config, clock, store=fake_store)
    with pytest.raises(ConfigError, match="outbox lives in the station database"):
        station.push_outbox()
    assert not config.database_path.exists()


class _RefusingDps(RecordedShapeDps):
    def get(
        self, registration_id: str, *, credential_policy: bool = False
    ) -> dict[str, Any] | None:
        raise EnrollmentServiceError("DPS refused the credentials (401)")


def test_the_dps_check_asks_the_enrollment_service_handed_in(
    config: StationConfig, clock: FixedClock
) -> None:
    double = RecordedShapeDps()
    station = _on_fakes(config, clock, enrollments=double)
    station.batches().check_dps()
    station.for_thread().batches().check_dps()  # siblings share the override
    assert double.calls == ["get", "get"]
    station.close()
    assert station.enrollment_service() is double  # not closed, not replaced

    refusing = _on_fakes(config, clock, enrollments=_RefusingDps())
    with pytest.raises(EnrollmentServiceError, match="401"):
        refusing.batches().check_dps()
