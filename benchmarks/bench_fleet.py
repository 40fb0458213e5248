"""Fleet ledger (PostgreSQL): ingest rate of 20 stations, and fleet queries at 1,000,000 devices.

Usage: .venv/bin/python benchmarks/bench_fleet.py [--stations 20] [--per-station 2500]
                                                 [--fleet 1000000]

Starts a throwaway PostgreSQL cluster (as the tests do: initdb + pg_ctl, as the station-pg user
when run as root). Then:

1. **Ingest.** ``--stations`` simulated stations, each on its own thread and connection, replicate
   ``--per-station`` devices (a ``device.recorded`` event plus the device row each, chained, in
   batches of 500 events) through ``PostgresLedger.ingest``, all at once: the real path with
   chain checks, claims for cross-station uniqueness and the station head update.
2. **Floor.** The same device rows loaded with one ``COPY`` (no events, no claims, no checks).
3. **Queries at scale.** The ledger is filled to ``--fleet`` devices with COPY (devices and their
   claims), then each fleet query is timed (median of 20 runs): by serial, registration ID, EK
   hash, a batch page, one board across stations (``show``), the stations summary, the export of
   one work order (10,000 devices over 10 stations) to a file.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from station.adapters.fleet.ledger import PostgresLedger, device_row
from station.domain.audit import AuditEvent, EventDraft, chain
from station.domain.fleet import FleetDevice, FleetQuery, IngestBatch
from station.domain.manifest import (
    Attestation,
    BoardInfo,
    DpsTarget,
    IdentityManifest,
    SymmetricKeyIdentity,
)
from station.services.fleet import FleetViews
from tests.support.ledger import PgCluster

NOW = datetime(2026, 12, 1, tzinfo=UTC)
BATCH_EVENTS = 500


def device(station: str, i: int, seq: int) -> FleetDevice:
    serial = f"{station.upper()}-{i:07d}"
    rid = f"sym-{station}-{i:07d}"
    manifest = IdentityManifest(
        registration_id=rid,
        device_id=rid,
        attestation=Attestation.SYMMETRIC_KEY,
        board=BoardInfo(serial=serial, model="M1", hardware_revision="B", firmware_version="1.0"),
        product="thermo",
        batch=f"WO-{i // 1000:04d}",
        dps=DpsTarget(
            global_endpoint="global.azure-devices-provisioning.net", id_scope="0ne00000001"
        ),
        station=station,
        operator="tina",
        provisioned_at="2026-12-01T00:00:00.000000Z",
        symmetric_key=SymmetricKeyIdentity(group_key="group-1"),
    )
    return FleetDevice(
        station=station,
        registration_id=rid,
        serial=serial,
        batch=manifest.batch,
        product="thermo",
        attestation="symmetric-key",
        status="provisioned",
        operator="tina",
        ek_sha256=hashlib.sha256(rid.encode()).hexdigest(),
        cert_thumbprint="",
        device_key_sha256="",
        manifest_hash=manifest.digest(),
        manifest_json=manifest.canonical().decode(),
        event_seq=seq,
        created_at="2026-12-01T00:00:00.000000Z",
        updated_at="2026-12-01T00:00:00.000000Z",
    )


def station_batches(station: str, count: int) -> list[IngestBatch]:
    """A station's whole history, chained, cut into ingest batches (built before timing)."""
    batches, events, devices = [], [], []
    prev: AuditEvent | None = None
    for i in range(count):
        row = device(station, i, (prev.seq if prev else 0) + 1)
        prev = chain(
            EventDraft(
                kind="device.recorded",
                subject=row.registration_id,
                payload={"manifest_hash": row.manifest_hash, "serial": row.serial},
                operator="tina",
                station=station,
            ),
            prev=prev,
            time=NOW,
        )
        events.append(prev)
        devices.append(row)
        if len(events) == BATCH_EVENTS or i == count - 1:
            batches.append(
                IngestBatch(
                    station=station,
                    events=tuple(events),
                    devices=tuple(devices),
                    station_time="2026-12-01T00:00:00Z",
                    head_seq=prev.seq,
                )
            )
            events, devices = [], []
    return batches


def plans_of(args: argparse.Namespace) -> list[list[IngestBatch]]:
    """Every simulated station's batches (memoised: the floor copies the same rows)."""
    if not _PLANS:
        _PLANS.extend(station_batches(f"st{n:02d}", args.per_station) for n in range(args.stations))
    return _PLANS


_PLANS: list[list[IngestBatch]] = []


def ingest(dsn: str, plans: list[list[IngestBatch]]) -> float:
    stations = len(plans)
    start = threading.Barrier(stations + 1)
    errors: list[BaseException] = []

    def run(batches: list[IngestBatch]) -> None:
        ledger = PostgresLedger(dsn, timeout_s=600)
        try:
            start.wait()
            for batch in batches:
                ledger.ingest(batch)
        except BaseException as exc:  # noqa: BLE001  # re-raised by the main thread
            errors.append(exc)
        finally:
            ledger.close()

    threads = [threading.Thread(target=run, args=(b,)) for b in plans]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return elapsed


COPY_DEVICES = (
    "COPY fleet_devices (station, registration_id, serial, batch, product, attestation, status, "
    "operator, ek_sha256, cert_thumbprint, device_key_sha256, manifest_hash, manifest, event_seq, "
    "created_at, updated_at) FROM STDIN"
)


