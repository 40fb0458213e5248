"""PKCS#11 keys on a real SoftHSM2 token (a fresh token directory per test)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

import hsm
from hsm import KeyAlgorithm, PinSource
from hsm.softhsm import SoftHsmToken, delete_token


def _self_signed(key: hsm.Signer) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("algorithm", "key_type", "size"),
    [
        (KeyAlgorithm.EC_P256, ec.EllipticCurvePrivateKey, 256),
        (KeyAlgorithm.EC_P384, ec.EllipticCurvePrivateKey, 384),
        (KeyAlgorithm.RSA_3072, rsa.RSAPrivateKey, 3072),
    ],
)
def test_generated_key_signs_certificates_and_csrs(
    softhsm: SoftHsmToken, pins: PinSource, algorithm: KeyAlgorithm, key_type: type, size: int
) -> None:
    key = hsm.generate_key(softhsm.uri("ca"), algorithm, pin_source=pins)
    try:
        assert isinstance(key, key_type)
        assert key.key_size == size
        cert = _self_signed(key)
        cert.verify_directly_issued_by(cert)  # the signature verifies with the token's public key
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ica")]))
            .sign(key, hashes.SHA256())
        )
        assert csr.is_signature_valid
        assert copy.copy(key) is key and copy.deepcopy(key) is key
    finally:
        key.close()
    reopened = hsm.open_signer(softhsm.uri("ca"), pin_source=pins)
    try:
        assert reopened.public_key() == cert.public_key()
    finally:
        reopened.close()


def test_key_is_sensitive_and_never_extractable(softhsm: SoftHsmToken, pins: PinSource) -> None:
    key = hsm.generate_key(softhsm.uri("ca"), "ec-p256", pin_source=pins)
    try:
        custody = key.custody()
        assert (custody.backend, custody.sensitive, custody.extractable) == ("pkcs11", True, False)
        assert custody.generated_on_device
        with pytest.raises(hsm.KeyNotExtractableError):
            key.private_numbers()
        with pytest.raises(hsm.KeyNotExtractableError):
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    finally:
        key.close()
    # Ask the token itself, through a separate raw session: the value attribute stays hidden.
    lib = pkcs11.lib("/usr/lib/softhsm/libsofthsm2.so")
    with lib.get_token(token_label=softhsm.label).open(user_pin=softhsm.pin) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="ca")
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[Attribute.VALUE]


def test_wrong_pin_is_a_clear_error(softhsm: SoftHsmToken) -> None:
    hsm.generate_key(
        softhsm.uri("ca"), "ec-p256", pin_source=PinSource(env={"STATION_PKCS11_PIN": "1234"})
    ).close()
    with pytest.raises(hsm.WrongPinError) as info:
        hsm.open_signer(softhsm.uri("ca"), pin_source=PinSource(env={"STATION_PKCS11_PIN": "0000"}))
    assert "refused the PIN" in info.value.message
    assert info.value.remedy


def test_missing_token_and_missing_key(softhsm: SoftHsmToken, pins: PinSource) -> None:
    with pytest.raises(hsm.TokenNotFoundError) as info:
        hsm.open_signer("pkcs11:token=no-such-token;object=ca", pin_source=pins)
    assert "no-such-token" in info.value.message
    with pytest.raises(hsm.KeyNotFoundError):
        hsm.open_signer(softhsm.uri("never-generated"), pin_source=pins)
    with pytest.raises(hsm.TokenNotFoundError):
        hsm.open_signer(
            f"{softhsm.uri('ca')}?module-path=/nonexistent/libpkcs11.so", pin_source=pins
        )


def test_no_pin_source_is_a_clear_error(softhsm: SoftHsmToken) -> None:
    with pytest.raises(hsm.PinUnavailableError):
        hsm.open_signer(softhsm.uri("ca"), pin_source=PinSource(env={}))


def test_pin_source_in_uri_reads_a_private_file(softhsm: SoftHsmToken, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    pin_file.chmod(0o600)
    key = hsm.generate_key(
        f"{softhsm.uri('ca')}?pin-source={pin_file}", "ec-p256", pin_source=PinSource(env={})
    )
    key.close()


def test_token_removed_mid_run(softhsm: SoftHsmToken, pins: PinSource) -> None:
    key = hsm.generate_key(softhsm.uri("ca"), "ec-p256", pin_source=pins)
    try:
        _self_signed(key)  # works while the token is there
        delete_token(softhsm)
        with pytest.raises(hsm.TokenRemovedError) as info:
            _self_signed(key)
        assert "removed" in info.value.message
    finally:
        key.close()


def test_generating_over_an_existing_label_is_refused(
    softhsm: SoftHsmToken, pins: PinSource
) -> None:
    hsm.generate_key(softhsm.uri("ca"), "ec-p256", pin_source=pins).close()
    with pytest.raises(hsm.KeyExistsError):
        hsm.generate_key(softhsm.uri("ca"), "ec-p256", pin_source=pins)


def test_rsa_key_refuses_pss_rather_than_signing_something_else(
    softhsm: SoftHsmToken, pins: PinSource
) -> None:
    key = hsm.generate_key(softhsm.uri("rsa"), "rsa-3072", pin_source=pins)
    try:
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(b"data", padding.PKCS1v15(), hashes.SHA256())
        key.public_key().verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())
        with pytest.raises(hsm.UnsupportedKeyError):
            key.sign(b"data", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    finally:
        key.close()


def test_group_key_derives_dps_device_keys_inside_the_token(
    softhsm: SoftHsmToken, pins: PinSource
) -> None:
    group_key = os.urandom(64)  # DPS generates 64-byte keys and shows them base64-encoded
    hsm.import_group_key(softhsm.uri("group-1"), group_key, pin_source=pins)
    opened = hsm.open_group_key(softhsm.uri("group-1"), pin_source=pins)
    try:
        derived = opened.derive("dev-0001")
        # the DPS documented derivation: base64(HMAC-SHA256(base64decode(groupKey), regId))
        expected = hmac.new(group_key, b"dev-0001", hashlib.sha256).digest()
        assert derived == expected
        assert base64.b64encode(derived)
        custody = opened.custody()
        assert (custody.sensitive, custody.extractable) == (True, False)
    finally:
        opened.close()
    lib = pkcs11.lib("/usr/lib/softhsm/libsofthsm2.so")
    with lib.get_token(token_label=softhsm.label).open(user_pin=softhsm.pin) as session:
        secret = session.get_key(object_class=ObjectClass.SECRET_KEY, label="group-1")
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            secret[Attribute.VALUE]


def test_group_key_import_rules(softhsm: SoftHsmToken, pins: PinSource) -> None:
    with pytest.raises(hsm.UnsupportedKeyError):
        hsm.import_group_key(softhsm.uri("short"), b"x" * 8, pin_source=pins)
    with pytest.raises(hsm.UnsupportedKeyError):
        hsm.import_group_key("file:/tmp/group.key", b"x" * 32, pin_source=pins)
    hsm.import_group_key(softhsm.uri("g"), b"k" * 32, pin_source=pins)
    with pytest.raises(hsm.KeyExistsError):
        hsm.import_group_key(softhsm.uri("g"), b"k" * 32, pin_source=pins)


def test_wrong_pin_is_refused_even_while_another_session_is_logged_in(
    softhsm: SoftHsmToken, pins: PinSource
) -> None:
    key = hsm.generate_key(softhsm.uri("ca"), "ec-p256", pin_source=pins)
    try:
        # the token would accept any PIN now (login is per process); the station does not
        with pytest.raises(hsm.WrongPinError):
            hsm.open_signer(
                softhsm.uri("ca"), pin_source=PinSource(env={"STATION_PKCS11_PIN": "0000"})
            )
        second = hsm.open_signer(softhsm.uri("ca"), pin_source=pins)
        second.close()
        _self_signed(key)  # closing the second session left the first one logged in
    finally:
        key.close()


def test_closing_the_session_that_logged_in_leaves_the_others_working(
    softhsm: SoftHsmToken, pins: PinSource
) -> None:
    first = hsm.generate_key(softhsm.uri("ca"), "ec-p256", pin_source=pins)
    second = hsm.open_signer(softhsm.uri("ca"), pin_source=pins)  # a second slot's CA session
    third = hsm.open_signer(softhsm.uri("ca"), pin_source=pins)
    try:
        first.close()  # the session that logged the process in (a finished background task)
        _self_signed(second)  # still logged in: PKCS#11 login is per process
        second.close()
        _self_signed(third)
    finally:
        third.close()
    # the last close logged out: a wrong PIN is checked by the token again
    with pytest.raises(hsm.WrongPinError):
        hsm.open_signer(softhsm.uri("ca"), pin_source=PinSource(env={"STATION_PKCS11_PIN": "0"}))
    again = hsm.open_signer(softhsm.uri("ca"), pin_source=pins)
    try:
        _self_signed(again)
    finally:
        again.close()
