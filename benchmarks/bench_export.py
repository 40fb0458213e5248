"""Export time and memory for a big batch: DPS bulk JSON, CSV and the signed manifest (SoftHSM2).

Run: .venv/bin/python benchmarks/bench_export.py [DEVICES]   (default 1,000,000, the DPS ceiling)

In one run: the batch is recorded through ``record_identity`` and sealed, then each export format
is written on its own. For each it prints the time, the rate, the peak resident memory growth
during that export (``VmHWM`` after resetting it through ``/proc/self/clear_refs``) and the ratio
against the floor measured in the same run: streaming every device row out of the store and
parsing its manifest (what any export must do). For the manifest, the floor also includes one
ES256 signature per record with the same SoftHSM2 key (what any signed manifest must do).
"""

from __future__ import annotations

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


def main(devices: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        token = create_token(root / "softhsm", "bench", pin="1234")
        activate(token.conf)
        pins = hsm.PinSource(env={"STATION_PKCS11_PIN": "1234"})
        uri = "pkcs11:token=bench;object=manifest"
        key = hsm.generate_key(uri, "ec-p256", pin_source=pins)
        chain = _chain(root, key.public_key())  # type: ignore[arg-type]
        import os

        os.environ["STATION_PKCS11_PIN"] = "1234"
        station = station_in(root, f'manifest_key_uri = "{uri}"\nmanifest_chain_file = "{chain}"\n')
        try:
            t0 = time.perf_counter()
            fill(station, "WO-EXPORT", devices)
            station.batches().seal("WO-EXPORT", operator="boss")
            print(
                f"recorded and sealed {devices} devices in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            service = station.batches()
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
            for fmt in ("bulk-json", "csv", "manifest"):
                _rss_reset()
                base_mb = _rss_now_mb()
                t0 = time.perf_counter()
                result = service.export(
                    "WO-EXPORT", formats=(fmt,), out=root / "out", operator="boss"
                )
                elapsed = time.perf_counter() - t0
                size = result.files[fmt].stat().st_size / 1e6
                floor = floor_s + (sign_s if fmt == "manifest" else 0)
                print(
                    f"{fmt:<10} {elapsed:8.1f} s  {devices / elapsed:9.0f} devices/s  "
                    f"file {size:8.1f} MB  peak RSS +{_rss_peak_mb() - base_mb:6.1f} MB  "
                    f"x{elapsed / floor:.2f} of floor",
                    flush=True,
                )
        finally:
            station.close()
            key.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
