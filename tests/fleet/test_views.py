"""Fleet views on a real ledger: search, one board across stations, stations, issuance, export,
and the ``station fleet`` commands; a station without ``[fleet]`` is unchanged."""

from __future__ import annotations

import json

import psycopg
import pytest

from station.bootstrap import build_station
from station.cli.main import main
from station.domain.canonical import canonical_form
from station.domain.fleet import FleetError, FleetNotConfiguredError, FleetQuery
from station.domain.records import CertificateRecord


def _two_lines(fleet_of, make_manifest):
    a, b = fleet_of("line-a"), fleet_of("line-b")
    for n in range(3):
        a.record(make_manifest, f"A{n}", batch="WO-7")
    for n in range(2):
        b.record(make_manifest, f"B{n}", batch="WO-7")
    b.record(make_manifest, "B9", batch="WO-8")
    b.void("dev-b1")
    for station in (a, b):
        assert station.station.fleet_replicator().sync().error == ""
    return a, b


def test_fleet_search_spans_stations(fleet_of, make_manifest) -> None:
    a, _ = _two_lines(fleet_of, make_manifest)
    views = a.station.fleet()

    batch = views.devices(FleetQuery(batch="WO-7"))
    voided = views.devices(FleetQuery(status="voided"))
    one = views.devices(FleetQuery(serial="B9"))

    assert [(d.station, d.serial) for d in batch] == [
        ("line-a", "A0"),
        ("line-a", "A1"),
        ("line-a", "A2"),
        ("line-b", "B0"),
        ("line-b", "B1"),
    ]
    assert [d.registration_id for d in voided] == ["dev-b1"]
    assert [(d.station, d.batch) for d in one] == [("line-b", "WO-8")]


def test_show_gathers_a_board_from_every_station(fleet_of, make_manifest) -> None:
    a, b = fleet_of("line-a"), fleet_of("line-b")
    a.record(make_manifest, "SN1", registration_id="dev-a")
    b.record(make_manifest, "SN1", registration_id="dev-b")
    for station in (a, b):
        station.station.fleet_replicator().sync()

    view = a.station.fleet().show("SN1")

    assert [(d.station, d.registration_id) for d in view.devices] == [
        ("line-a", "dev-a"),
        ("line-b", "dev-b"),
    ]
    assert [(s, e.kind) for s, e in view.events] == [
        ("line-a", "device.recorded"),
        ("line-b", "device.recorded"),
    ]
    assert len(view.alarms) == 1


def test_stations_show_sync_lag_and_yield(fleet_of, make_manifest) -> None:
    a, b = _two_lines(fleet_of, make_manifest)
    b.record(make_manifest, "B10")  # recorded after b's last sync
    b.station.fleet_replicator().sync(max_batches=1)  # reports its head, sends it too

    rows = {s.station: s for s in a.station.fleet().stations()}

    assert rows["line-a"].devices == 3 and rows["line-a"].yield_pct == 100.0
    assert rows["line-b"].devices == 4 and rows["line-b"].voided == 1
    assert rows["line-b"].yield_pct == pytest.approx(75.0)
    assert rows["line-a"].lag == 0 and rows["line-a"].last_sync.endswith("Z")


def test_issuance_per_station_and_batch(fleet_of, make_manifest) -> None:
    a = fleet_of("line-a")
    device = a.record(make_manifest, "SN1", batch="WO-7")
    store = a.station.store()
    from station.domain.audit import EventDraft

    with store:
        store.certificates.save(
            CertificateRecord(
                serial_number="0A1B",
                registration_id=device.registration_id,
                thumbprint_sha256="ab" * 32,
                certificate_pem="-----BEGIN CERTIFICATE-----\n",
                not_before="2026-01-01T00:00:00Z",
                not_after="2027-01-01T00:00:00Z",
                profile="device-identity",
                status="installed",
                issued_at="2026-01-01T00:00:00Z",
                batch="WO-7",
            )
        )
        store.audit.append(
            EventDraft(
                kind="ca.certificate_issued",
                subject=device.registration_id,
                payload={"serial": "0A1B", "batch": "WO-7"},
                station="line-a",
            )
        )
    assert a.station.fleet_replicator().sync().error == ""

    (row,) = a.station.fleet().issuance("WO-7")

    assert (row.station, row.batch, row.issued, row.installed) == ("line-a", "WO-7", 1, 1)
    (summary,) = a.station.fleet().stations()
    assert summary.certificates == 1


