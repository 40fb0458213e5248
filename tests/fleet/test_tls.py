"""The station reaches the ledger over TLS with the server verified (docs/admin-guide.md)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from station.domain.fleet import FleetUnavailableError
from station_lab.ledger import PG_USER, running_ledger


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def test_replication_over_verified_tls(tmp_path: Path, fleet_of, make_manifest) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Ledger Test CA", ca_key, "Ledger Test CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("localhost", server_key, "Ledger Test CA", ca_key, ca=False)
    (tmp_path / "ledger-ca.pem").write_bytes(_pem(ca))
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("Other CA", other_key, "Other CA", other_key, ca=True)
    (tmp_path / "other-ca.pem").write_bytes(_pem(other))

    with running_ledger() as cluster:
        tls = cluster.root / "tls"
        tls.mkdir()
        (tls / "server.crt").write_bytes(_pem(server))
        (tls / "server.key").write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        for path in (tls, tls / "server.crt", tls / "server.key"):
            if os.geteuid() == 0:
                shutil.chown(path, user=PG_USER, group=PG_USER)
        (tls / "server.key").chmod(0o600)
        cluster.extra_options = (
            f"-c ssl=on -c ssl_cert_file={tls / 'server.crt'} -c ssl_key_file={tls / 'server.key'}"
        )
        cluster.restart()
        dbname = cluster.new_database()
        base = f"host=localhost port={cluster.port} user=ledger dbname={dbname}"
        good = f"{base} sslmode=verify-full sslrootcert={tmp_path / 'ledger-ca.pem'}"
        wrong = f"{base} sslmode=verify-full sslrootcert={tmp_path / 'other-ca.pem'}"

        a = fleet_of("line-a", conninfo=good)
        a.station.fleet().install()
        a.record(make_manifest, "SN0001")
        assert a.station.fleet_replicator().sync().error == ""
        (summary,) = a.station.fleet().stations()
        assert summary.acked_seq > 0

        impostor = fleet_of("line-b", conninfo=wrong)
        with pytest.raises(FleetUnavailableError, match="certificate verify failed"):
            impostor.station.fleet_ledger().acked("line-b")
