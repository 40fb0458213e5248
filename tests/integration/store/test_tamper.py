"""Changes made behind the station's back with plain sqlite3 are caught and located."""

import sqlite3
from pathlib import Path

import pytest

from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.domain.audit import EventDraft
from station.domain.manifest import Attestation
from station.domain.records import CertificateRecord, DeviceQuery
from station.services.identities import record_identity, void_identity
from station.services.integrity import verify_store

CERT_PEM = """-----BEGIN CERTIFICATE-----
MIIBFTCBvKADAgECAgEBMAoGCCqGSM49BAMCMBIxEDAOBgNVBAMMB3Rlc3QtY2Ew
HhcNMjYwMTAxMDAwMDAwWhcNMjcwMTAxMDAwMDAwWjARMQ8wDQYDVQQDDAZkZXYt
c24wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ=
-----END CERTIFICATE-----"""


def thumbprint(pem: str) -> str:
    import base64
    import hashlib

    body = "".join(pem.strip().splitlines()[1:-1])
    return hashlib.sha256(base64.b64decode(body)).hexdigest()


@pytest.fixture
def filled(store: SqliteUnitOfWork, make_manifest, clock, db_path: Path) -> Path:
    for i in range(3):
        record_identity(store, make_manifest(f"SN{i}"), clock=clock, station="st", operator="op")
    x509 = make_manifest(
        "SNX",
        attestation=Attestation.X509,
        certificate_pem=CERT_PEM,
        thumbprint=thumbprint(CERT_PEM),
    )
    store.audit.append(
        EventDraft(
            kind="ca.certificate_issued",
            subject=x509.registration_id,
            payload={"serial": "01", "thumbprint": thumbprint(CERT_PEM), "manual": False},
        )
    )
    store.certificates.save(
        CertificateRecord(
            serial_number="01",
            registration_id=x509.registration_id,
            thumbprint_sha256=thumbprint(CERT_PEM),
            certificate_pem=CERT_PEM,
            not_before="2026-01-01T00:00:00Z",
            not_after="2027-01-01T00:00:00Z",
            profile="device",
            status="installed",
            issued_at="2026-01-01T00:00:00Z",
        )
    )
    record_identity(store, x509, clock=clock, station="st", operator="op")
    void_identity(store, "dev-sn1", reason="rework", clock=clock, station="st", operator="qa")
    store.audit.append(EventDraft(kind="note", subject="end"))
    assert verify_store(store).ok, verify_store(store).problems
    return db_path


def tamper(path: Path, sql: str, *params) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def check(path: Path, clock):
    store = SqliteUnitOfWork.open(path, clock=clock)
    try:
        return verify_store(store)
    finally:
        store.close()


def test_untouched_database_verifies(filled: Path, clock) -> None:
    report = check(filled, clock)
    assert report.ok
    assert (report.events, report.devices, report.certificates) == (7, 4, 1)


def test_edited_event_payload_is_named(filled: Path, clock) -> None:
    tamper(filled, "UPDATE events SET payload = replace(payload, 'rework', 'fine') WHERE seq = 6")
    report = check(filled, clock)
    assert report.first is not None
    assert (report.first.table, report.first.row) == ("events", "seq 6")
    assert "edited" in report.first.reason


def test_edited_event_operator_is_named(filled: Path, clock) -> None:
    tamper(filled, "UPDATE events SET operator = 'mallory' WHERE seq = 2")
    report = check(filled, clock)
    assert report.first is not None and report.first.row == "seq 2"


def test_deleted_event_is_named(filled: Path, clock) -> None:
    tamper(filled, "DELETE FROM events WHERE seq = 3")
    report = check(filled, clock)
    assert report.first is not None and report.first.row == "seq 4"
    assert "expected event 3" in report.first.reason


def test_deleted_last_event_is_caught_by_the_head(filled: Path, clock) -> None:
    tamper(filled, "DELETE FROM events WHERE seq = 7")
    report = check(filled, clock)
    assert report.first is not None and report.first.row == "seq 7"
    assert "ends at event 6" in report.first.reason


