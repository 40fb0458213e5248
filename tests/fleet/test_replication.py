"""Replication to a real PostgreSQL ledger: exactly once, in order, resumable, offline-tolerant."""

from __future__ import annotations

import sqlite3

from station.domain.fleet import FleetQuery
from tests.support.fleet import ledger_events, local_seqs


def test_events_devices_and_certificates_replicate_exactly_once(
    fleet_of, make_manifest, sql
) -> None:
    a = fleet_of("line-a")
    for n in range(3):
        a.record(make_manifest, f"SN{n:04d}")
    a.void("dev-sn0001")

    first = a.station.fleet_replicator().sync()
    again = a.station.fleet_replicator().sync()

    assert first.error == "" and first.sent == len(local_seqs(a.station))
    assert again.sent == 0 and again.acked == first.acked
    assert ledger_events(sql, "line-a") == local_seqs(a.station)
    devices = a.station.fleet().devices(FleetQuery(station="line-a"))
    assert [(d.registration_id, d.status) for d in devices] == [
        ("dev-sn0000", "provisioned"),
        ("dev-sn0001", "voided"),
        ("dev-sn0002", "provisioned"),
    ]
    assert devices[0].operator == "op-line-a" and devices[0].manifest_hash
    assert a.station.fleet().verify() == []
    assert a.station.fleet_replicator().status().pending == 0


def test_a_crash_after_the_ledger_committed_resends_nothing_twice(
    fleet_of, make_manifest, sql
) -> None:
    a = fleet_of("line-a")
    for n in range(4):
        a.record(make_manifest, f"SN{n:04d}")
    assert a.station.fleet_replicator().sync().error == ""
    # the station died after the ledger's commit and before it marked its outbox
    with sqlite3.connect(a.config.database_path) as db:
        db.execute("UPDATE fleet_outbox SET state = 'pending', sent_at = ''")
    a.record(make_manifest, "SN0100")

    report = a.station.fleet_replicator().sync()

    assert report.error == "" and report.sent == 1  # only the new event travelled
    assert ledger_events(sql, "line-a") == local_seqs(a.station)


def test_ledger_down_for_a_while_keeps_everything_queued(
    fleet_of, make_manifest, sql, pg_cluster
) -> None:
    down = "host=127.0.0.1 port=1 user=ledger dbname=nowhere"  # nothing listens there
    a = fleet_of("line-a", conninfo=down)
    a.record(make_manifest, "SN0001")

    report = a.station.fleet_replicator().sync()

    assert report.error and "unreachable" in report.error
    status = a.station.fleet_replicator().status()
    assert status.pending == len(local_seqs(a.station)) and status.attempts == 1
    assert "unreachable" in status.last_error
    # the line keeps recording while the ledger is away
    a.record(make_manifest, "SN0002")
    assert a.station.store().devices.get("dev-sn0002") is not None


def test_a_wrong_station_clock_orders_nothing_and_shows_as_skew(fleet_of, make_manifest) -> None:
    a = fleet_of("line-a")
    a.skew(hours=-5)  # the station's clock is five hours slow
    a.record(make_manifest, "SN0001")
    a.record(make_manifest, "SN0002")

    assert a.station.fleet_replicator().sync().error == ""

    (summary,) = a.station.fleet().stations()
    assert summary.acked_seq == summary.head_seq == len(local_seqs(a.station))
    assert summary.lag == 0
    assert summary.clock_skew_s < -4 * 3600  # measured against the ledger's clock
