"""Vendor DER deviations are read past and named; really broken certificates are refused."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from tpm2_pytss.types import TPM2B_PUBLIC, TPMT_PUBLIC

from station.adapters.tpm.cert_normalise import extract_certificate, normalise_certificate
from station.adapters.tpm.der import DerError
from station.adapters.tpm.ek_certs import X509EkCertificateVerifier
from station.domain.products import EkCertificateResult
from tests.support.deviant_certs import NOW, DeviantSet
from tests.support.paths import SHARED_TESTDATA


@pytest.fixture(scope="module")
def verifier(deviant: DeviantSet) -> X509EkCertificateVerifier:
    return X509EkCertificateVerifier.from_paths([deviant.anchors])


def tpm2b_public(deviant: DeviantSet) -> bytes:
    """The EK the deviant certificates certify, as a TPM would marshal it."""
    assert deviant.ek is not None
    pem = deviant.ek.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return bytes(TPM2B_PUBLIC(publicArea=TPMT_PUBLIC.from_pem(pem)).marshal())


@pytest.mark.parametrize(
    ("name", "named", "anchor_file"),
    [
        (
            "intel-explicit-default",
            "Intel: explicit DEFAULT in extension 3 (authorityInfoAccess): critical FALSE "
            "normalised",
            "issuing.pem",
        ),
        (
            "explicit-default-ca",
            "Intel: explicit DEFAULT in extension 2 (basicConstraints): cA FALSE normalised",
            "issuing.pem",
        ),
        (
            "unsorted-set",
            "Intel: non-DER SET ordering in issuer name normalised",
            "multi-valued.pem",
        ),
        ("nv-padding-ff", "Intel: 300 bytes of NV padding (0xff) ignored", "issuing.pem"),
        ("nv-padding-00", "Intel: 300 bytes of NV padding (0x00) ignored", "issuing.pem"),
        ("tcg-header", "Intel: TCG stored-certificate header removed", "issuing.pem"),
        ("tcg-header-full-cert", "Intel: TCG stored-certificate header removed", "issuing.pem"),
        (
            "rsaes-oaep",
            "Intel: RSAES-OAEP public key (TPM 1.2 style) read as rsaEncryption",
            "issuing.pem",
        ),
        ("long-length", "Intel: non-minimal length in validity normalised", "issuing.pem"),
        (
            "issuer-non-minimal-int",
            "issuer CN=Station Test Old Intermediate,O=Station Test TPM Vendor,C=DE: "
            "non-minimal INTEGER in serial number normalised",
            "old-intermediate.der",
        ),
    ],
)
def test_each_vendor_deviation_verifies_and_is_named(
    deviant: DeviantSet,
    verifier: X509EkCertificateVerifier,
    name: str,
    named: str,
    anchor_file: str,
) -> None:
    ek = tpm2b_public(deviant)
    check = verifier.check(deviant.certs[name].read_bytes(), ek=ek, now=NOW)
    assert check.status is EkCertificateResult.VALID, check.reason
    assert check.normalised == (named,)
    assert check.summary().endswith(", 1 vendor encoding deviation normalised")
    assert Path(check.anchor_source).name == anchor_file
    # The stored bytes are the certificate exactly as signed, never the re-encoding.
    assert normalise_certificate(check.der).original == check.der


def test_a_der_certificate_is_not_reported_as_normalised(
    deviant: DeviantSet, verifier: X509EkCertificateVerifier
) -> None:
    check = verifier.check(deviant.certs["plain"].read_bytes(), ek=tpm2b_public(deviant), now=NOW)
    assert check.status is EkCertificateResult.VALID and check.normalised == ()


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        # Signed over the DER form but shipped with an explicit DEFAULT: the signature is checked
        # over the bytes as shipped, so normalising cannot launder it.
        ("broken-signed-over-der", "untrusted", "its issuer's signature does not verify"),
        ("broken-tampered", "untrusted", "its issuer's signature does not verify"),
        (
            "broken-trailing-garbage",
            "malformed",
            "12 bytes after the certificate are not NV padding",
        ),
        (
            "broken-tcg-header-length",
            "malformed",
            "the TCG stored-certificate header announces 16384 bytes",
        ),
        ("broken-truncated", "malformed", "element runs past the end of the data"),
        (
            "broken-extension-shape",
            "malformed",
            "extension 3 is not an OID, an optional BOOLEAN and an OCTET STRING",
        ),
        ("broken-oaep-not-rsa", "malformed", "not a usable X.509 certificate"),
    ],
)
def test_really_broken_certificates_are_refused_with_the_reason(
    deviant: DeviantSet, verifier: X509EkCertificateVerifier, name: str, status: str, reason: str
) -> None:
    check = verifier.check(deviant.certs[name].read_bytes(), ek=None, now=NOW)
    assert check.status.value == status
    assert reason in check.reason


def test_missing_issuer_names_its_aia_url(deviant: DeviantSet) -> None:
    alone = X509EkCertificateVerifier.from_paths([deviant.anchors / "root.pem"])
    check = alone.check(deviant.certs["intel-explicit-default"].read_bytes(), ek=None, now=NOW)
    assert check.status is EkCertificateResult.UNTRUSTED
    assert check.issuer_url.startswith("https://tsci.intel.com/")
    assert "station tpm trust import" in check.reason and check.issuer_url in check.reason


def test_extraction_is_strict_about_what_surrounds_the_certificate() -> None:
    cert = b"\x30\x03\x02\x01\x01"
    assert extract_certificate(b"\x10\x01\x00\x00\x05" + cert + b"\xff\xff") == (
        cert,
        ["TCG stored-certificate header removed", "2 bytes of NV padding (0xff) ignored"],
    )
    with pytest.raises(DerError, match="3 bytes after the certificate are not NV padding"):
        extract_certificate(cert + b"\xff\xff\x00")


@pytest.mark.parametrize(
    "name",
    [
        "plain",
        "intel-explicit-default",
        "tcg-header",
        "rsaes-oaep",
        "shared:tpm-vendor-roots/keylime/INF_ECC_010I.pem",
        "shared:ek-certs/keylime/nuvoton_rsa_ek__NuvotonRootCA2111__malformed.der",
    ],
)
def test_damaged_certificates_get_a_verdict_never_an_exception(
    deviant: DeviantSet, verifier: X509EkCertificateVerifier, name: str
) -> None:
    # Bit flips, cuts and splices at reproducible places: every one gets a verdict with a
    # reason, and nothing escapes as an exception or a warning on the console.
    shared = name.removeprefix("shared:")
    path = SHARED_TESTDATA / shared if shared != name else deviant.certs[name]
    data = path.read_bytes()
    rng = random.Random(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(150):
            damaged = bytearray(data)
            kind = rng.randrange(3)
            at = rng.randrange(len(data))
            if kind == 0:
                damaged[at] ^= 1 << rng.randrange(8)
            elif kind == 1:
                del damaged[at:]
            else:
                damaged[at:at] = rng.randbytes(rng.randrange(1, 5))
            check = verifier.check(bytes(damaged), ek=None, now=NOW)
            assert check.status is EkCertificateResult.VALID or check.reason


def test_names_from_a_certificate_never_carry_control_characters(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from tests.support.deviant_certs import ek_leaf, make_ca, resign

    evil = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EK CA\x1b[2J\nSource: /etc")])
    ca = make_ca(evil)
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    leaf = resign(ek_leaf(ca, ca.cert.public_key(), manufacturer="id:\x1b[31m"), ca)
    check = X509EkCertificateVerifier.from_paths([tmp_path]).check(leaf, ek=None, now=NOW)
    assert check.status is EkCertificateResult.VALID
    for text in (check.issuer, check.anchor, check.vendor):
        assert text.isprintable(), text
    assert "EK CA?[2J?Source: /etc" in check.issuer
