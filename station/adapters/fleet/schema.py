"""The fleet ledger's tables (PostgreSQL), created idempotently by ``station fleet init-ledger``.

Every row names the station it came from. ``fleet_events`` holds each station's audit chain
exactly once (``(station, seq)`` and ``(station, hash)`` are keys); ``fleet_stations`` holds the
acknowledged head per station, so a batch that does not continue it is refused. ``fleet_claims``
is the fleet's uniqueness index: one owner per identity key; a second live device with the same
key becomes a row of ``fleet_alarms``. Times the ledger sets use its own clock (``now()``); times
copied from a station are kept as the station wrote them (text), and order nothing.
"""

from __future__ import annotations

#: The version this module creates; stored in ``fleet_schema`` for later migrations.
SCHEMA_VERSION = 1

STATEMENTS: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS fleet_schema (version integer NOT NULL)",
    """
    CREATE TABLE IF NOT EXISTS fleet_stations (
        station text PRIMARY KEY,
        acked_seq bigint NOT NULL DEFAULT 0,
        acked_hash text NOT NULL
            DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
        head_seq bigint NOT NULL DEFAULT 0,
        last_sync timestamptz,
        clock_skew_s double precision NOT NULL DEFAULT 0,
        ca_subject text NOT NULL DEFAULT '',
        ca_fingerprint text NOT NULL DEFAULT '',
        ca_not_after text NOT NULL DEFAULT '',
        ca_certificate text NOT NULL DEFAULT ''
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS fleet_events (
        station text NOT NULL,
        seq bigint NOT NULL,
        hash text NOT NULL,
        prev_hash text NOT NULL,
        time text NOT NULL,
        event_station text NOT NULL,
        operator text NOT NULL,
        kind text NOT NULL,
        subject text NOT NULL,
        payload text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (station, seq),
        UNIQUE (station, hash)
    )
    """,
    "CREATE INDEX IF NOT EXISTS fleet_events_subject ON fleet_events (station, subject, seq)",
    """
    CREATE TABLE IF NOT EXISTS fleet_devices (
        station text NOT NULL,
        registration_id text NOT NULL,
        serial text NOT NULL,
        batch text NOT NULL,
        product text NOT NULL,
        attestation text NOT NULL,
        status text NOT NULL,
        operator text NOT NULL,
        ek_sha256 text NOT NULL,
        cert_thumbprint text NOT NULL,
        device_key_sha256 text NOT NULL,
        manifest_hash text NOT NULL,
        manifest text NOT NULL,
        event_seq bigint NOT NULL,
        created_at text NOT NULL,
        updated_at text NOT NULL,
        PRIMARY KEY (station, registration_id)
    )
    """,
    "CREATE INDEX IF NOT EXISTS fleet_devices_rid ON fleet_devices (registration_id)",
    "CREATE INDEX IF NOT EXISTS fleet_devices_serial ON fleet_devices (serial)",
    # a work order's page and its export walk this index in (station, registration ID) order
    "CREATE INDEX IF NOT EXISTS fleet_devices_batch "
    "ON fleet_devices (batch, station, registration_id)",
    # the stations summary counts by status from the index alone, not the wide rows
    "CREATE INDEX IF NOT EXISTS fleet_devices_status ON fleet_devices (station, status)",
    "CREATE INDEX IF NOT EXISTS fleet_devices_product ON fleet_devices (product)",
    "CREATE INDEX IF NOT EXISTS fleet_devices_ek ON fleet_devices (ek_sha256) "
    "WHERE ek_sha256 <> ''",
    "CREATE INDEX IF NOT EXISTS fleet_devices_key ON fleet_devices (device_key_sha256) "
    "WHERE device_key_sha256 <> ''",
    """
    CREATE TABLE IF NOT EXISTS fleet_certificates (
        station text NOT NULL,
        serial_number text NOT NULL,
        registration_id text NOT NULL,
        thumbprint_sha256 text NOT NULL,
        profile text NOT NULL,
        status text NOT NULL,
        batch text NOT NULL,
        issued_at text NOT NULL,
        not_after text NOT NULL,
        PRIMARY KEY (station, serial_number)
    )
    """,
    "CREATE INDEX IF NOT EXISTS fleet_certificates_batch ON fleet_certificates (batch, station)",
    """
    CREATE TABLE IF NOT EXISTS fleet_batches (
        station text NOT NULL,
        name text NOT NULL,
        product text NOT NULL,
        size integer NOT NULL,
        status text NOT NULL,
        created_at text NOT NULL,
        PRIMARY KEY (station, name)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS fleet_claims (
        kind text NOT NULL,
        scope text NOT NULL,
        value text NOT NULL,
        station text NOT NULL,
        registration_id text NOT NULL,
        serial text NOT NULL,
        operator text NOT NULL,
        batch text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, scope, value)
    )
    """,
    "CREATE INDEX IF NOT EXISTS fleet_claims_owner ON fleet_claims (station, registration_id)",
    "CREATE INDEX IF NOT EXISTS fleet_claims_batch ON fleet_claims (batch) "
    "WHERE kind = 'registration_id'",
    """
    CREATE TABLE IF NOT EXISTS fleet_alarms (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        scope text NOT NULL,
        value text NOT NULL,
        first_station text NOT NULL,
        first_registration_id text NOT NULL,
        first_serial text NOT NULL,
        first_operator text NOT NULL,
        first_batch text NOT NULL,
        second_station text NOT NULL,
        second_registration_id text NOT NULL,
        second_serial text NOT NULL,
        second_operator text NOT NULL,
        second_batch text NOT NULL,
        raised_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (kind, scope, value, first_station, first_registration_id,
                second_station, second_registration_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS fleet_quotas (
        batch text PRIMARY KEY,
        max_devices integer NOT NULL CHECK (max_devices > 0)
    )
    """,
)


#: The roles the admin guide sets up ("Fleet ledger"): run as the owner after ``init-ledger``.
#: Stations append and upsert but never update or delete an event; readers only read; quotas are
#: the admins'. Each station logs in with its own role, member of ``fleet_station``.
ROLES_SQL = """\
DO $$ BEGIN
  CREATE ROLE fleet_station NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE ROLE fleet_reader NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
  CREATE ROLE fleet_admin NOLOGIN IN ROLE fleet_reader;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT USAGE ON SCHEMA public TO fleet_station, fleet_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO fleet_station, fleet_reader;
GRANT INSERT ON fleet_events, fleet_alarms TO fleet_station;
GRANT INSERT, UPDATE ON fleet_stations, fleet_devices, fleet_certificates, fleet_batches,
  fleet_claims TO fleet_station;
GRANT DELETE ON fleet_claims TO fleet_station;
GRANT USAGE ON SEQUENCE fleet_alarms_id_seq TO fleet_station;
GRANT INSERT, UPDATE, DELETE ON fleet_quotas TO fleet_admin;
"""
