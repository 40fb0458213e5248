"""Opening CA keys through :mod:`hsm`, and translating its errors into station errors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

import hsm
from station.domain.certificates import KeyDescription
from station.domain.errors import (
    KeyCustodyError,
    KeyExistsError,
    KeyMissingError,
    KeyPinError,
    KeyTokenMissingError,
    KeyTokenRemovedError,
)

_TRANSLATION: tuple[tuple[type[hsm.HsmError], type[KeyCustodyError]], ...] = (
    (hsm.WrongPinError, KeyPinError),
    (hsm.PinLockedError, KeyPinError),
    (hsm.PinUnavailableError, KeyPinError),
    (hsm.TokenNotFoundError, KeyTokenMissingError),
    (hsm.TokenRemovedError, KeyTokenRemovedError),
    (hsm.KeyNotFoundError, KeyMissingError),
    (hsm.KeyExistsError, KeyExistsError),
)


def translate(exc: hsm.HsmError) -> KeyCustodyError:
    """Return the station error for an :mod:`hsm` error (raise it ``from exc``)."""
    cls: type[KeyCustodyError] = KeyCustodyError
    for source, target in _TRANSLATION:
        if isinstance(exc, source):
            cls = target
            break
    return cls(exc.message, remedy=exc.remedy, hsm_code=exc.code, **dict(exc.details))


def pin_source(pin_file: Path | None, prompt: Callable[[str], str] | None) -> hsm.PinSource:
    """Where the CA key's PIN comes from: ``[ca] pin_file``, ``$STATION_PKCS11_PIN``, a prompt."""
    return hsm.PinSource(file=pin_file, prompt=prompt)


def public_key_sha256(signer: hsm.Signer) -> str:
    """SHA-256 (hex) of the key's SubjectPublicKeyInfo: how the station names a key."""
    der = signer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def describe(uri: str, signer: hsm.Signer) -> KeyDescription:
    """Describe an open key."""
    custody = signer.custody()
    return KeyDescription(
        uri=uri,
        backend=custody.backend,
        location=custody.location,
        algorithm=custody.algorithm,
        sensitive=custody.sensitive,
        extractable=custody.extractable,
        generated_on_device=custody.generated_on_device,
        development_only=custody.development_only,
        public_key_sha256=public_key_sha256(signer),
    )


def open_signer(uri: str, source: hsm.PinSource) -> hsm.Signer:
    """Open the key ``uri`` names, translating errors."""
    try:
        return hsm.open_signer(uri, pin_source=source)
    except hsm.HsmError as exc:
        raise translate(exc) from exc


def generate(uri: str, algorithm: str, source: hsm.PinSource) -> hsm.Signer:
    """Generate a key where ``uri`` points, translating errors."""
    try:
        return hsm.generate_key(uri, algorithm, pin_source=source)
    except hsm.HsmError as exc:
        raise translate(exc) from exc
