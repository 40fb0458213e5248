"""The device registration API tests' plain helpers: linked hubs, a small X.509 PKI, the
allocation webhook's record, one raw HTTPS call to the stand-in.

The fixtures (the stand-in's options, the service client, ``pki``, ``make_tpm``, ``webhook``)
are in ``tests/dps_register/conftest.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from station_lab.dps import LinkedHub, LocalDps

HUBS = (
    LinkedHub("hub-a.azure-devices.net", latency_ms=40),
    LinkedHub("hub-b.azure-devices.net", latency_ms=12),
    LinkedHub("hub-c.azure-devices.net", latency_ms=90),
)


# --------------------------------------------------------------------------- X.509
@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass
class Pki:
    """A root, an intermediate (the station's ICA) and device certificates under it."""

    directory: Path
    root: Issued = field(init=False)
    ica: Issued = field(init=False)

    def __post_init__(self) -> None:
        self.root = issue("Lab Root CA", ca=True)
        self.ica = issue("Station ICA", issuer=self.root, ca=True)

    def device(
        self, registration_id: str, *, issuer: Issued | None = None, cn: str | None = None
    ) -> Issued:
        return issue(cn or registration_id, issuer=issuer or self.ica)

    def files(self, leaf: Issued, *chain: Issued, tamper: bool = False) -> tuple[Path, Path]:
        """Write leaf + chain PEM and the key; ``tamper`` flips a byte in the leaf's signature."""
        der = leaf.cert.public_bytes(serialization.Encoding.DER)
        if tamper:
            der = der[:-8] + bytes([der[-8] ^ 0x01]) + der[-7:]
        pem = _pem(der) + "".join(c.pem for c in chain)
        name = f"{leaf.cert.serial_number:x}"
        cert_file = self.directory / f"{name}.chain.pem"
        key_file = self.directory / f"{name}.key.pem"
        cert_file.write_text(pem)
        key_file.write_bytes(
            leaf.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file


def _pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def issue(cn: str, *, issuer: Issued | None = None, ca: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(cert, key)


# --------------------------------------------------------------------------- webhook
@dataclass
class Webhook:
    """A custom allocation webhook on 127.0.0.1 that records requests and answers via ``decide``."""

    decide: Callable[[dict[str, Any]], tuple[int, Any]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


# --------------------------------------------------------------------------- raw HTTP
@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    dps: LocalDps,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    cert: tuple[Path, Path] | None = None,
    api_version: str = "2021-10-01",
) -> Answer:
    """One HTTPS request to the stand-in, trusting its CA (and presenting ``cert`` if given)."""
    import http.client
    import ssl

    tls = ssl.create_default_context(cafile=str(dps.ca_bundle))
    if cert is not None:
        tls.load_cert_chain(*cert)
    host, port = dps.address
    connection = http.client.HTTPSConnection(host, port, context=tls, timeout=30)
    try:
        sent = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        connection.request(method, f"{path}?api-version={api_version}", body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        lowered = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, lowered, json.loads(raw) if raw else None)
    finally:
        connection.close()
