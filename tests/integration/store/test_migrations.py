import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from station.adapters.store import migrations as schema
from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.domain.audit import EventDraft
from station.domain.errors import SchemaTooNewError
from station.domain.records import BatchCounts


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def test_new_database_gets_every_table_and_no_backup(db_path: Path, clock) -> None:
    store = SqliteUnitOfWork.open(db_path, clock=clock, backup_dir=db_path.parent / "backups")
    try:
        status = store.maintenance.schema_status()
        assert status.is_current
        assert status.applied == schema.known_migrations()
    finally:
        store.close()
    assert {
        "events",
        "devices",
        "certificates",
        "jobs",
        "batches",
        "pushes",
        "labels",
        "operators",
    } <= tables(db_path)
    assert not (db_path.parent / "backups").exists()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_older_database_is_backed_up_then_migrated(db_path: Path, clock) -> None:
    db_path.parent.mkdir(parents=True)
    old = Database(db_path)
    last = "0002_labels_and_outbox"  # the migration that adds the labels table
    schema.migrations.apply(old, stop_before=last)
    old.execute(
        "INSERT INTO events (seq, time, station, operator, kind, subject, payload, prev_hash, hash) VALUES (1,'t','s','o','k','x','{}','0','h')"
    )
    old.conn.commit()
    old.close()
    assert "labels" not in tables(db_path)

    store = SqliteUnitOfWork.open(db_path, clock=clock, backup_dir=db_path.parent / "backups")
    try:
        assert store.maintenance.schema_status().is_current
    finally:
        store.close()
    assert "labels" in tables(db_path)
    backups = list((db_path.parent / "backups").glob("*.db"))
    assert len(backups) == 1
    assert last in backups[0].name
    # the backup is the old schema, with the old data
    assert "labels" not in tables(backups[0])
    conn = sqlite3.connect(backups[0])
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    conn.close()


def test_database_from_a_newer_station_is_refused_untouched(db_path: Path, clock) -> None:
    store = SqliteUnitOfWork.open(db_path, clock=clock)
    store.audit.append(EventDraft(kind="k", subject="s"))
    store.close()
    conn = sqlite3.connect(db_path)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('station', '0099_future', 'x')"
    )
    conn.commit()
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(SchemaTooNewError) as info:
        SqliteUnitOfWork.open(db_path, clock=clock)
    assert "0099_future" in info.value.message
    assert info.value.details["unknown"] == ["0099_future"]
    assert db_path.read_bytes() == before


def test_a_failing_migration_leaves_the_database_unchanged(
    db_path: Path, clock, monkeypatch
) -> None:
    db_path.parent.mkdir(parents=True)
    old = Database(db_path)
    schema.migrations.apply(old, stop_before="0002_labels_and_outbox")
    old.close()

    broken = schema.Migrations(schema.MIGRATION_SET)

    @broken(name="0001_core")
    def _core(db):  # already applied, skipped
        raise AssertionError

    @broken(name="0002_labels_and_outbox")
    def _labels(db):
        db.execute("CREATE TABLE labels (id INTEGER PRIMARY KEY)")
        db.execute("THIS IS NOT SQL")

    monkeypatch.setattr(schema, "migrations", broken)
    from station.domain.errors import StoreError

    with pytest.raises(StoreError, match="migrating"):
        SqliteUnitOfWork.open(db_path, clock=clock)
    assert "labels" not in tables(db_path)


def test_pin_failure_counts_move_from_meta_into_their_own_table(db_path: Path, clock) -> None:
    db_path.parent.mkdir(parents=True)
    old = Database(db_path)
    schema.migrations.apply(old, stop_before="0005_pin_failures")
    counts = {"tina": "3", "quinn": "0", "eve": "junk", "bob": "-2", "ann": "4"}
    for name, value in counts.items():
        old.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)", [f"operators.pin_failures.{name}", value]
        )
    old.execute("INSERT INTO meta (key, value) VALUES ('operators.badge_salt', 'c2FsdA==')")
    old.conn.commit()
    old.close()

    store = SqliteUnitOfWork.open(db_path, clock=clock, backup_dir=db_path.parent / "backups")
    try:
        # what the service counted before (a count that is not a whole number was none)
        assert store.operators.iter_pin_failures() == [("ann", 4), ("tina", 3)]
        assert store.operators.pin_failures("eve") == 0
        assert store.settings.with_prefix("operators.pin_failures.") == []
        assert store.settings.get("operators.badge_salt") == "c2FsdA=="  # a setting stays one
    finally:
        store.close()


def test_batch_counts_start_from_the_rows_and_follow_every_write(db_path: Path, clock) -> None:
    db_path.parent.mkdir(parents=True)
    old = Database(db_path)
    schema.migrations.apply(old, stop_before="0007_batch_counts")
    device = (
        "INSERT INTO devices (registration_id, serial, batch, product, attestation, status, "
        "ek_sha256, cert_thumbprint, manifest, manifest_hash, event_seq, created_at, updated_at) "
        "VALUES (?, ?, ?, 'p', 'tpm', ?, '', '', '{}', '', 0, 't', 't')"
    )
    rows = [("a1", "WO-A", "provisioned"), ("a2", "WO-A", "provisioned"), ("a3", "WO-A", "voided")]
    rows += [("b1", "WO-B", "provisioning")]
    for rid, batch, status in rows:
        old.execute(device, [rid, f"SN-{rid}", batch, status])
    certificate = (
        "INSERT INTO certificates (serial_number, registration_id, thumbprint_sha256, "
        "certificate_pem, not_before, not_after, profile, status, issued_at, batch) "
        "VALUES (?, ?, ?, '', '', '', 'device', ?, 't', ?)"
    )
    for serial, rid, status, batch in [
        ("01", "a1", "installed", "WO-A"),
        ("02", "a3", "voided", "WO-A"),
        ("03", "b1", "issued", "WO-B"),
    ]:
        old.execute(certificate, [serial, rid, f"thumb-{serial}", status, batch])
    old.conn.commit()
    old.close()

    store = SqliteUnitOfWork.open(db_path, clock=clock, backup_dir=db_path.parent / "backups")
    try:
        assert store.batches.counts("WO-A") == BatchCounts("WO-A", 2, 2)
        assert store.batches.counts("WO-B") == BatchCounts("WO-B", 0, 1)
        assert store.batches.counts("WO-NONE") == BatchCounts("WO-NONE", 0, 0)
    finally:
        store.close()
    # every write moves the counts, whoever makes it (here by hand, as any tool could)
    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE devices SET status = 'provisioned' WHERE registration_id = 'b1'")
    raw.execute("UPDATE devices SET status = 'voided' WHERE registration_id = 'a1'")
    raw.execute("UPDATE devices SET batch = 'WO-B' WHERE registration_id = 'a2'")
    raw.execute("DELETE FROM certificates WHERE serial_number = '02'")
    raw.execute(certificate, ["04", "b1", "thumb-04", "issued", "WO-B"])
    raw.execute("UPDATE devices SET updated_at = 'later' WHERE registration_id = 'b1'")
    raw.commit()
    kept = dict(
        (row[0], row[1:])
        for row in raw.execute("SELECT batch, provisioned, certificates FROM batch_counts")
    )
    raw.close()
    assert kept == {"WO-A": (0, 1), "WO-B": (2, 2)}
