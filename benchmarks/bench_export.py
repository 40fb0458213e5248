"""Export time and memory for a big batch: DPS bulk JSON, CSV and the signed manifest (SoftHSM2).

Run: .venv/bin/python benchmarks/bench_export.py [DEVICES] [--keep DIR] [--formats F,F] [--verify]
(default 1,000,000 devices, the DPS ceiling)

In one run: the batch is recorded through ``record_identity`` and sealed, then each export format
is written on its own. For each it prints the time, the rate, the peak resident memory growth
during that export (``VmHWM`` after resetting it through ``/proc/self/clear_refs``) and the ratio
against the floor measured in the same run: streaming every device row out of the store and
parsing its manifest (what any export must do). For the manifest, the floor also includes one
ES256 signature per record with the same SoftHSM2 key (what any signed manifest must do).

Seeding a million devices takes the better part of half an hour, so ``--keep DIR`` keeps the
station (database, SoftHSM2 token, configuration) in ``DIR`` and the next run with the same
number of devices reuses it. ``--verify`` also times ``station db verify`` on that database
(the same use case as the CLI: ``DatabaseService.verify``), and ``--formats`` picks the exports
(comma-separated, each timed on its own; ``bulk-json+csv`` is one export writing both files).
The CPU seconds printed are this process's; the wall clock on a shared machine depends on the
load, so note the load average with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _identities import fill, station_in
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import hsm
from hsm.softhsm import activate, create_token
from station.bootstrap import build_station
from station.config import load_config
from station.domain.certificates import MANIFEST_SIGNING_OID


def _rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _rss_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children_cpu() -> float:
    """CPU seconds of finished child processes (``db verify``'s second process)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _chain(directory: Path, public: ec.EllipticCurvePublicKey) -> Path:
    root_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)

    def cert(cn: str, key: object, ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Root")]))
            .public_key(key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            # the manifest-signing profile: the station signs manifests with no other certificate
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.ObjectIdentifier(MANIFEST_SIGNING_OID)]),
                critical=False,
            )
            .sign(root_key, hashes.SHA256())
        )

    path = directory / "chain.pem"
    path.write_bytes(cert("bench manifest", public, False).public_bytes(serialization.Encoding.PEM))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("devices", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the seeded station here")
    parser.add_argument("--formats", default="bulk-json,csv,manifest")
    parser.add_argument("--verify", action="store_true", help="also time station db verify")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor measurements")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        formats = tuple(f for f in args.formats.split(",") if f)
        run(root, args.devices, formats, args.verify, not args.no_floor)


def run(root: Path, devices: int, formats: tuple[str, ...], verify: bool, floors: bool) -> None:
    marker = root / "seeded.json"
    seeded = marker.exists() and json.loads(marker.read_text())["devices"] == devices
    uri = "pkcs11:token=bench;object=manifest"
    pins = hsm.PinSource(env={"STATION_PKCS11_PIN": "1234"})
    os.environ["STATION_PKCS11_PIN"] = "1234"
    if seeded:
        activate(root / "softhsm" / "softhsm2.conf")
        key = hsm.open_signer(uri, pin_source=pins)
        config = root / "station.toml"
        station = build_station(load_config(config, env={}))
        print(f"reusing {devices} seeded devices in {root}", flush=True)
    else:
        for stale in ("data", "softhsm", "station.toml", "chain.pem"):
            if (root / stale).is_dir():
                shutil.rmtree(root / stale)
            else:
                (root / stale).unlink(missing_ok=True)
        token = create_token(root / "softhsm", "bench", pin="1234")
        activate(token.conf)
        key = hsm.generate_key(uri, "ec-p256", pin_source=pins)
        chain = _chain(root, key.public_key())  # type: ignore[arg-type]
        station = station_in(root, f'manifest_key_uri = "{uri}"\nmanifest_chain_file = "{chain}"\n')
    try:
        if not seeded:
            t0 = time.perf_counter()
            fill(station, "WO-EXPORT", devices)
            station.batches().seal("WO-EXPORT", operator="boss")
            marker.write_text(json.dumps({"devices": devices}))
            print(
                f"recorded and sealed {devices} devices in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
        service = station.batches()
        floor_s = sign_s = 0.0
        if floors:
            _rss_reset()
            t0 = time.perf_counter()
            rows = station.store().devices.iter_batch("WO-EXPORT", "provisioned")
            count = sum(1 for device in rows if device.manifest())
            floor_s = time.perf_counter() - t0
            print(f"floor: stream + parse {count} manifests  {floor_s:8.1f} s", flush=True)
            t0 = time.perf_counter()
            for _ in range(min(devices, 20_000)):
                key.sign(b"x" * 1200, ec.ECDSA(hashes.SHA256()))
            sign_s = (time.perf_counter() - t0) / min(devices, 20_000) * devices
            print(
                f"floor: {devices} ES256 signatures in SoftHSM2  {sign_s:8.1f} s (extrapolated)",
                flush=True,
            )
        for fmt in formats:
            _rss_reset()
            base_mb = _rss_now_mb()
            t0, c0 = time.perf_counter(), time.process_time()
            # "bulk-json+csv": one export writing both files from one read of the rows
            together = tuple(fmt.split("+"))
            result = service.export(
                "WO-EXPORT", formats=together, out=root / "out", force=True, operator="boss"
            )
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            size = sum(result.files[name].stat().st_size for name in together) / 1e6
            floor = floor_s + (sign_s if "manifest" in together else 0)
            ratio = f"x{elapsed / floor:.2f} of floor" if floor else ""
            print(
                f"{fmt:<10} {elapsed:8.1f} s ({cpu:.1f} s CPU)  {devices / elapsed:9.0f} devices/s"
                f"  file {size:8.1f} MB  peak RSS +{_rss_peak_mb() - base_mb:6.1f} MB  {ratio}",
                flush=True,
            )
        if verify:
            t0, c0, w0 = time.perf_counter(), time.process_time(), _children_cpu()
            report = station.database().verify()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(
                f"db verify  {elapsed:8.1f} s ({cpu:.1f} s CPU in this process, "
                f"{_children_cpu() - w0:.1f} s in the second)  "
                f"{report.events} events, {report.devices} devices, ok={report.ok}",
                flush=True,
            )
    finally:
        station.close()
        key.close()


if __name__ == "__main__":
    main()
