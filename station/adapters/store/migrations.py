"""Versioned schema migrations for the identity store.

Each migration runs in one transaction together with its record in ``_sqlite_migrations``. Never
edit a migration that has shipped; add a new one. A database holding a migration this list does not
know was written by a newer station and is refused (see ``SqliteUnitOfWork.open``).
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from station.domain.states import DeviceStatus

MIGRATION_SET = "station"

migrations = Migrations(MIGRATION_SET)


def _run(db: Database, statements: str) -> None:
    # executescript() would commit the migration's transaction, so run statement by statement
    # (a trigger's body holds semicolons: a statement ends where SQLite says it is complete).
    pending = ""
    for part in statements.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                db.execute(pending)
            pending = ""


@migrations(name="0001_core")
def m0001_core(db: Database) -> None:
    """Meta, audit events, operators, batches, devices, issuance log and jobs."""
    _run(
        db,
        """
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            station TEXT NOT NULL,
            operator TEXT NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        );
        CREATE INDEX events_subject ON events(subject, seq);
        CREATE TABLE operators (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('technician', 'qa', 'admin')),
            enabled INTEGER NOT NULL DEFAULT 1,
            pin_hash TEXT NOT NULL DEFAULT '',
            badge_hash TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        );
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            product TEXT NOT NULL,
            size INTEGER NOT NULL CHECK (size > 0),
            status TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            registration_id TEXT NOT NULL UNIQUE,
            serial TEXT NOT NULL,
            batch TEXT NOT NULL,
            product TEXT NOT NULL,
            attestation TEXT NOT NULL,
            status TEXT NOT NULL,
            ek_sha256 TEXT NOT NULL DEFAULT '',
            cert_thumbprint TEXT NOT NULL DEFAULT '',
            manifest TEXT NOT NULL,
            manifest_hash TEXT NOT NULL,
            event_seq INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX devices_serial ON devices(serial);
        CREATE INDEX devices_batch ON devices(batch, status);
        CREATE INDEX devices_ek ON devices(ek_sha256) WHERE ek_sha256 != '';
        CREATE INDEX devices_cert ON devices(cert_thumbprint) WHERE cert_thumbprint != '';
        CREATE UNIQUE INDEX devices_live_serial ON devices(serial) WHERE status != 'voided';
        CREATE UNIQUE INDEX devices_live_ek ON devices(ek_sha256)
            WHERE ek_sha256 != '' AND status != 'voided';
        CREATE TABLE certificates (
            id INTEGER PRIMARY KEY,
            serial_number TEXT NOT NULL UNIQUE,
            registration_id TEXT NOT NULL,
            thumbprint_sha256 TEXT NOT NULL UNIQUE,
            certificate_pem TEXT NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT NOT NULL,
            profile TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('issued', 'installed', 'voided')),
            issued_at TEXT NOT NULL,
            batch TEXT NOT NULL DEFAULT '',
            job_id INTEGER,
            void_reason TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX certificates_registration ON certificates(registration_id);
        CREATE INDEX certificates_batch ON certificates(batch, status);
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            slot TEXT NOT NULL,
            batch TEXT NOT NULL,
            state TEXT NOT NULL,
            step TEXT NOT NULL,
            board_serial TEXT NOT NULL DEFAULT '',
            registration_id TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX jobs_open ON jobs(state) WHERE state NOT IN ('passed', 'voided')
        """,
    )


@migrations(name="0002_labels_and_outbox")
def m0002_labels_and_outbox(db: Database) -> None:
    """The print log and the per-device DPS push outbox."""
    _run(
        db,
        """
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            registration_id TEXT NOT NULL,
            template TEXT NOT NULL,
            printer TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('print', 'reprint')),
            reason TEXT NOT NULL DEFAULT '',
            operator TEXT NOT NULL,
            printed_at TEXT NOT NULL
        );
        CREATE INDEX labels_registration ON labels(registration_id);
        CREATE TABLE pushes (
            id INTEGER PRIMARY KEY,
            batch TEXT NOT NULL,
            registration_id TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            etag TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            UNIQUE (batch, registration_id)
        );
        CREATE INDEX pushes_state ON pushes(batch, state)
        """,
    )


@migrations(name="0003_push_conflicts")
def m0003_push_conflicts(db: Database) -> None:
    """Outbox: DPS's version of a conflicting enrollment (shown to a human, never overwritten)."""
    _run(
        db,
        """
        ALTER TABLE pushes ADD COLUMN remote TEXT NOT NULL DEFAULT '';
        CREATE INDEX pushes_batch_order ON pushes(batch, id)
        """,
    )


@migrations(name="0004_seals_and_device_keys")
def m0004_seals_and_device_keys(db: Database) -> None:
    """Batch seals and the secure-element clone index move out of ``meta`` into tables."""
    _run(
        db,
        """
        CREATE TABLE batch_seals (
            batch TEXT PRIMARY KEY,
            count INTEGER NOT NULL,
            digest TEXT NOT NULL,
            sealed_at TEXT NOT NULL
        );
        CREATE TABLE device_keys (
            spki_sha256 TEXT PRIMARY KEY,
            registration_id TEXT NOT NULL
        );
        CREATE INDEX device_keys_owner ON device_keys(registration_id)
        """,
    )
    # A seal that is not readable JSON is copied as it is into columns SQLite will not refuse,
    # so `station db verify` still names it instead of the migration losing it.
    db.execute(
        "INSERT INTO batch_seals (batch, count, digest, sealed_at) "
        "SELECT substr(key, 12), "
        "CASE WHEN json_valid(value) THEN ifnull(json_extract(value, '$.count'), -1) ELSE -1 END, "
        "CASE WHEN json_valid(value) THEN ifnull(json_extract(value, '$.digest'), '') "
        "ELSE value END, "
        "CASE WHEN json_valid(value) THEN ifnull(json_extract(value, '$.at'), '') ELSE '' END "
        "FROM meta WHERE substr(key, 1, 11) = 'batch.seal.'"
    )
    db.execute(
        "INSERT INTO device_keys (spki_sha256, registration_id) "
        "SELECT substr(key, 22), value FROM meta WHERE substr(key, 1, 21) = 'provision.device_key.'"
    )
    db.execute(
        "DELETE FROM meta WHERE substr(key, 1, 11) = 'batch.seal.' "
        "OR substr(key, 1, 21) = 'provision.device_key.'"
    )


