"""Faults between a station and its ledger: kill -9 of the station, the server restarted
mid-batch, a network partition, a half-open connection, a ledger row edited by hand."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from station.domain.audit import EventDraft
from station.domain.fleet import FleetChainError, FleetIdentity, FleetUnavailableError
from tests.support.fleet import ledger_events, local_seqs

EVENTS = 400


def _fill(fleet_station, make_manifest, devices: int = 20) -> None:
    """Devices and plenty of plain audit events, so replication takes many transactions."""
    for n in range(devices):
        fleet_station.record(make_manifest, f"SN{n:04d}")
    store = fleet_station.station.store()
    with store:
        for n in range(EVENTS - 2 * devices):
            store.audit.append(
                EventDraft(kind="test.note", subject=f"note-{n}", payload={"n": n}, station="x")
            )


def _acked(sql, station: str) -> int:
    rows = sql("SELECT acked_seq FROM fleet_stations WHERE station = %s", station)
    return int(rows[0][0]) if rows else 0


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_kill_9_of_the_station_mid_replication_loses_and_duplicates_nothing(
    fleet_of, make_manifest, sql
) -> None:
    a = fleet_of("line-a", "batch_size = 3\n")
    _fill(a, make_manifest)
    total = len(local_seqs(a.station))
    kills = 0
    for threshold in (total // 3, (2 * total) // 3):
        command = ["fleet", "sync", "--follow"]  # the replication service as an admin runs it
        proc = subprocess.Popen(
            [sys.executable, "-m", "station", "--config", str(a.config_file), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(lambda t=threshold: _acked(sql, "line-a") >= t, f"event {threshold}")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        if _acked(sql, "line-a") < total:
            kills += 1
    assert kills >= 1  # at least one kill landed while events were still on their way

    report = a.station.fleet_replicator().sync()

    assert report.error == "" and report.pending == 0
    assert ledger_events(sql, "line-a") == local_seqs(a.station)  # each seq once, in order
    assert a.station.fleet().verify() == []


def test_a_server_restart_mid_batch_loses_and_duplicates_nothing(
    fleet_of, make_manifest, sql, pg_cluster
) -> None:
    a = fleet_of("line-a")
    _fill(a, make_manifest)
    reports = []
    replicator = a.station.for_thread  # the sync runs on its own thread with its own station

    def replicate() -> None:
        station = replicator()
        try:
            while True:
                report = station.fleet_replicator().sync(max_batches=1)
                reports.append(report)
                if report.error or report.pending == 0:
                    return
        finally:
            station.close()

    worker = threading.Thread(target=replicate)
    worker.start()
    _wait_for(lambda: _acked(sql, "line-a") >= 100, "the first batches")
    pg_cluster.restart()
    worker.join(timeout=60)

    final = a.station.fleet_replicator().sync()

    assert final.error == "" and final.pending == 0
    assert ledger_events(sql, "line-a") == local_seqs(a.station)
    assert a.station.fleet().verify() == []


def test_a_network_partition_mid_replication_heals(
    fleet_of, make_manifest, sql, pg_cluster, ledger_proxy, ledger_dsn
) -> None:
    dbname = ledger_dsn.rsplit("dbname=", 1)[1]
    fleet_of("admin")  # installs the schema over the socket
    a = fleet_of("line-a", conninfo=pg_cluster.dsn(dbname, port=ledger_proxy.port))
    _fill(a, make_manifest)
    assert a.station.fleet_replicator().sync(max_batches=2).error == ""

    ledger_proxy.cut()
    cut = a.station.fleet_replicator().sync()
    a.record(make_manifest, "SN9000")  # the line keeps working meanwhile
    ledger_proxy.restore()
    healed = a.station.fleet_replicator().sync()

    assert "unreachable" in cut.error
    assert healed.error == "" and healed.pending == 0
    assert ledger_events(sql, "line-a") == local_seqs(a.station)


def test_a_half_open_connection_is_given_up_after_the_timeout(
    fleet_of, make_manifest, pg_cluster, ledger_proxy, ledger_dsn
) -> None:
    dbname = ledger_dsn.rsplit("dbname=", 1)[1]
    fleet_of("admin")  # installs the schema over the socket
    a = fleet_of(
        "line-a",
        'online_products = ["thermo"]\ntimeout_s = 1.0\nconnect_timeout_s = 1\n',
        conninfo=pg_cluster.dsn(dbname, port=ledger_proxy.port),
    )
    a.record(make_manifest, "SN0001")
    assert a.station.fleet_replicator().sync().error == ""  # connected through the proxy

    ledger_proxy.hold()  # packets vanish: no reset, no answer
    try:
        with pytest.raises(FleetUnavailableError, match="did not answer"):
            a.station.fleet_ledger().claim(
                FleetIdentity("line-a", "thermo", "WO-1", "dev-x", "SNX", "op")
            )
    finally:
        ledger_proxy.restore()


def test_a_ledger_row_edited_by_hand_is_named(fleet_of, make_manifest, sql) -> None:
    a = fleet_of("line-a")
    a.record(make_manifest, "SN0001")
    a.record(make_manifest, "SN0002")
    assert a.station.fleet_replicator().sync().error == ""

    sql(
        "UPDATE fleet_events SET payload = replace(payload, 'SN0001', 'SN0666') "
        "WHERE station = 'line-a' AND subject = 'dev-sn0001'"
    )
    sql("UPDATE fleet_devices SET serial = 'SN0777' WHERE registration_id = 'dev-sn0002'")
    problems = a.station.fleet().verify()

    edited = a.station.store().devices.get("dev-sn0001").event_seq
    assert [(p.station, p.where) for p in problems] == [
        ("line-a", f"event {edited}"),
        ("line-a", "device dev-sn0002"),
    ]
    assert "edited" in problems[0].problem and "serial" in problems[1].problem


def test_a_station_whose_history_differs_from_the_ledger_is_stopped(
    fleet_of, make_manifest, sql
) -> None:
    a = fleet_of("line-a")
    a.record(make_manifest, "SN0001")
    assert a.station.fleet_replicator().sync().error == ""
    sql("UPDATE fleet_stations SET acked_hash = repeat('f', 64) WHERE station = 'line-a'")

    with pytest.raises(FleetChainError, match="restored from an older backup or edited"):
        a.station.fleet_replicator().sync()


def test_a_slow_ledger_times_out_and_the_events_wait(
    fleet_of, make_manifest, sql, ledger_dsn
) -> None:
    a = fleet_of("line-a", "timeout_s = 1.0\n")
    a.record(make_manifest, "SN0001")
    assert a.station.fleet_replicator().sync().error == ""
    a.record(make_manifest, "SN0002")

    with psycopg.connect(ledger_dsn) as blocker:  # another session holds the ledger busy
        blocker.execute("LOCK TABLE fleet_stations IN ACCESS EXCLUSIVE MODE")
        slow = a.station.fleet_replicator().sync()
        assert slow.error and slow.pending == 1
    done = a.station.fleet_replicator().sync()

    assert done.error == "" and done.pending == 0
    assert ledger_events(sql, "line-a") == local_seqs(a.station)


def test_a_connection_string_that_does_not_parse_is_reported_without_its_text() -> None:
    from station.adapters.fleet.ledger import PostgresLedger
    from station.domain.fleet import FleetNotConfiguredError

    # a typo ('password:' for 'password='): libpq's own message would quote the password
    ledger = PostgresLedger("host=127.0.0.1 port=1 user=line3 password:hunter2")
    with pytest.raises(FleetNotConfiguredError) as refused:
        ledger.acked("line3")
    assert "does not parse" in refused.value.message
    assert (
        "hunter2" not in f"{refused.value.message} {refused.value.remedy} {refused.value.details}"
    )
    ledger.close()
