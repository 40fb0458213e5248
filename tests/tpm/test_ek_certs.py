"""EK certificate checks with real vendor roots and EK certificates, and made-up edge cases."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from station.adapters.tpm.cert_normalise import extract_certificate
from station.adapters.tpm.der import DerError, canonical, read_tlv
from station.adapters.tpm.ek_certs import (
    MalformedCertificate,
    TrustAnchors,
    X509EkCertificateVerifier,
    cached_anchors,
    load_certificate,
)
from station.domain.products import EkCertificateResult
from station.domain.registration import tpm_registration_id
from tests.support.paths import EK_CERTS, SHARED_TESTDATA, VENDOR_ROOTS

NOW = datetime(2026, 11, 26, tzinfo=UTC)
SAMPLE_EK = (
    SHARED_TESTDATA
    / "tpm-ek-samples"
    / ("azure-sdk-python_deviceprovisioning_TEST_ENDORSEMENT_KEY.tpm2b_public.bin")
)


@pytest.fixture(scope="module")
def vendor_verifier() -> X509EkCertificateVerifier:
    return X509EkCertificateVerifier.from_paths([VENDOR_ROOTS])


def test_every_shared_vendor_root_loads_including_non_der_ones() -> None:
    anchors = TrustAnchors([VENDOR_ROOTS])
    assert anchors.skipped == []
    files = list(VENDOR_ROOTS.rglob("*.pem"))
    assert len(anchors.anchors) == len(files) == 52
    subjects = {a.cert.subject.rfc4514_string() for a in anchors.anchors}
    # Nuvoton roots have an unsorted multi-valued RDN; HIRS's STM intermediate a non-DER serial.
    assert any("Nuvoton TPM Root CA 2111" in s for s in subjects)
    assert any("STM TPM EK Intermediate CA 02" in s for s in subjects)


@pytest.mark.parametrize(
    ("name", "status", "vendor"),
    [
        ("keylime/st_sha256_with_rsa_ek__STM_EK_Int05__trimmed.der", "valid", "STMicroelectronics"),
        (
            "keylime/st_sha256_with_rsa_ek__STM_EK_Int05__trailing_0xFF_padding.der",
            "valid",
            "STMicroelectronics",
        ),
        ("keylime/st_ecdsa_sha256_ek__STM_ECC_Int01.der", "valid", "STMicroelectronics"),
        ("keylime/nuvoton_rsa_ek__NuvotonRootCA2111__malformed.der", "valid", "Nuvoton"),
        ("keylime/swtpm_ek__swtpm-localca__fedora33.der", "untrusted", "IBM (software TPM)"),
        ("tcg-spec-examples/tcg-example-user-device.der", "untrusted", "54434700"),
    ],
)
def test_shared_ek_certificates_against_vendor_roots(
    vendor_verifier: X509EkCertificateVerifier, name: str, status: str, vendor: str
) -> None:
    check = vendor_verifier.check((EK_CERTS / name).read_bytes(), ek=None, now=NOW)
    assert check.status.value == status
    assert check.vendor == vendor
    if status == "valid":
        assert check.anchor and check.reason == ""
    else:
        assert check.reason


def test_nv_padding_is_trimmed_before_anything_else(
    vendor_verifier: X509EkCertificateVerifier,
) -> None:
    padded = EK_CERTS / "keylime/st_sha256_with_rsa_ek__STM_EK_Int05__trailing_0xFF_padding.der"
    trimmed = EK_CERTS / "keylime/st_sha256_with_rsa_ek__STM_EK_Int05__trimmed.der"
    check = vendor_verifier.check(padded.read_bytes(), ek=None, now=NOW)
    assert check.der == trimmed.read_bytes()


def test_same_name_but_wrong_signer_is_untrusted(tmp_path: Path) -> None:
    # An anchor with the right subject but another key must not vouch for the certificate.
    real = load_certificate(
        (EK_CERTS / "keylime/st_ecdsa_sha256_ek__STM_ECC_Int01.der").read_bytes()
    )
    key = ec.generate_private_key(ec.SECP256R1())
    impostor = _self_signed(real.cert.issuer, key, NOW - timedelta(days=1), NOW + timedelta(days=9))
    (tmp_path / "impostor.pem").write_bytes(impostor.public_bytes(serialization.Encoding.PEM))
    check = X509EkCertificateVerifier.from_paths([tmp_path]).check(real.original, ek=None, now=NOW)
    assert check.status is EkCertificateResult.UNTRUSTED
    assert "signature does not verify" in check.reason


def test_certificate_for_another_key_is_a_mismatch(
    vendor_verifier: X509EkCertificateVerifier,
) -> None:
    cert = (EK_CERTS / "keylime/swtpm_ek__swtpm-localca__fedora33.der").read_bytes()
    check = vendor_verifier.check(cert, ek=SAMPLE_EK.read_bytes(), now=NOW)
    assert check.status is EkCertificateResult.MISMATCH
    assert "not the TPM's endorsement key" in check.reason


def test_certificate_matching_the_ek_passes_the_key_check(tmp_path: Path) -> None:
    # The Azure SDK sample EK (a real TPM2B_PUBLIC) certified by a CA made here.
    from station.adapters.tpm.ek_certs import ek_spki

    ek = SAMPLE_EK.read_bytes()
    spki = serialization.load_der_public_key(ek_spki(ek))
    # The registration ID DPS computed for this sample (shared/testdata/SOURCES.md).
    assert tpm_registration_id(ek) == "t6t2cg5vnzscr7ty546hj7c7maamkggectqcxkccq637z5bvlnoa"
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TPM CA")])
    ca = _self_signed(ca_name, ca_key, NOW - timedelta(days=1), NOW + timedelta(days=30))
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaf = _issue(ca_name, ca_key, spki, NOW - timedelta(days=1), NOW + timedelta(days=20))
    verifier = X509EkCertificateVerifier.from_paths([tmp_path])
    valid = verifier.check(leaf.public_bytes(serialization.Encoding.DER), ek=ek, now=NOW)
    assert valid.status is EkCertificateResult.VALID and valid.anchor == "CN=Test TPM CA"
    expired = verifier.check(
        leaf.public_bytes(serialization.Encoding.DER), ek=ek, now=NOW + timedelta(days=21)
    )
    assert expired.status is EkCertificateResult.EXPIRED and "expired on" in expired.reason
    early = verifier.check(
        leaf.public_bytes(serialization.Encoding.PEM), ek=ek, now=NOW - timedelta(days=2)
    )
    assert early.status is EkCertificateResult.EXPIRED and "not valid before" in early.reason


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\x82\x01\x00garbage",  # announces more than it holds
        b"not a certificate at all",
        b"\x30\x03\x02\x01\x01",  # a SEQUENCE, but not a certificate
        b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    ],
)
def test_malformed_certificates(vendor_verifier: X509EkCertificateVerifier, data: bytes) -> None:
    check = vendor_verifier.check(data, ek=None, now=NOW)
    assert check.status is EkCertificateResult.MALFORMED and check.reason


@pytest.mark.parametrize("data", [None, b"", b"\xff" * 64])
def test_absent_certificates(
    vendor_verifier: X509EkCertificateVerifier, data: bytes | None
) -> None:
    check = vendor_verifier.check(data, ek=None, now=NOW, nv_index=0x01C00002)
    assert check.status is EkCertificateResult.ABSENT and check.nv_index == 0x01C00002


def test_lab_key_files_next_to_anchors_are_never_loaded_as_anchors(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "signkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    anchors = TrustAnchors([tmp_path])
    assert anchors.anchors == [] and anchors.skipped == []


def test_cached_anchors_are_reused_until_a_file_under_them_changes(tmp_path: Path) -> None:
    roots = sorted(VENDOR_ROOTS.rglob("*.pem"))[:2]
    folder = tmp_path / "trust"
    folder.mkdir()
    first_file = folder / "a.pem"
    first_file.write_bytes(roots[0].read_bytes())
    assert cached_anchors([folder]) is not cached_anchors([folder])  # just written: read again
    old = datetime.now(UTC).timestamp() - 60
    os.utime(first_file, (old, old))
    first = cached_anchors([folder])
    assert cached_anchors([folder]) is first and len(first.anchors) == 1
    (folder / "b.pem").write_bytes(roots[1].read_bytes())  # an import adds a file
    assert len(cached_anchors([folder]).anchors) == 2
    (folder / "b.pem").unlink()
    first_file.unlink()
    assert cached_anchors([folder]).anchors == []


def test_der_helpers() -> None:
    # SET members out of order are sorted; non-minimal INTEGERs shortened; padding dropped.
    unsorted_set = bytes.fromhex("3106020105020103")
    assert canonical(unsorted_set) == bytes.fromhex("3106020103020105")
    assert canonical(bytes.fromhex("020400000005")) == bytes.fromhex("020105")
    assert canonical(bytes.fromhex("020300ff01")) == bytes.fromhex("020300ff01")
    assert extract_certificate(bytes.fromhex("3003020101") + b"\xff" * 10)[0] == bytes.fromhex(
        "3003020101"
    )
    with pytest.raises(DerError):
        read_tlv(bytes.fromhex("3080"))  # indefinite length
    with pytest.raises(MalformedCertificate):
        load_certificate(b"\x30\x00")


def _self_signed(
    name: x509.Name, key: ec.EllipticCurvePrivateKey, start: datetime, end: datetime
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _issue(
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    public: object,
    start: datetime,
    end: datetime,
) -> x509.Certificate:
    assert isinstance(public, rsa.RSAPublicKey)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
