"""``tpm:`` keys on a real swtpm process (one per test)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import hsm

HANDLE = "0x81000010"


def _cert(key: hsm.Signer, algorithm: hashes.SHA256 | hashes.SHA384) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tpm-ca")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, algorithm)
    )


@pytest.mark.parametrize(
    ("algorithm", "digest"), [("ec-p256", hashes.SHA256()), ("ec-p384", hashes.SHA384())]
)
def test_tpm_key_is_generated_persisted_and_signs(
    swtpm: str, algorithm: str, digest: hashes.SHA256 | hashes.SHA384
) -> None:
    uri = f"tpm:{HANDLE}?tcti={swtpm}"
    key = hsm.generate_key(uri, algorithm)
    try:
        cert = _cert(key, digest)
        cert.verify_directly_issued_by(cert)
        custody = key.custody()
        assert (custody.backend, custody.extractable, custody.generated_on_device) == (
            "tpm",
            False,
            True,
        )
        with pytest.raises(hsm.KeyNotExtractableError):
            key.private_numbers()
    finally:
        key.close()
    reopened = hsm.open_signer(uri)  # persistent: a new ESAPI context finds it at the handle
    try:
        assert reopened.public_key() == cert.public_key()
        assert isinstance(reopened, ec.EllipticCurvePrivateKey)
        _cert(reopened, hashes.SHA256()).verify_directly_issued_by(cert)
    finally:
        reopened.close()


def test_tpm_errors_are_clear(swtpm: str) -> None:
    with pytest.raises(hsm.KeyNotFoundError) as info:
        hsm.open_signer(f"tpm:0x81000099?tcti={swtpm}")
    assert "0x81000099" in info.value.message
    hsm.generate_key(f"tpm:{HANDLE}?tcti={swtpm}", "ec-p256").close()
    with pytest.raises(hsm.KeyExistsError):
        hsm.generate_key(f"tpm:{HANDLE}?tcti={swtpm}", "ec-p256")
    with pytest.raises(hsm.UnsupportedKeyError):
        hsm.generate_key(f"tpm:0x81000011?tcti={swtpm}", "rsa-3072")
    with pytest.raises(hsm.TokenNotFoundError):
        hsm.open_signer("tpm:0x81000010?tcti=swtpm:path=/tmp/no-such-swtpm-socket")


def test_tpm_going_away_mid_run(swtpm: str) -> None:
    key = hsm.generate_key(f"tpm:{HANDLE}?tcti={swtpm}", "ec-p256")
    try:
        _cert(key, hashes.SHA256())
        # stop the TPM underneath the open key, as a crashed resource manager would
        sock = swtpm.split("path=", 1)[1]
        subprocess.run(
            ["swtpm_ioctl", "--unix", f"{sock}.ctrl", "-s"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        with pytest.raises(hsm.TokenRemovedError):
            _cert(key, hashes.SHA256())
    finally:
        key.close()


def test_tpm_group_key_derives_device_keys_inside_the_tpm(swtpm: str) -> None:
    import hashlib
    import hmac
    import os

    group_key = os.urandom(64)
    uri = f"tpm:0x81000030?tcti={swtpm}"
    hsm.import_group_key(uri, group_key)
    with pytest.raises(hsm.KeyExistsError):
        hsm.import_group_key(uri, group_key)
    opened = hsm.open_group_key(uri)
    try:
        assert opened.derive("dev-7") == hmac.new(group_key, b"dev-7", hashlib.sha256).digest()
        assert opened.custody().extractable is False
    finally:
        opened.close()
    hsm.generate_key(f"tpm:{HANDLE}?tcti={swtpm}", "ec-p256").close()
    with pytest.raises(hsm.UnsupportedKeyError):  # an ECDSA key is not a group key
        hsm.open_group_key(f"tpm:{HANDLE}?tcti={swtpm}")