def test_reordered_events_are_named(filled: Path, clock) -> None:
    conn = sqlite3.connect(filled)
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT seq, time, station, operator, kind, subject, payload, prev_hash, hash FROM events WHERE seq IN (2, 3)"
        )
    }
    conn.execute("DELETE FROM events WHERE seq IN (2, 3)")
    conn.execute("INSERT INTO events VALUES (2, ?, ?, ?, ?, ?, ?, ?, ?)", rows[3])
    conn.execute("INSERT INTO events VALUES (3, ?, ?, ?, ?, ?, ?, ?, ?)", rows[2])
    conn.commit()
    conn.close()
    report = check(filled, clock)
    assert report.first is not None and report.first.row == "seq 2"


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("UPDATE devices SET batch = 'WO-9' WHERE registration_id = 'dev-sn2'", "column batch"),
        ("UPDATE devices SET status = 'provisioned' WHERE registration_id = 'dev-sn2'", None),
        (
            "UPDATE devices SET manifest = replace(manifest, 'WO-1', 'WO-7') WHERE registration_id = 'dev-sn2'",
            "manifest_hash",
        ),
        ("UPDATE devices SET event_seq = 1 WHERE registration_id = 'dev-sn2'", "not this device"),
    ],
)
def test_device_row_edits_are_named(filled: Path, clock, sql: str, fragment: str | None) -> None:
    if fragment is None:
        # un-voiding a voided device: rewrite its manifest and hash consistently, as an attacker
        # would; only the audit event still knows the truth.
        store = SqliteUnitOfWork.open(filled, clock=clock)
        row = store.devices.get("dev-sn1")
        store.close()
        assert row is not None
        new_manifest = row.manifest_json.replace('"status":"voided"', '"status":"provisioned"')
        import hashlib

        tamper(
            filled,
            "UPDATE devices SET manifest = ?, manifest_hash = ?, status = 'provisioned' WHERE registration_id = 'dev-sn1'",
            new_manifest,
            hashlib.sha256(new_manifest.encode()).hexdigest(),
        )
        target = "dev-sn1"
        fragment = "behind the station's back"
    else:
        tamper(filled, sql)
        target = "dev-sn2"
    report = check(filled, clock)
    assert not report.ok
    assert report.first is not None
    assert (report.first.table, report.first.row) == ("devices", target)
    assert fragment in report.first.reason


def test_certificate_without_device_is_named(filled: Path, clock) -> None:
    tamper(filled, "DELETE FROM devices WHERE attestation = 'x509'")
    report = check(filled, clock)
    assert report.first is not None
    assert report.first.table == "certificates" and report.first.row == "serial 01"
    assert "no such device" in report.first.reason


def test_orphan_issued_certificate_is_named(filled: Path, clock) -> None:
    tamper(filled, "UPDATE certificates SET status = 'issued', job_id = 99")
    report = check(filled, clock)
    problems = [str(p) for p in report.problems]
    assert any("neither installed" in p for p in problems) or any(
        "no installed certificate" in p for p in problems
    )
    assert any(p.startswith("devices dev-snx") for p in problems)


def test_voided_devices_free_their_serial_for_rework(
    store: SqliteUnitOfWork, make_manifest, clock
) -> None:
    record_identity(store, make_manifest("SN5"), clock=clock, station="st", operator="op")
    void_identity(store, "dev-sn5", reason="rework", clock=clock, station="st", operator="qa")
    record_identity(store, make_manifest("SN5"), clock=clock, station="st", operator="op")
    rows = store.devices.find(DeviceQuery(serial="SN5"))
    assert [str(r.status) for r in rows] == ["provisioned"]
    assert verify_store(store).ok
    kinds = [e.kind for e in store.audit.events_for("dev-sn5")]
    assert kinds == ["device.recorded", "device.voided", "device.recorded"]


def test_certificate_missing_from_the_audit_trail_is_named(filled: Path, clock) -> None:
    tamper(
        filled,
        "INSERT INTO certificates (serial_number, registration_id, thumbprint_sha256, certificate_pem, "
        "not_before, not_after, profile, status, issued_at) "
        "SELECT '02', registration_id, 'ff', certificate_pem, not_before, not_after, profile, 'voided', issued_at "
        "FROM certificates WHERE serial_number = '01'",
    )
    report = check(filled, clock)
    problems = [str(p) for p in report.problems]
    assert any(p.startswith("certificates serial 02") for p in problems), problems


def test_certificate_swapped_under_its_serial_is_named(filled: Path, clock) -> None:
    other = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----"
    tamper(
        filled,
        "UPDATE certificates SET certificate_pem = ?, thumbprint_sha256 = ? WHERE serial_number = '01'",
        other,
        thumbprint(other),
    )
    report = check(filled, clock)
    assert report.first is not None
    assert (report.first.table, report.first.row) == ("certificates", "serial 01")
    assert "different certificate" in report.first.reason


def test_manually_issued_certificate_without_device_is_accepted(
    store: SqliteUnitOfWork, clock
) -> None:
    store.audit.append(
        EventDraft(
            kind="ca.certificate_issued",
            subject="rework-1",
            payload={"serial": "0A", "thumbprint": thumbprint(CERT_PEM), "manual": True},
        )
    )
    store.certificates.save(
        CertificateRecord(
            serial_number="0a",
            registration_id="rework-1",
            thumbprint_sha256=thumbprint(CERT_PEM),
            certificate_pem=CERT_PEM,
            not_before="2026-01-01T00:00:00Z",
            not_after="2027-01-01T00:00:00Z",
            profile="device",
            status="issued",
            issued_at="2026-01-01T00:00:00Z",
        )
    )
    assert verify_store(store).ok, verify_store(store).problems
