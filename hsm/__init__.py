"""Signing-key custody: CA keys and group keys that never leave their token.

:func:`open_signer` returns an object that *is* a cryptography private key
(:class:`~cryptography.hazmat.primitives.asymmetric.ec.EllipticCurvePrivateKey` or
:class:`~cryptography.hazmat.primitives.asymmetric.rsa.RSAPrivateKey`), so
``CertificateBuilder.sign()`` and ``CertificateSigningRequestBuilder.sign()`` use it directly, plus
``custody()`` (where the key lives) and ``close()``.

Backends, chosen by the URI's scheme (see :mod:`hsm.uri`): ``pkcs11:`` (SoftHSM2, HSMs, YubiHSM,
Nitrokey), ``tpm:`` (the station's own TPM) and ``file:`` (encrypted PKCS#8, development only).
Symmetric enrollment-group keys live in a token too (:func:`import_group_key`,
:func:`open_group_key`); device keys are derived inside it.

This package imports nothing from ``station``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from hsm.errors import (
    BackendError,
    HsmError,
    InvalidKeyUriError,
    KeyExistsError,
    KeyNotExtractableError,
    KeyNotFoundError,
    PinLockedError,
    PinUnavailableError,
    TokenNotFoundError,
    TokenRemovedError,
    UnsupportedKeyError,
    WrongPinError,
)
from hsm.keys import HsmEcKey, HsmRsaKey, KeyAlgorithm, KeyCustody
from hsm.pin import PinSource
from hsm.uri import FileUri, KeyUri, Pkcs11Uri, TpmUri, parse_key_uri

__all__ = [
    "BackendError",
    "GroupKey",
    "HsmEcKey",
    "HsmError",
    "HsmRsaKey",
    "InvalidKeyUriError",
    "KeyAlgorithm",
    "KeyCustody",
    "KeyExistsError",
    "KeyNotExtractableError",
    "KeyNotFoundError",
    "KeyUri",
    "PinLockedError",
    "PinSource",
    "PinUnavailableError",
    "Signer",
    "TokenNotFoundError",
    "TokenRemovedError",
    "UnsupportedKeyError",
    "WrongPinError",
    "generate_key",
    "import_group_key",
    "open_group_key",
    "open_signer",
    "parse_key_uri",
]


Signer = HsmEcKey | HsmRsaKey
"""A cryptography private key that also has ``custody()`` and ``close()``."""


class GroupKey(Protocol):
    """A symmetric enrollment-group key; device keys are derived where the group key lives."""

    def derive(self, registration_id: str) -> bytes:
        """Return HMAC-SHA256(group key, registration ID): the device's symmetric key."""
        ...

    def custody(self) -> KeyCustody:
        """Describe where the group key lives."""
        ...

    def close(self) -> None:
        """Release the session."""
        ...


def open_signer(uri: str, *, pin_source: PinSource | None = None) -> Signer:
    """Open the private key ``uri`` names.

    Args:
        uri: a ``pkcs11:``, ``tpm:`` or ``file:`` key URI.
        pin_source: where the token PIN or file passphrase comes from (default: the
            ``$STATION_PKCS11_PIN`` environment variable only).

    Returns:
        A cryptography private key backed by the token; call ``close()`` when done.

    Raises:
        HsmError: a subclass naming what is wrong (URI, PIN, token, key, backend).
    """
    parsed = parse_key_uri(uri)
    source = pin_source or PinSource()
    if isinstance(parsed, Pkcs11Uri):
        from hsm.pkcs11_backend import open_pkcs11_signer

        return open_pkcs11_signer(parsed, source)
    if isinstance(parsed, TpmUri):
        from hsm.tpm_backend import open_tpm_signer

        return open_tpm_signer(parsed)
    from hsm.file_backend import open_file_signer

    return open_file_signer(parsed, source)


