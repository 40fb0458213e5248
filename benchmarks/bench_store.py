"""Identity store at scale: recording rate, lookups, verify and export over N devices.

Usage: .venv/bin/python benchmarks/bench_store.py [--rows 1000000] [--dir DIR]

Prints, for the real use case (``record_identity``: audit event + device row, one transaction per
device) and for the floor (raw ``executemany`` of the same rows in one transaction), the rate and
the ratio; then lookup latencies by serial, registration ID and EK hash, the time of a full
``verify_store`` walk and of a streaming export of every manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.domain.manifest import Attestation, BoardInfo, DpsTarget, IdentityManifest, TpmIdentity
from station.domain.records import DeviceQuery
from station.domain.registration import tpm_registration_id
from station.services.identities import record_identity
from station.services.integrity import verify_store


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def manifest(i: int) -> IdentityManifest:
    ek = hashlib.sha256(i.to_bytes(8, "big")).digest() * 10  # 320 bytes, the size of a real EK
    return IdentityManifest(
        registration_id=tpm_registration_id(ek),
        device_id=tpm_registration_id(ek),
        attestation=Attestation.TPM,
        board=BoardInfo(
            serial=f"SN{i:08d}", model="M1", hardware_revision="B", firmware_version="1.0"
        ),
        product="thermo",
        batch=f"WO-{i // 10000:04d}",
        dps=DpsTarget("global.azure-devices-provisioning.net", "0ne00000001"),
        station="bench",
        operator="bench",
        provisioned_at="2026-01-01T00:00:00.000000Z",
        tpm=TpmIdentity(endorsement_key=ek.hex(), ek_sha256=hashlib.sha256(ek).hexdigest()),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "station.db"
    db_path.unlink(missing_ok=True)
    clock = Clock()
    store = SqliteUnitOfWork.open(db_path, clock=clock)

    # 1. the line-rate path: one transaction per device
    line_rows = min(2000, args.rows)
    started = time.perf_counter()
    for i in range(line_rows):
        record_identity(store, manifest(i), clock=clock, station="bench", operator="bench")
    line_rate = line_rows / (time.perf_counter() - started)

    # floor: the same rows, raw executemany in one transaction into a scratch database
    floor_path = work / "floor.db"
    floor_path.unlink(missing_ok=True)
    floor = sqlite3.connect(floor_path)
    floor.execute("CREATE TABLE devices (registration_id TEXT UNIQUE, serial TEXT, manifest TEXT)")
    rows = [
        (m.registration_id, m.board.serial, m.canonical().decode())
        for m in map(manifest, range(line_rows))
    ]
    started = time.perf_counter()
    with floor:
        floor.executemany("INSERT INTO devices VALUES (?, ?, ?)", rows)
    floor_rate = line_rows / (time.perf_counter() - started)
    floor.close()

    # 2. seed up to N rows, 1000 devices per transaction
    started = time.perf_counter()
    for chunk in range(line_rows, args.rows, 1000):
        with store:
            for i in range(chunk, min(chunk + 1000, args.rows)):
                record_identity(store, manifest(i), clock=clock, station="bench", operator="bench")
    seed_seconds = time.perf_counter() - started

    # 3. lookups at N
    def timed(fn, repeat: int = 200) -> float:
        samples = []
        for k in range(repeat):
            t0 = time.perf_counter()
            fn(k)
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples) * 1000

    n = args.rows
    by_serial = timed(lambda k: store.devices.find(DeviceQuery(serial=f"SN{(k * 7919) % n:08d}")))
    by_reg = timed(lambda k: store.devices.get(manifest((k * 104729) % n).registration_id))
    by_ek = timed(
        lambda k: store.devices.find(DeviceQuery(ek_sha256=manifest((k * 31) % n).ek_sha256))
    )
    page = timed(
        lambda k: store.devices.find(DeviceQuery(batch="WO-0003", limit=100, offset=k)), 50
    )
    count = timed(lambda k: store.devices.count(DeviceQuery()), 5)

    started = time.perf_counter()
    report = verify_store(store)
    verify_seconds = time.perf_counter() - started
    assert report.ok, report.first

    started = time.perf_counter()
    exported = 0
    out = work / "export.jsonl"
    with out.open("w", encoding="utf-8") as sink:
        for device in store.devices.iter_all():
            sink.write(device.manifest_json + "\n")
            exported += 1
    export_seconds = time.perf_counter() - started
    store.close()

    size_mb = db_path.stat().st_size / 1e6
    print(f"identity store benchmark, {n:,} devices ({size_mb:,.0f} MB) in {work}")
    print(f"  record_identity, 1 txn/device : {line_rate:8,.0f} devices/s")
    print(
        f"  floor (raw executemany)      : {floor_rate:8,.0f} rows/s  -> station at {line_rate / floor_rate:.1%} of floor"
    )
    print(
        f"  seed, 1000 devices/txn       : {(n - line_rows) / max(seed_seconds, 1e-9):8,.0f} devices/s"
    )
    print(f"  lookup by serial (median)    : {by_serial:8.3f} ms")
    print(f"  lookup by registration ID    : {by_reg:8.3f} ms")
    print(f"  lookup by EK hash            : {by_ek:8.3f} ms")
    print(f"  one page of 100 in a batch   : {page:8.3f} ms")
    print(f"  count(*)                     : {count:8.3f} ms")
    print(f"  db verify (chain + rows)     : {verify_seconds:8.1f} s  ({report.events:,} events)")
    print(
        f"  export every manifest (jsonl): {export_seconds:8.1f} s  ({exported / export_seconds:,.0f}/s)"
    )


if __name__ == "__main__":
    main()
