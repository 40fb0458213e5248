"""``db verify`` covers every table and setting, names damaged rows, checks an anchor (#20)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from station.adapters.store.row_scan import SCHEMA
from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.cli.main import main
from station.domain.audit import EventDraft
from station.domain.manifest import Attestation
from station.domain.records import CertificateRecord
from station.services.identities import record_identity
from station.services.integrity import pem_thumbprint, verify_store
from tests.support.certs import new_cert


@pytest.fixture
def filled(station, config, make_manifest, tmp_path) -> Path:
    """A sealed batch, devices, a label, a job, a push, a clone-index entry, a PIN failure."""
    station.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    station.batches().open(name="WO-V", product="lab-sym", size=2, operator="boss")
    store = station.store()
    ids = []
    for index in range(2):
        manifest = make_manifest(
            f"SN-V{index}", attestation=Attestation.SYMMETRIC_KEY, batch="WO-V"
        )
        record_identity(store, manifest, clock=station.clock, station="s", operator="boss")
        ids.append(manifest.registration_id)
    pem = new_cert("dev-x")
    thumbprint = pem_thumbprint(pem)
    assert thumbprint is not None
    with store:
        store.devices.claim_key("ab" * 32, ids[0])
        store.certificates.save(
            CertificateRecord("0A1B", "dev-x", thumbprint, pem, "a", "b", "p", "voided", "t")
        )
        store.audit.append(
            EventDraft(
                kind="ca.certificate_issued",
                subject="dev-x",
                payload={"serial": "0A1B", "thumbprint": thumbprint, "manual": True},
                operator="boss",
                station="s",
            )
        )
    station.labels().print_device(ids[0], printer=f"file:{tmp_path / 'label.pdf'}", operator="boss")
    station.batches().seal("WO-V", operator="boss")
    conn = sqlite3.connect(config.database_path)
    conn.execute(
        "INSERT INTO jobs (slot, batch, state, step, created_at, updated_at) "
        "VALUES ('s1', 'WO-V', 'voided', 'connect', 't', 't')"
    )
    conn.execute(
        "INSERT INTO pushes (batch, registration_id, state, updated_at) "
        f"VALUES ('WO-V', '{ids[0]}', 'pending', 't')"
    )
    conn.execute("INSERT INTO pin_failures (operator, failures) VALUES ('boss', 2)")
    conn.execute(  # the fleet outbox (#23): the first event queued for the ledger
        "INSERT INTO fleet_outbox (seq, hash, state, enqueued_at) "
        "SELECT seq, hash, 'pending', 't' FROM events ORDER BY seq LIMIT 1"
    )
    conn.commit()
    conn.close()
    assert verify_store(store).ok, verify_store(store).problems
    station.close()
    return config.database_path


def _copy(db: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name / "station.db"
    target.parent.mkdir()
    shutil.copy(db, target)
    return target


def _verify(path: Path, clock) -> list[str]:
    store = SqliteUnitOfWork.open(path, clock=clock, create=False)
    try:
        return [str(p) for p in verify_store(store).problems]
    finally:
        store.close()


def _columns() -> list[tuple[str, str, str]]:
    return [
        (table, column, kind if isinstance(kind, str) else "enum")
        for table, (_, columns) in SCHEMA.items()
        for column, kind in columns.items()
        # keys: cannot hold junk
        if (table, column) not in (("meta", "key"), ("events", "seq"), ("fleet_outbox", "seq"))
    ]


@pytest.mark.parametrize(("table", "column", "kind"), _columns())
def test_a_damaged_value_in_any_column_is_named_not_a_traceback(
    filled, tmp_path, clock, table, column, kind
) -> None:
    copy = _copy(filled, tmp_path, f"{table}-{column}")
    conn = sqlite3.connect(copy)
    conn.execute("PRAGMA ignore_check_constraints = 1")
    bad = "'x'" if kind in ("int", "int?", "bool") else "X'C3FF28'"  # not UTF-8
    changed = conn.execute(
        f"UPDATE {table} SET {column} = {bad} WHERE rowid = (SELECT min(rowid) FROM {table})"
    ).rowcount
    conn.commit()
    conn.close()
    assert changed == 1
    problems = _verify(copy, clock)
    assert any(p.startswith(f"{table} ") and f"column {column}" in p for p in problems), problems


def test_batches_seals_clone_index_and_labels_are_checked(filled, tmp_path, clock) -> None:
    edits = {
        "batches": "UPDATE batches SET size = 99",
        "status": "UPDATE batches SET status = 'pushed'",
        "seal": "UPDATE batch_seals SET count = 1 WHERE batch = 'WO-V'",
        "clone": "UPDATE device_keys SET registration_id = 'nobody'",
        "labels": "DELETE FROM labels",
        "jobs": "UPDATE jobs SET batch = 'WO-GONE'",
        "pushes": "UPDATE pushes SET registration_id = 'stranger'",
        "pins": "UPDATE pin_failures SET operator = 'ghost'",
        "counts": "UPDATE batch_counts SET provisioned = provisioned + 5 WHERE batch = 'WO-V'",
    }
    expected = {
        "batches": "batches WO-V: row says product lab-sym size 99",
        "status": "no batch.pushed audit event",
        "seal": "batch_seals WO-V: the seal differs",
        "clone": "the clone index names 'nobody'",
        "labels": "0 label row(s), but 1 label audit event(s)",
        "jobs": "belongs to batch 'WO-GONE', not recorded",
        "pushes": "pushes WO-V/stranger: queued for DPS, but no such device",
        "pins": "pin_failures ghost: wrong PINs counted for an operator who is not recorded",
        "counts": "batch_counts WO-V: kept counts say",
    }
    for name, sql in edits.items():
        copy = _copy(filled, tmp_path, name)
        conn = sqlite3.connect(copy)
        conn.execute(sql)
        conn.commit()
        conn.close()
        if name == "labels":  # a deleted label leaves its event: counted per device
            conn = sqlite3.connect(copy)
            conn.execute(
                "INSERT INTO labels (registration_id, template, printer, kind, operator, "
                "printed_at) VALUES ('ghost', 't', 'p', 'print', 'o', 't')"
            )
            conn.commit()
            conn.close()
        problems = _verify(copy, clock)
        assert any(expected[name] in p for p in problems) or (
            name == "labels" and any("not recorded" in p for p in problems)
        ), (name, problems)


def test_an_anchor_catches_a_rolled_back_database(filled, config_file, tmp_path, capsys):
    older = tmp_path / "older.db"
    shutil.copy(filled, older)  # the file as it was before the commits below
    run = ["--config", str(config_file), "--operator", "boss"]
    assert main([*run, "batch", "open", "WO-LATE", "--product", "lab-sym", "--size", "1"]) == 0
    backup = tmp_path / "b" / "copy.db"
    assert main([*run, "db", "backup", str(backup)]) == 0
    anchor = backup.with_name("copy.db.anchor")
    assert anchor.read_text().startswith("station.chain-anchor/1\n")
    assert main([*run, "db", "verify", "--anchor", str(anchor)]) == 0
    shutil.copy(older, filled)  # WAL deleted / older file restored: a consistent, shorter chain
    capsys.readouterr()
    assert main([*run, "db", "verify"]) == 0  # the chain alone cannot tell
    assert main([*run, "db", "verify", "--anchor", str(anchor)]) == 1
    assert "committed events were lost" in capsys.readouterr().out