def generate_key(
    uri: str,
    algorithm: KeyAlgorithm | str = KeyAlgorithm.EC_P256,
    *,
    pin_source: PinSource | None = None,
) -> Signer:
    """Generate a new key where ``uri`` points (inside the token or TPM) and open it.

    The URI must name a free slot: a new ``object=`` label, a free persistent handle, a file
    that does not exist. The returned key's ``custody()`` tells where it ended up (for PKCS#11 a
    random ``id`` is assigned when the URI has none).

    Raises:
        KeyExistsError: the URI already names a key.
        HsmError: any other failure.
    """
    parsed = parse_key_uri(uri)
    chosen = algorithm if isinstance(algorithm, KeyAlgorithm) else KeyAlgorithm.parse(algorithm)
    source = pin_source or PinSource()
    if isinstance(parsed, Pkcs11Uri):
        from hsm.pkcs11_backend import generate_pkcs11_key

        return generate_pkcs11_key(parsed, chosen, source)
    if isinstance(parsed, TpmUri):
        from hsm.tpm_backend import generate_tpm_key

        return generate_tpm_key(parsed, chosen)
    from hsm.file_backend import generate_file_key

    return generate_file_key(parsed, chosen, source)


def import_group_key(uri: str, key: bytes, *, pin_source: PinSource | None = None) -> None:
    """Store a symmetric group key as a sensitive, non-extractable secret.

    Args:
        uri: a ``pkcs11:`` URI with a new ``object=`` label, or a ``tpm:`` URI with a free
            persistent handle (the key becomes a ``fixedtpm`` HMAC key).
        key: the raw group key (DPS shows it base64-encoded; decode it first).
        pin_source: where the token PIN comes from.

    Raises:
        UnsupportedKeyError: a ``file:`` URI, or a key shorter than 16 bytes.
        KeyExistsError: the label is taken.
    """
    parsed = parse_key_uri(uri)
    if isinstance(parsed, FileUri):
        raise UnsupportedKeyError(
            "group keys are imported into a PKCS#11 token or a TPM, not a file",
            remedy="Use a pkcs11: or tpm: URI; for development, open_group_key reads a file:.",
            uri=uri,
        )
    if len(key) < 16:
        raise UnsupportedKeyError(
            f"a group key of {len(key)} bytes is too short (at least 16)",
            remedy="Use the primary key DPS generated for the enrollment group.",
        )
    if isinstance(parsed, TpmUri):
        from hsm.tpm_backend import import_tpm_group_key

        import_tpm_group_key(parsed, key)
        return
    from hsm.pkcs11_backend import import_pkcs11_group_key

    import_pkcs11_group_key(parsed, key, pin_source or PinSource())


def open_group_key(uri: str, *, pin_source: PinSource | None = None) -> GroupKey:
    """Open a group key: ``pkcs11:``, ``tpm:``, or ``file:`` (base64 in a 0600 file, dev only).

    Raises:
        HsmError: a subclass naming what is wrong.
    """
    parsed = parse_key_uri(uri)
    if isinstance(parsed, Pkcs11Uri):
        from hsm.pkcs11_backend import open_pkcs11_group_key

        return open_pkcs11_group_key(parsed, pin_source or PinSource())
    if isinstance(parsed, TpmUri):
        from hsm.tpm_backend import open_tpm_group_key

        return open_tpm_group_key(parsed)
    return _FileGroupKey(parsed.path)


class _FileGroupKey:
    """A development group key read from a file; derivation happens in this process."""

    def __init__(self, path: Path) -> None:
        from hsm.file_backend import read_file_group_key

        self._path = path
        self._key = read_file_group_key(path)

    def derive(self, registration_id: str) -> bytes:
        """HMAC-SHA256(group key, registration ID), computed in memory."""
        import hashlib
        import hmac

        return hmac.new(self._key, registration_id.encode("utf-8"), hashlib.sha256).digest()

    def custody(self) -> KeyCustody:
        """A plain file: development only."""
        return KeyCustody(
            backend="file",
            location=f"key file {self._path}",
            algorithm="hmac-sha256",
            sensitive=False,
            extractable=True,
            generated_on_device=False,
            development_only=True,
        )

    def close(self) -> None:
        """Forget the key bytes."""
        self._key = b""
