"""Who may sign a batch manifest: only the station's certified manifest key (issue #20, item 1)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from station.cli.main import main
from station.domain.certificates import MANIFEST_SIGNING_OID
from station.domain.errors import ProfileError
from station.domain.manifest_signing import (
    CompactJws,
    TrustedSigner,
    compact,
    signing_input,
    verify_manifest,
)


@pytest.fixture
def manifest_file(cloud, fill_batch, tmp_path) -> Path:
    fill_batch(cloud, "WO-S", 3)
    cloud.batches().seal("WO-S", operator="boss")
    return cloud.batches().export("WO-S", formats=("manifest",), operator="boss").files["manifest"]


def _device_certificate(pki) -> tuple[ec.EllipticCurvePrivateKey, list[bytes]]:
    """A device key and its certificate from the same station CA, as `ca issue` gives it."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forger-01")]))
        .sign(key, hashes.SHA256())
    )
    issued = pki.ca_station.ca().issue_as_admin(
        csr.public_bytes(serialization.Encoding.PEM), "forger-01", operator="boss"
    )
    chain = x509.load_pem_x509_certificates((issued.certificate.pem + issued.chain_pem).encode())
    return key, [cert.public_bytes(serialization.Encoding.DER) for cert in chain]


def _re_sign(data: bytes, key: ec.EllipticCurvePrivateKey, chain: list[bytes]) -> bytes:
    """Every JWS of a manifest signed again with ``key``, the header carrying ``chain``."""
    lines = data.decode().split("\n")[:-1]
    out = [lines[0]]
    for index, line in enumerate(lines[1:]):
        jws = CompactJws.parse(line)
        protected = dict(jws.protected)
        if index == 0:
            protected["x5c"] = [base64.b64encode(der).decode() for der in chain]
        to_sign = signing_input(protected, jws.payload)
        r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
        out.append(compact(to_sign, r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    return ("\n".join(out) + "\n").encode()


def test_a_manifest_forged_with_a_device_certificate_is_refused(
    manifest_file, pki, tmp_path, capsys
) -> None:
    key, chain = _device_certificate(pki)
    forged = tmp_path / "forged.jwsl"
    forged.write_bytes(_re_sign(manifest_file.read_bytes(), key, chain))
    code = main(["manifest", "verify", str(forged), "--trust", str(pki.root_file)])
    err = capsys.readouterr().err
    assert code == 1
    assert "signed by a device certificate, not a manifest key" in err


def test_the_real_manifest_verifies_and_a_pin_selects_the_signer(
    manifest_file, pki, capsys
) -> None:
    root = str(pki.root_file)
    leaf = x509.load_pem_x509_certificates(pki.chain_file.read_bytes())[0]
    fingerprint = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == (
        x509.ExtendedKeyUsage([x509.ObjectIdentifier(MANIFEST_SIGNING_OID)])
    )
    args = ["manifest", "verify", str(manifest_file), "--trust", root]
    assert main([*args, "--signer", str(pki.chain_file)]) == 0
    assert main([*args, "--signer-sha256", fingerprint]) == 0
    capsys.readouterr()
    assert main([*args, "--signer-sha256", "AB" * 32]) == 1
    assert "not the pinned manifest key" in capsys.readouterr().err


def test_ca_manifest_key_cli_certifies_and_audits(pki, tmp_path, capsys) -> None:
    config = tmp_path / "ca-station.toml"
    assert main(["--config", str(config), "--operator", "boss", "ca", "manifest-key"]) == 0
    assert "CN=test-station" in capsys.readouterr().out
    store = pki.ca_station.store()
    issued = [c for c in store.certificates.iter_all() if c.profile == "manifest-signing"]
    assert len(issued) == 2  # the fixture's and this one, both in the issuance log
    audited = [
        e.payload["profile"] for e in store.audit.events() if e.kind == "ca.certificate_issued"
    ]
    assert audited.count("manifest-signing") == 2
    assert main(["--config", str(config), "--operator", "boss", "db", "verify"]) == 0


def test_the_line_never_issues_a_manifest_signing_certificate(pki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dev-77")]))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(ProfileError, match="manifest key, never a device"):
        pki.ca_station.ca().issue_as_admin(
            csr.public_bytes(serialization.Encoding.PEM),
            "dev-77",
            profile="manifest-signing",
            operator="boss",
        )


def test_the_header_station_must_be_the_certificate_station(manifest_file) -> None:
    data = manifest_file.read_bytes()

    def other_station(chain: object) -> TrustedSigner:
        return TrustedSigner(check=lambda _i, _s: True, station="line-9", fingerprint="00")

    report = verify_manifest(data, other_station)
    assert [f.kind for f in report.findings] == ["header"]
    assert "belongs to station 'line-9'" in report.findings[0].message


def test_the_signed_manifest_anchors_the_chain(manifest_file, cloud, cloud_config_file) -> None:
    from station.domain.anchors import parse_anchor

    anchor = parse_anchor(manifest_file.read_bytes())
    event = cloud.store().audit.event(anchor.seq)
    assert event is not None and event.hash == anchor.hash and anchor.station == "test-station"
    cloud.close()
    args = ["--config", str(cloud_config_file), "db", "verify", "--anchor", str(manifest_file)]
    assert main(args) == 0