def copy_floor(dsn: str, rows: list[FleetDevice]) -> float:
    """COPY the device rows (built before the clock starts): what PostgreSQL does at best."""
    tuples = [device_row(d) for d in rows]
    began = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur, cur.copy(COPY_DEVICES) as copy:
        for row in tuples:
            copy.write_row(row)
    return time.perf_counter() - began


def fill(dsn: str, station: str, count: int) -> None:
    """``count`` devices of one station and their claims, generated inside the server."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO fleet_devices SELECT %(st)s, 'sym-' || %(st)s || '-' || lpad(i::text, 7, '0'), "
            "upper(%(st)s) || '-' || lpad(i::text, 7, '0'), 'WO-' || lpad((i / 1000)::text, 4, '0'), "
            "'thermo', 'symmetric-key', 'provisioned', 'tina', "
            "encode(sha256(('sym-' || %(st)s || '-' || lpad(i::text, 7, '0'))::bytea), 'hex'), "
            "'', '', md5(i::text) || md5(i::text), '{\"pad\":\"' || repeat('x', 590) || '\"}', "
            "i + 1, "
            "'2026-12-01T00:00:00.000000Z', '2026-12-01T00:00:00.000000Z' "
            "FROM generate_series(0, %(n)s - 1) AS i",
            {"st": station, "n": count},
        )
        cur.execute(
            "INSERT INTO fleet_claims (kind, scope, value, station, registration_id, serial, "
            "operator, batch) SELECT k.kind, CASE WHEN k.kind = 'serial' THEN product ELSE '' END, "
            "CASE k.kind WHEN 'serial' THEN serial WHEN 'registration_id' THEN registration_id "
            "ELSE ek_sha256 END, station, registration_id, serial, operator, batch "
            "FROM fleet_devices, (VALUES ('serial'), ('registration_id'), ('ek_sha256')) "
            "AS k(kind) WHERE station = %s",
            [station],
        )
        cur.execute(
            "INSERT INTO fleet_stations (station, acked_seq, head_seq, last_sync) "
            "VALUES (%s, %s, %s, now())",
            [station, count, count],
        )


def _no_store() -> Any:
    raise RuntimeError("the benchmark sets no quota")


class _Files:
    """Export files in a scratch folder (the station's DirectoryExports adds only checks)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, name: str, chunks: Iterable[str]) -> Path:
        path = self.folder / name
        with path.open("w", encoding="utf-8") as handle:
            handle.writelines(chunks)
        return path


def timed(label: str, call: Callable[[], object], runs: int = 20) -> None:
    call()  # warm
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    print(f"  {label:<44} {statistics.median(samples) * 1000:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=20)
    parser.add_argument("--per-station", type=int, default=2500)
    parser.add_argument("--fleet", type=int, default=1_000_000)
    args = parser.parse_args()

    cluster = PgCluster()
    try:
        cluster.init()
        cluster.start()
        dsn = cluster.dsn(cluster.new_database())
        PostgresLedger(dsn).install_schema()
        total = args.stations * args.per_station

        elapsed = ingest(dsn, plans_of(args))
        print(f"ingest: {args.stations} stations x {args.per_station} devices = {total} devices")
        print(
            f"  ledger ingest (events + devices + claims) {elapsed:8.2f} s  "
            f"{total / elapsed:10.0f} devices/s"
        )
        floor_dsn = cluster.dsn(cluster.new_database())
        PostgresLedger(floor_dsn).install_schema()
        rows = [d for batches in plans_of(args) for b in batches for d in b.devices]
        floor = copy_floor(floor_dsn, rows)
        print(
            f"  COPY of the same device rows (floor)      {floor:8.2f} s  {total / floor:10.0f} rows/s"
        )
        print(f"  ratio ingest / floor                      {elapsed / floor:8.1f} x")

        big_dsn = cluster.dsn(cluster.new_database())
        ledger = PostgresLedger(big_dsn, timeout_s=600)
        ledger.install_schema()
        per = args.fleet // 10
        began = time.perf_counter()
        for n in range(10):
            fill(big_dsn, f"line{n:02d}", per)
        with psycopg.connect(big_dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
        print(
            f"fleet of {args.fleet} devices on 10 stations generated in "
            f"{time.perf_counter() - began:.1f} s; query medians:"
        )
        views = FleetViews(ledger, _no_store)
        batch = f"WO-{min(42, per // 1000 - 1):04d}"  # 1,000 devices per station
        timed("devices by serial", lambda: views.devices(FleetQuery(serial="LINE03-0054321")))
        timed(
            "devices by registration ID",
            lambda: views.devices(FleetQuery(registration_id="sym-line07-0012345")),
        )
        ek = hashlib.sha256(b"sym-line05-0099999").hexdigest()
        timed("devices by EK hash", lambda: views.devices(FleetQuery(ek_sha256=ek)))
        timed("batch page (50 of one work order)", lambda: views.devices(FleetQuery(batch=batch)))
        timed("show one board across stations", lambda: views.show("LINE09-0000001"), runs=5)
        timed(f"stations summary (counts over {args.fleet} rows)", views.stations, runs=3)
        out = Path(tempfile.mkdtemp(prefix="fleet-export-"))
        timed(
            "export of one work order to a file (10,000)",
            lambda: views.export_batch(batch, _Files(out)),
            runs=3,
        )
        shutil.rmtree(out)
        ledger.close()
    finally:
        cluster.remove()


if __name__ == "__main__":
    main()