def test_one_export_per_work_order_across_stations(fleet_of, make_manifest, tmp_path) -> None:
    a, _ = _two_lines(fleet_of, make_manifest)

    path, count = a.station.fleet().export_batch("WO-7", a.station.export_files(tmp_path / "out"))
    again = (tmp_path / "out" / "WO-7.fleet.json").read_bytes()

    document = json.loads(again)
    text = again.decode().rstrip("\n")
    assert canonical_form(text) == text  # canonical JSON, byte for byte reproducible
    assert count == 5 and document["count"] == 5 and path.endswith("WO-7.fleet.json")
    assert document["stations"] == ["line-a", "line-b"]
    assert [d["registration_id"] for d in document["devices"]] == [
        "dev-a0",
        "dev-a1",
        "dev-a2",
        "dev-b0",
        "dev-b1",
    ]
    assert document["devices"][0]["manifest"]["board"]["serial"] == "A0"


def test_cli_fleet_commands(fleet_of, make_manifest, capsys) -> None:
    a, _ = _two_lines(fleet_of, make_manifest)
    config = ["--config", str(a.config_file)]

    assert main([*config, "fleet", "devices", "--batch", "WO-7", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert main([*config, "fleet", "stations"]) == 0
    stations_text = capsys.readouterr().out
    assert main([*config, "fleet", "sync"]) == 0
    synced = capsys.readouterr().out
    assert main([*config, "fleet", "verify"]) == 0
    verified = capsys.readouterr().out

    assert main([*config, "fleet", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert main([*config, "fleet", "show", "A1"]) == 0
    shown = capsys.readouterr().out
    assert main([*config, "--operator", "boss", "fleet", "quota", "WO-7", "9"]) == 0
    quota = capsys.readouterr().out
    assert main([*config, "fleet", "alarms"]) == 0
    alarms = capsys.readouterr().out
    assert main([*config, "fleet", "show", "nothing-here"]) == 1
    missing = capsys.readouterr().err

    assert status["pending"] == 0 and status["sent_seq"] == status["head_seq"]
    assert "line-a: dev-a1 serial A1" in shown and "device.recorded" in shown
    assert "fleet quota 9" in quota
    assert alarms.strip() == "no fleet alarms"
    assert "no station replicated" in missing and "what to do" in missing
    assert len(listed["devices"]) == 5 and "manifest_json" not in listed["devices"][0]
    assert "line-a" in stations_text and "line-b" in stations_text and "66.7%" in stations_text
    assert "sent 0 events" in synced
    assert "fleet ledger OK" in verified


def test_a_station_without_fleet_config_is_unchanged(config, clock, capsys, tmp_path) -> None:
    station = build_station(config, clock=clock)
    try:
        assert station.fleet_guard() is None
        with pytest.raises(FleetNotConfiguredError):
            station.fleet_ledger()
    finally:
        station.close()
    config_file = tmp_path / "station.toml"

    assert main(["--config", str(config_file), "fleet", "stations"]) == 1
    err = capsys.readouterr().err
    assert "no fleet ledger configured" in err and "[fleet]" in err


def test_the_documented_roles_work_and_keep_events_append_only(
    fleet_of, make_manifest, sql, ledger_dsn, capsys
) -> None:
    admin = fleet_of("admin")
    assert main(["--config", str(admin.config_file), "fleet", "roles"]) == 0
    sql(capsys.readouterr().out)
    sql(
        "DO $$ BEGIN CREATE ROLE station_line_a LOGIN IN ROLE fleet_station; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    dsn = ledger_dsn.replace("user=ledger", "user=station_line_a")
    a = fleet_of("line-a", conninfo=dsn)
    a.record(make_manifest, "SN1")

    assert a.station.fleet_replicator().sync().error == ""
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE fleet_events SET payload = '{}'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM fleet_events")
    with pytest.raises(FleetError, match="may not"):
        a.station.fleet().set_quota("WO-1", 5, operator="boss")
