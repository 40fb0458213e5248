"""Cross-station uniqueness with two stations on one real ledger: deferred alarms, online stops,
the same duplicate replicated by both at the same instant, voids, and fleet-wide quotas."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from station.domain.errors import PermissionDeniedError
from station.domain.fleet import (
    ClaimKind,
    FleetDuplicateError,
    FleetIdentity,
    FleetQuotaError,
    FleetUnavailableError,
)
from station.domain.manifest import Attestation
from station.services.identities import record_identity


def test_deferred_a_duplicate_serial_raises_an_alarm_naming_both_sides(
    fleet_of, make_manifest
) -> None:
    a, b = fleet_of("line-a"), fleet_of("line-b")
    a.record(make_manifest, "SN0042", registration_id="dev-a42", operator="alice")
    b.record(make_manifest, "SN0042", registration_id="dev-b42", operator="bob")

    assert a.station.fleet_replicator().sync().error == ""
    assert b.station.fleet_replicator().sync().error == ""

    (alarm,) = a.station.fleet().alarms()
    assert alarm.kind is ClaimKind.SERIAL and alarm.value == "SN0042" and alarm.scope == "thermo"
    assert (alarm.first.station, alarm.first.registration_id, alarm.first.operator) == (
        "line-a",
        "dev-a42",
        "alice",
    )
    assert (alarm.second.station, alarm.second.registration_id, alarm.second.operator) == (
        "line-b",
        "dev-b42",
        "bob",
    )
    text = alarm.describe()
    assert "line-a" in text and "line-b" in text and "alice" in text and "bob" in text
    # both stations' devices are kept: the alarm is for a person to resolve
    assert len(a.station.fleet().find("SN0042")) == 2


def test_deferred_a_cloned_tpm_across_stations_is_named_by_its_ek(fleet_of, make_manifest) -> None:
    a, b = fleet_of("line-a"), fleet_of("line-b")
    original = a.record(make_manifest, "TPM1", attestation=Attestation.TPM, registration_id="tpm-a")
    cloned = make_manifest("TPM2", attestation=Attestation.TPM, registration_id="tpm-b")
    cloned = replace(cloned, tpm=replace(cloned.tpm, ek_sha256=original.ek_sha256))
    record_identity(b.station.store(), cloned, clock=b.clock, station="line-b", operator="bob")

    for station in (a, b):
        assert station.station.fleet_replicator().sync().error == ""

    (alarm,) = a.station.fleet().alarms()
    assert alarm.kind is ClaimKind.EK and alarm.value == original.ek_sha256
    assert (alarm.first.registration_id, alarm.second.registration_id) == ("tpm-a", "tpm-b")
    assert "duplicate EK hash" in alarm.describe()


def test_the_same_duplicate_replicated_at_the_same_instant_gives_one_alarm(
    fleet_of, make_manifest, sql
) -> None:
    a, b = fleet_of("line-a"), fleet_of("line-b")
    for n in range(30):
        a.record(make_manifest, f"SN{n:04d}", registration_id=f"dev-a{n}")
        b.record(make_manifest, f"SN{n:04d}", registration_id=f"dev-b{n}")
    stations = [a.station.for_thread, b.station.for_thread]
    start = threading.Barrier(2)
    reports = []

    def replicate(factory) -> None:
        station = factory()
        try:
            start.wait()
            reports.append(station.fleet_replicator().sync())
        finally:
            station.close()

    threads = [threading.Thread(target=replicate, args=(f,)) for f in stations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for station in (a, b):  # a deadlock victim retries on its next pass
        assert station.station.fleet_replicator().sync().error == ""

    alarms = a.station.fleet().alarms(limit=1000)
    assert sorted(alarm.value for alarm in alarms) == [f"SN{n:04d}" for n in range(30)]
    for alarm in alarms:
        assert {alarm.first.station, alarm.second.station} == {"line-a", "line-b"}
    claims = sql("SELECT count(*) FROM fleet_claims WHERE kind = 'serial'")
    assert claims == [(30,)]  # one owner per serial


def test_a_voided_board_releases_its_keys_for_rework_elsewhere(fleet_of, make_manifest) -> None:
    a, b = fleet_of("line-a"), fleet_of("line-b")
    a.record(make_manifest, "SN0001", registration_id="dev-a1")
    a.void("dev-a1")
    assert a.station.fleet_replicator().sync().error == ""
    b.record(make_manifest, "SN0001", registration_id="dev-b1")

    assert b.station.fleet_replicator().sync().error == ""

    assert a.station.fleet().alarms() == []


def _identity(station: str, serial: str, rid: str, batch: str = "WO-1") -> FleetIdentity:
    return FleetIdentity(
        station=station,
        product="thermo",
        batch=batch,
        registration_id=rid,
        serial=serial,
        operator=f"op-{station}",
    )


def test_online_a_duplicate_is_stopped_with_the_other_station_named(
    fleet_of, make_manifest
) -> None:
    a = fleet_of("line-a", 'uniqueness = "online"\n')
    b = fleet_of("line-b", 'online_products = ["thermo"]\n')
    guard_a, guard_b = a.station.fleet_guard(), b.station.fleet_guard()

    assert guard_a.check(_identity("line-a", "SN0007", "dev-a7")) == "unique across the fleet"
    # the same board again at the same station (a resumed job) is still its own
    assert guard_a.check(_identity("line-a", "SN0007", "dev-a7")) == "unique across the fleet"
    with pytest.raises(FleetDuplicateError) as refused:
        guard_b.check(_identity("line-b", "SN0007", "dev-b7"))

    error = refused.value
    assert error.code == "fleet.duplicate"
    assert (
        "board SN0007 is a duplicate" in error.message
        and "its serial already belongs" in error.message
    )
    assert "line-a" in error.message
    assert "op-line-a" in error.message and "QA" in error.remedy
    # all or nothing: the refused board holds no key (its registration ID is still free)
    assert guard_b.check(_identity("line-b", "SN0008", "dev-b7")) == "unique across the fleet"


def test_online_then_replicated_is_not_an_alarm(fleet_of, make_manifest) -> None:
    a = fleet_of("line-a", 'uniqueness = "online"\n')
    a.station.fleet_guard().check(_identity("line-a", "SN0001", "dev-sn0001"))
    a.record(make_manifest, "SN0001")

    assert a.station.fleet_replicator().sync().error == ""

    assert a.station.fleet().alarms() == []


def test_deferred_products_are_not_asked_online(fleet_of) -> None:
    a = fleet_of("line-a", 'uniqueness = "online"\ndeferred_products = ["thermo"]\n')
    note = a.station.fleet_guard().check(_identity("line-a", "SN0001", "dev-1"))
    assert "deferred" in note


def test_online_with_the_ledger_down_defers_or_stops_as_configured(fleet_of) -> None:
    down = "host=127.0.0.1 port=1 user=ledger dbname=nowhere"
    lenient = fleet_of("line-a", 'uniqueness = "online"\n', conninfo=down)
    strict = fleet_of(
        "line-b", 'uniqueness = "online"\nstop_when_unreachable = true\n', conninfo=down
    )

    note = lenient.station.fleet_guard().check(_identity("line-a", "SN1", "dev-1"))
    with pytest.raises(FleetUnavailableError) as stopped:
        strict.station.fleet_guard().check(_identity("line-b", "SN1", "dev-1"))

    assert "checked on replication" in note
    assert "nothing was recorded" in stopped.value.remedy


def test_a_fleet_quota_spans_stations(fleet_of, make_manifest) -> None:
    a = fleet_of("line-a", 'uniqueness = "online"\n')
    b = fleet_of("line-b", 'uniqueness = "online"\n')
    with pytest.raises(PermissionDeniedError):
        a.station.fleet().set_quota("WO-1", 2, operator="op-line-a")  # not an admin
    a.station.fleet().set_quota("WO-1", 2, operator="boss")
    (event,) = a.station.store().audit.events_for("WO-1")
    assert (event.kind, event.operator, event.payload) == (
        "fleet.quota_set",
        "boss",
        {"batch": "WO-1", "limit": 2},
    )

    a.station.fleet_guard().check(_identity("line-a", "SN1", "dev-1"))
    b.station.fleet_guard().check(_identity("line-b", "SN2", "dev-2"))
    with pytest.raises(FleetQuotaError, match="quota of 2"):
        b.station.fleet_guard().check(_identity("line-b", "SN3", "dev-3"))
    # another batch is not counted
    b.station.fleet_guard().check(_identity("line-b", "SN3", "dev-3", batch="WO-2"))


def test_deferred_over_quota_raises_an_alarm(fleet_of, make_manifest) -> None:
    a, b = fleet_of("line-a"), fleet_of("line-b")
    a.station.fleet().set_quota("WO-1", 1, operator="boss")
    a.record(make_manifest, "SN1")
    b.record(make_manifest, "SN2")
    for station in (a, b):
        assert station.station.fleet_replicator().sync().error == ""

    (alarm,) = a.station.fleet().alarms()
    assert alarm.kind is ClaimKind.QUOTA and alarm.scope == "WO-1"
    assert alarm.second.station == "line-b" and "quota of 1" in alarm.describe()
