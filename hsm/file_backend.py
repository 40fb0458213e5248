"""``file:`` keys: an encrypted PKCS#8 PEM file. For development only, and it says so loudly.

Every open and every generation emits a :class:`DevelopmentKeyWarning` and logs at WARNING, so a
station running on a file key cannot go unnoticed in logs, test output or the GUI.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import warnings
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import Buffer

from hsm.errors import (
    KeyExistsError,
    TokenNotFoundError,
    UnsupportedKeyError,
    WrongPinError,
)
from hsm.keys import HsmEcKey, KeyAlgorithm, KeyCustody, algorithm_of
from hsm.pin import PinSource, read_pin_file
from hsm.uri import FileUri

log = logging.getLogger(__name__)


class DevelopmentKeyWarning(UserWarning):
    """A signing key is a file on disk: acceptable for development, never for production."""


def _warn(uri: FileUri) -> None:
    text = (
        f"DEVELOPMENT KEY IN USE: {uri.path} is a key file on disk, not in an HSM or TPM; "
        "never use a file: key for production certificates"
    )
    warnings.warn(text, DevelopmentKeyWarning, stacklevel=3)
    log.warning(text)


class _FileEcKey(HsmEcKey):
    """An EC key decrypted from a file, with the same extras as the token-backed keys."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, uri: FileUri) -> None:
        self._key = key
        self._uri = uri

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """Sign with the in-memory key."""
        return self._key.sign(data, signature_algorithm)

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """ECDH with the in-memory key."""
        return self._key.exchange(algorithm, peer_public_key)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""
        return self._key.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        """The key's curve."""
        return self._key.curve

    @property
    def key_size(self) -> int:
        """The curve's size in bits."""
        return self._key.key_size

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        """The private numbers (a file key is extractable by nature)."""
        return self._key.private_numbers()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Serialize the key (a file key is extractable by nature)."""
        return self._key.private_bytes(encoding, format, encryption_algorithm)

    def __copy__(self) -> _FileEcKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _FileEcKey:
        return self

    def custody(self) -> KeyCustody:
        """Where the key lives: a file, extractable by anyone with the passphrase."""
        return KeyCustody(
            backend="file",
            location=self._uri.describe(),
            algorithm=str(algorithm_of(self.public_key())),
            sensitive=False,
            extractable=True,
            generated_on_device=False,
            development_only=True,
        )

    def close(self) -> None:
        """Nothing to release: the key object goes away with its owner."""


def open_file_signer(uri: FileUri, pin_source: PinSource) -> _FileEcKey:
    """Load and decrypt the key file (with a loud development warning)."""
    _warn(uri)
    try:
        data = uri.path.read_bytes()
    except OSError as exc:
        raise TokenNotFoundError(
            f"cannot read key file {uri.path}: {exc.strerror}",
            remedy="Check the path in the key URI.",
            file=str(uri.path),
        ) from exc
    passphrase = pin_source.resolve(f"the passphrase of {uri.describe()}")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase.encode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise WrongPinError(
            f"cannot decrypt {uri.path}: wrong passphrase or not an encrypted PKCS#8 key",
            remedy="Check the passphrase ($STATION_PKCS11_PIN or the PIN file).",
            file=str(uri.path),
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UnsupportedKeyError(f"{uri.describe()} does not hold an EC key", file=str(uri.path))
    algorithm_of(key.public_key())
    return _FileEcKey(key, uri)


def generate_file_key(uri: FileUri, algorithm: KeyAlgorithm, pin_source: PinSource) -> _FileEcKey:
    """Generate an EC key and write it encrypted (PKCS#8, mode 0600). Development only."""
    _warn(uri)
    curve = algorithm.curve
    if curve is None:
        raise UnsupportedKeyError(
            f"file: keys are EC only, not {algorithm}", remedy="Use ec-p256 or ec-p384."
        )
    if uri.path.exists():
        raise KeyExistsError(f"key file {uri.path} already exists", file=str(uri.path))
    passphrase = pin_source.resolve(f"a passphrase for {uri.describe()}")
    key = ec.generate_private_key(curve)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )
    uri.path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(uri.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return _FileEcKey(key, uri)


def read_file_group_key(path: Path) -> bytes:
    """Read a development group key (base64 text in a 0600 file), with the loud warning."""
    _warn(FileUri(path))
    text = read_pin_file(path)
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise UnsupportedKeyError(
            f"group key file {path} does not hold base64 text", file=str(path)
        ) from exc