@migrations(name="0005_pin_failures")
def m0005_pin_failures(db: Database) -> None:
    """The count of wrong PINs in a row per operator moves out of ``meta`` into a table."""
    _run(
        db,
        """
        CREATE TABLE pin_failures (
            operator TEXT PRIMARY KEY,
            failures INTEGER NOT NULL CHECK (failures > 0)
        )
        """,
    )
    # a count that is not a whole number counted as none before; zero is the same as no row
    db.execute(
        "INSERT INTO pin_failures (operator, failures) "
        "SELECT substr(key, 24), CAST(value AS INTEGER) FROM meta "
        "WHERE substr(key, 1, 23) = 'operators.pin_failures.' "
        "AND value != '' AND value NOT GLOB '*[^0-9]*' AND CAST(value AS INTEGER) > 0"
    )
    db.execute("DELETE FROM meta WHERE substr(key, 1, 23) = 'operators.pin_failures.'")


@migrations(name="0006_fleet_outbox")
def m0006_fleet_outbox(db: Database) -> None:
    """Fleet replication (#23): each audit event queued for the ledger, in order, until acked."""
    _run(
        db,
        """
        CREATE TABLE fleet_outbox (
            seq INTEGER PRIMARY KEY,
            hash TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'sent')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            enqueued_at TEXT NOT NULL,
            sent_at TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX fleet_outbox_pending ON fleet_outbox(seq) WHERE state = 'pending'
        """,
    )


@migrations(name="0007_batch_counts")
def m0007_batch_counts(db: Database) -> None:
    """Each batch's provisioned devices and logged certificates, kept by triggers (#17).

    The admission's room check and the CA's quota read them at every board; counting the rows
    grew with the batch. Triggers keep them in the transaction of every device or certificate
    write (an upsert's update fires the update trigger), whatever code path writes.
    """
    provisioned = f"'{DeviceStatus.PROVISIONED}'"
    _run(
        db,
        f"""
        CREATE TABLE batch_counts (
            batch TEXT PRIMARY KEY,
            provisioned INTEGER NOT NULL DEFAULT 0,
            certificates INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO batch_counts (batch, provisioned, certificates)
            SELECT batch, sum(provisioned), sum(certificates) FROM (
                SELECT batch, count(*) AS provisioned, 0 AS certificates FROM devices
                    WHERE status = {provisioned} GROUP BY batch
                UNION ALL
                SELECT batch, 0, count(*) FROM certificates GROUP BY batch
            ) GROUP BY batch;
        CREATE TRIGGER batch_counts_device_added AFTER INSERT ON devices
            WHEN NEW.status = {provisioned}
        BEGIN
            INSERT INTO batch_counts (batch, provisioned) VALUES (NEW.batch, 1)
                ON CONFLICT(batch) DO UPDATE SET provisioned = provisioned + 1;
        END;
        CREATE TRIGGER batch_counts_device_changed AFTER UPDATE OF status, batch ON devices
            WHEN (OLD.status = {provisioned}) != (NEW.status = {provisioned})
                OR (NEW.status = {provisioned} AND OLD.batch != NEW.batch)
        BEGIN
            UPDATE batch_counts SET provisioned = provisioned - 1
                WHERE batch = OLD.batch AND OLD.status = {provisioned};
            INSERT INTO batch_counts (batch, provisioned)
                SELECT NEW.batch, 1 WHERE NEW.status = {provisioned}
                ON CONFLICT(batch) DO UPDATE SET provisioned = provisioned + 1;
        END;
        CREATE TRIGGER batch_counts_device_removed AFTER DELETE ON devices
            WHEN OLD.status = {provisioned}
        BEGIN
            UPDATE batch_counts SET provisioned = provisioned - 1 WHERE batch = OLD.batch;
        END;
        CREATE TRIGGER batch_counts_certificate_added AFTER INSERT ON certificates
        BEGIN
            INSERT INTO batch_counts (batch, certificates) VALUES (NEW.batch, 1)
                ON CONFLICT(batch) DO UPDATE SET certificates = certificates + 1;
        END;
        CREATE TRIGGER batch_counts_certificate_moved AFTER UPDATE OF batch ON certificates
            WHEN OLD.batch != NEW.batch
        BEGIN
            UPDATE batch_counts SET certificates = certificates - 1 WHERE batch = OLD.batch;
            INSERT INTO batch_counts (batch, certificates) VALUES (NEW.batch, 1)
                ON CONFLICT(batch) DO UPDATE SET certificates = certificates + 1;
        END;
        CREATE TRIGGER batch_counts_certificate_removed AFTER DELETE ON certificates
        BEGIN
            UPDATE batch_counts SET certificates = certificates - 1 WHERE batch = OLD.batch;
        END
        """,
    )


def known_migrations() -> tuple[str, ...]:
    """Names of every migration this station knows, in order."""
    return tuple(m.name for m in migrations.pending(Database(memory=True)))
