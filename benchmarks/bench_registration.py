"""Device registrations per second through the lab DPS, per attestation, against a floor.

Run: .venv/bin/python benchmarks/bench_registration.py [N] [N_TPM]

Each registration is what a board does at first boot: open a new HTTPS connection, PUT register,
poll the operation until assigned (Retry-After is 0 here). The floor for each attestation is the
work no stand-in can avoid, measured in the same run on the same server:

* symmetric key: the same transport (new TLS connection + 2 requests answered 404 without any
  attestation or allocation work);
* X.509: the same, with the client certificate chain in a mutual-TLS handshake;
* TPM (one swtpm per device): the transport of 3 requests (challenge, register, poll) plus the cryptography itself, timed
  alone: DPS building the challenge (``make_challenge``) and the device TPM activating, importing,
  loading, persisting the key and signing (``import_authentication_key`` + ``hmac_sha256``).

The ratio registration / floor is the stand-in's (and device client's) overhead. DPS's documented
ceiling is 1,000 registrations per minute per service (16.7/s); the stand-in should exceed it.
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.iot.deviceprovisioning import DeviceProvisioningClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from station.domain.errors import DeviceRegistrationError
from station.domain.registration import tpm_registration_id
from station_lab.dps import DpsOptions, LocalDps
from station_lab.dps.tpm_challenge import make_challenge
from station_lab.firstboot import (
    DeviceRegistrationClient,
    DeviceTpm,
    DpsEndpoint,
    SymmetricKeyCredential,
    TpmCredential,
    X509Credential,
)
from station_lab.swtpm import SocketSwtpm

DPS_CEILING_PER_S = 1000 / 60


def _timed(count: int, action: Callable[[int], object]) -> float:
    """Mean seconds per call of ``action(i)`` over ``count`` calls."""
    started = time.perf_counter()
    for i in range(count):
        action(i)
    return (time.perf_counter() - started) / count


def _paired(
    count: int, action: Callable[[int], object], floor: Callable[[int], object]
) -> tuple[float, float]:
    """Mean seconds per call of ``action(i)`` and of ``floor(i)``, interleaved so that both see
    the same load on a shared machine."""
    spent = [0.0, 0.0]
    for i in range(count):
        for slot, step in enumerate((action, floor)):
            started = time.perf_counter()
            step(i)
            spent[slot] += time.perf_counter() - started
    return spent[0] / count, spent[1] / count


def _transport(dps: LocalDps, requests: int, cert: tuple[Path, Path] | None = None) -> None:
    """A new TLS connection and ``requests`` bare requests the server refuses at routing."""
    tls = ssl.create_default_context(cafile=str(dps.ca_bundle))
    if cert is not None:
        tls.load_cert_chain(*cert)
    host, port = dps.address
    connection = http.client.HTTPSConnection(host, port, context=tls, timeout=30)
    for _ in range(requests):
        connection.request("GET", "/floor?api-version=2021-10-01")
        connection.getresponse().read()
    connection.close()


def _pki(directory: Path) -> tuple[str, Callable[[str], tuple[Path, Path]]]:
    now = datetime.now(UTC)

    def build(cn: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench ICA")])
    ca = build("Bench ICA", ca_key, ca_name, ca_key, True)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)

    def device(reg_id: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = build(reg_id, key, ca_name, ca_key, False)
        chain = directory / f"{reg_id}.pem"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
        key_file = directory / f"{reg_id}.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return chain, key_file

    return ca_pem.decode("ascii"), device


def _start_swtpm() -> tuple[SocketSwtpm, DeviceTpm]:
    swtpm = SocketSwtpm().start()
    deadline = time.monotonic() + 30
    while True:
        try:
            return swtpm, DeviceTpm.open("swtpm", swtpm.tcti_conf)
        except DeviceRegistrationError:
            if time.monotonic() > deadline:
                swtpm.stop()
                raise
            time.sleep(0.005)  # the socket exists before swtpm accepts on it


def main(count: int, tpm_count: int) -> None:
    os.environ.setdefault("TSS2_LOG", "all+none")
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        options = DpsOptions(state_dir=Path(tmp) / "dps", rate_limit=0, retry_after_s=0)
        with LocalDps(options) as dps:
            service = DeviceProvisioningClient.from_connection_string(
                dps.connection_string(), connection_verify=str(dps.ca_bundle)
            )
            device = DeviceRegistrationClient(
                DpsEndpoint(dps.host_name, dps.id_scope, dps.ca_bundle), sleep=lambda s: None
            )

            # symmetric key (group-derived keys)
            group_key = base64.b64encode(os.urandom(32)).decode("ascii")
            service.enrollment_group.create_or_update(
                id="bench-sym",
                enrollment_group={
                    "enrollmentGroupId": "bench-sym",
                    "attestation": {
                        "type": "symmetricKey",
                        "symmetricKey": {"primaryKey": group_key},
                    },
                },
            )
            sym_creds = [
                SymmetricKeyCredential.from_group_key(f"sym-{i:05d}", group_key)
                for i in range(count)
            ]
            sym_s, sym_floor = _paired(
                count, lambda i: device.register(sym_creds[i]), lambda i: _transport(dps, 2)
            )
            rows.append(("symmetric key", sym_s, sym_floor))

            # X.509 (group on the intermediate, leaf + ICA presented in mutual TLS)
            ca_pem, make_device = _pki(Path(tmp))
            service.enrollment_group.create_or_update(
                id="bench-x509",
                enrollment_group={
                    "enrollmentGroupId": "bench-x509",
                    "attestation": {
                        "type": "x509",
                        "x509": {"signingCertificates": {"primary": {"certificate": ca_pem}}},
                    },
                },
            )
            files = [make_device(f"x509-{i:05d}") for i in range(count)]
            x509_creds = [X509Credential(f"x509-{i:05d}", *files[i]) for i in range(count)]
            x509_s, x509_floor = _paired(
                count,
                lambda i: device.register(x509_creds[i]),
                lambda i: _transport(dps, 2, files[i]),
            )
            rows.append(("X.509", x509_s, x509_floor))

            # TPM: one real swtpm per device (DPS limits polls per device, so each registers once)
            tpms = [_start_swtpm() for _ in range(tpm_count)]
            try:
                keys = []
                for _, tpm in tpms:
                    ek, srk = tpm.endorsement_key(), tpm.storage_root_key()
                    keys.append((ek, srk))
                    service.enrollment.create_or_update(
                        id=tpm_registration_id(ek),
                        enrollment={
                            "registrationId": tpm_registration_id(ek),
                            "attestation": {
                                "type": "tpm",
                                "tpm": {"endorsementKey": base64.b64encode(ek).decode()},
                            },
                        },
                    )
                tpm_creds = [TpmCredential(tpm) for _, tpm in tpms]
                tpm_s, transport_s = _paired(
                    tpm_count, lambda i: device.register(tpm_creds[i]), lambda i: _transport(dps, 3)
                )
                challenge_s = _timed(tpm_count, lambda i: make_challenge(*keys[i]))
                blobs = [
                    base64.b64decode(make_challenge(*keys[i]).authentication_key)
                    for i in range(tpm_count)
                ]

                def device_crypto(i: int) -> None:
                    tpm = tpms[i][1]
                    tpm.import_authentication_key(blobs[i])
                    tpm.hmac_sha256(b"0ne00000001%2Fregistrations%2Fx\n1700000000")

                device_s = _timed(tpm_count, device_crypto)
                rows.append(("TPM (swtpm)", tpm_s, challenge_s + device_s + transport_s))
            finally:
                for swtpm, tpm in tpms:
                    tpm.close()
                    swtpm.stop()
            service.close()

    print(
        f"{'attestation':<15}{'reg/s':>9}{'ms/reg':>9}{'floor ms':>10}{'ratio':>8}{'x ceiling':>11}"
    )
    for name, per_reg, floor in rows:
        print(
            f"{name:<15}{1 / per_reg:>9.1f}{per_reg * 1000:>9.2f}{floor * 1000:>10.2f}"
            f"{per_reg / floor:>8.2f}{(1 / per_reg) / DPS_CEILING_PER_S:>11.1f}"
        )
    print(f"(N={count}, N_TPM={tpm_count}; ceiling = DPS's 1,000 registrations/min/service)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 300, args[1] if len(args) > 1 else 30)
