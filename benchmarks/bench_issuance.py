"""Issuance rate: device certificates signed by a SoftHSM2-held CA key vs an in-memory key.

Run: .venv/bin/python benchmarks/bench_issuance.py [N]

Three measurements in one run, same CSR, same plan, same builder:

* floor: build + sign with an in-memory cryptography P-256 key (what a PEM-on-disk CA does);
* hsm: build + sign with the CA key inside a SoftHSM2 token through hsm.open_signer;
* use case: CaService.issue end to end (CSR parse + policy + sign in SoftHSM2 + issuance log and
  audit event committed to a real SQLite store, one transaction per certificate).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import hsm
from hsm.softhsm import activate, create_token
from station.adapters.ca.admin import FileCaAdministration
from station.adapters.ca.builder import build_and_sign
from station.adapters.ca.profiles import default_profile_dir, load_profiles
from station.adapters.store.unit_of_work import SqliteUnitOfWork
from station.bootstrap import SystemClock
from station.domain.certificates import plan_issuance, serial_from_random
from station.domain.records import OperatorRecord, Role
from station.services.ca import CaService

ROUNDS = 5


def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev-bench")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def _batch(n: int, fn) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n


def _report(label: str, per: float) -> None:
    print(f"{label:<52} {per * 1e3:8.3f} ms/cert {1 / per:10.0f} certs/s")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    work = Path(tempfile.mkdtemp(prefix="bench-issuance-"))
    try:
        token = create_token(work / "softhsm", "bench", pin="1234")
        activate(token.conf)
        pins = hsm.PinSource(env={"STATION_PKCS11_PIN": token.pin})
        admin = FileCaAdministration(work / "ca", configured_uri="", pin_source=pins)
        store = SqliteUnitOfWork.open(
            work / "station.db", busy_timeout_ms=5000, backup_dir=work / "bk", clock=SystemClock()
        )
        store.operators.save(
            OperatorRecord(name="bench", role=Role.ADMIN, enabled=True, created_at="2026")
        )
        service = CaService(
            store=store,
            admin=admin,
            authority=admin.open_authority,
            profiles=load_profiles(default_profile_dir()),
            clock=SystemClock(),
            station_id="bench",
        )
        service.init(token.uri("station-ca"), common_name="Bench CA", operator="bench")
        service.lab_root(operator="bench")
        ica = x509.load_pem_x509_certificate(admin.chain_file.read_bytes())
        profile = load_profiles(default_profile_dir())["device-identity"]
        csr = _csr()
        device_key = x509.load_pem_x509_csr(csr).public_key()
        now = datetime.now(UTC)
        plans = [
            plan_issuance(
                profile,
                "dev-bench",
                serial=serial_from_random(bytes([0x40 + i % 64]) + i.to_bytes(15, "big")),
                now=now,
                ca_not_after=now + timedelta(days=3650),
            )
            for i in range(n)
        ]
        memory_key = ec.generate_private_key(ec.SECP256R1())
        hsm_key = hsm.open_signer(token.uri("station-ca"), pin_source=pins)
        print(
            f"issuance benchmark: {ROUNDS} interleaved rounds of N={n} (use case N={n // 5}), "
            "medians; P-256 CA key, P-256 device keys"
        )
        for fn in (
            lambda i: build_and_sign(plans[i], device_key, issuer=ica, signer=memory_key),
            lambda i: build_and_sign(plans[i], device_key, issuer=ica, signer=hsm_key),
            lambda i: service.issue(csr, "dev-bench", operator="bench"),
        ):
            fn(0)  # warm-up
        floor, token, use_case = [], [], []
        # interleaved so that load from other processes hits every variant alike
        for _ in range(ROUNDS):
            floor.append(
                _batch(
                    n, lambda i: build_and_sign(plans[i], device_key, issuer=ica, signer=memory_key)
                )
            )
            token.append(
                _batch(
                    n, lambda i: build_and_sign(plans[i], device_key, issuer=ica, signer=hsm_key)
                )
            )
            use_case.append(
                _batch(n // 5, lambda i: service.issue(csr, "dev-bench", operator="bench"))
            )
        hsm_key.close()
        service.close()
        store.close()
        _report("floor: build+sign, in-memory key", statistics.median(floor))
        _report("hsm: build+sign, SoftHSM2 key (hsm.open_signer)", statistics.median(token))
        _report("use case: CaService.issue (parse+policy+sign+log)", statistics.median(use_case))
        ratios = [t / f for t, f in zip(token, floor, strict=True)]
        print(
            f"ratio hsm / floor (median of per-round ratios):      {statistics.median(ratios):5.2f}x"
        )
        ratios = [u / f for u, f in zip(use_case, floor, strict=True)]
        print(
            f"ratio use case / floor (median of per-round ratios): {statistics.median(ratios):5.2f}x"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
