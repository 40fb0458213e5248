"""EK-certificate verification benchmark: the station's tolerant check per certificate.

Run: .venv/bin/python benchmarks/bench_ek_verify.py [--rounds N]

For each certificate (the shared vendor EK certificates and one of each vendor deviation made
by tests/support/deviant_certs.py), in the same run:
* station: ``X509EkCertificateVerifier.check`` (find the certificate in the NV bytes, normalise
  to DER naming each deviation, parse, find the anchor, verify the signature over the original
  tbsCertificate bytes, check validity);
* floor: what any verifier does, with cryptography alone on the DER form: parse the
  certificate and verify its signature with the issuer's key
  (``Certificate.verify_directly_issued_by``).
The ratio says what tolerance (normalising, naming, the anchor search) costs on top.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from station.adapters.tpm.ek_certs import X509EkCertificateVerifier, load_certificate  # noqa: E402
from tests.support.deviant_certs import NOW, build  # noqa: E402

SHARED = REPO.parent / "shared" / "testdata"
VENDOR_CASES = {
    "STMicro RSA (DER)": "ek-certs/keylime/st_sha256_with_rsa_ek__STM_EK_Int05__trimmed.der",
    "STMicro RSA, 0xFF NV padding": (
        "ek-certs/keylime/st_sha256_with_rsa_ek__STM_EK_Int05__trailing_0xFF_padding.der"
    ),
    "STMicro ECC (DER)": "ek-certs/keylime/st_ecdsa_sha256_ek__STM_ECC_Int01.der",
    "Nuvoton RSA, unsorted SET": "ek-certs/keylime/nuvoton_rsa_ek__NuvotonRootCA2111__malformed.der",
}
OWN_CASES = (
    "plain",
    "intel-explicit-default",
    "tcg-header",
    "rsaes-oaep",
    "issuer-non-minimal-int",
)


def median_ms(action: Callable[[], object], rounds: int) -> float:
    """Median wall time of ``action`` in milliseconds (after one warm-up call)."""
    action()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    work = Path(tempfile.mkdtemp(prefix="bench-ek-"))
    made = build(work)
    verifier = X509EkCertificateVerifier.from_paths([SHARED / "tpm-vendor-roots", made.anchors])
    print(f"{len(verifier.anchors.anchors)} anchors, {rounds} rounds, median per certificate")
    print(f"{'certificate':36} {'station':>9} {'floor':>9} {'ratio':>6}  verdict")
    cases = [(name, (SHARED / path).read_bytes()) for name, path in VENDOR_CASES.items()]
    cases += [(f"own: {name}", made.certs[name].read_bytes()) for name in OWN_CASES]
    for name, data in cases:
        check = verifier.check(data, ek=None, now=NOW)
        station = median_ms(lambda data=data: verifier.check(data, ek=None, now=NOW), rounds)
        loaded = load_certificate(data)
        issuer = next(a for a in verifier.anchors.anchors if a.cert.subject == loaded.cert.issuer)
        der = loaded.cert.public_bytes(serialization.Encoding.DER)

        def floor(der: bytes = der, issuer: x509.Certificate = issuer.cert) -> None:
            # A deviant's DER form no longer matches its signature: the same work is done.
            with contextlib.suppress(ValueError, TypeError, InvalidSignature):
                x509.load_der_x509_certificate(der).verify_directly_issued_by(issuer)

        floor_ms = median_ms(floor, rounds)
        note = check.status.value
        if check.normalised:
            note += f", {len(check.normalised)} deviation(s) normalised"
        print(f"{name:36} {station:7.3f}ms {floor_ms:7.3f}ms {station / floor_ms:5.2f}x  {note}")


if __name__ == "__main__":
    main()
