"""What every signer shares: the algorithms we support and a description of where a key lives."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding

from hsm.errors import KeyNotExtractableError, UnsupportedKeyError


class KeyAlgorithm(StrEnum):
    """Key types a station CA key may have."""

    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_3072 = "rsa-3072"

    @classmethod
    def parse(cls, text: str) -> KeyAlgorithm:
        """Parse ``ec-p256``, ``p256``, ``ec-p384``, ``p384`` or ``rsa-3072`` (any case).

        Raises:
            UnsupportedKeyError: anything else.
        """
        value = text.strip().lower()
        aliases = {"p256": "ec-p256", "p-256": "ec-p256", "p384": "ec-p384", "p-384": "ec-p384"}
        try:
            return cls(aliases.get(value, value))
        except ValueError as exc:
            raise UnsupportedKeyError(
                f"key algorithm {text!r} is not supported",
                remedy="Use ec-p256, ec-p384 or rsa-3072.",
                algorithm=text,
            ) from exc

    @property
    def curve(self) -> ec.EllipticCurve | None:
        """The curve of an EC algorithm, else ``None``."""
        if self is KeyAlgorithm.EC_P256:
            return ec.SECP256R1()
        if self is KeyAlgorithm.EC_P384:
            return ec.SECP384R1()
        return None


@dataclass(frozen=True)
class KeyCustody:
    """Where a key lives and what its holder promises about it (shown by ``station ca status``).

    Attributes:
        backend: ``pkcs11``, ``tpm`` or ``file``.
        location: a human description (token and label, TPM handle, file path).
        algorithm: the key's algorithm (``ec-p256``, ``ec-p384``, ``rsa-3072``, ``hmac-sha256``).
        sensitive: the private key material is never revealed in plain text.
        extractable: the private key can be exported (wrapped or encrypted) at all.
        generated_on_device: the key was generated inside the token/TPM.
        development_only: the backend is not fit for production (``file:``).
    """

    backend: str
    location: str
    algorithm: str
    sensitive: bool
    extractable: bool
    generated_on_device: bool
    development_only: bool = False


class HsmEcKey(ec.EllipticCurvePrivateKey):
    """An EC private key held by a backend: cryptography's interface plus custody and close."""

    @abc.abstractmethod
    def custody(self) -> KeyCustody:
        """Describe where the key lives."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the session, TPM context or memory copy."""


class HsmRsaKey(rsa.RSAPrivateKey):
    """An RSA private key held by a backend: cryptography's interface plus custody and close."""

    @abc.abstractmethod
    def custody(self) -> KeyCustody:
        """Describe where the key lives."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the session."""


class _Sealed(abc.ABC):
    """What every non-extractable key refuses or shares, EC or RSA (a mixin, listed first)."""

    @abc.abstractmethod
    def location(self) -> str:
        """Where the key lives, for messages ("token 'station-ca', key 'ca'")."""

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Always refused: the key is not extractable."""
        raise not_extractable(self.location())

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class NonExtractableEcKey(_Sealed, HsmEcKey):
    """An EC key whose private half never leaves its token or TPM.

    Subclasses provide ``sign``, ``public_key``, ``custody``, ``close`` and :meth:`location`;
    everything that would reveal or use the private key otherwise is refused here, once.
    """

    @property
    def curve(self) -> ec.EllipticCurve:
        """The key's curve."""
        return self.public_key().curve

    @property
    def key_size(self) -> int:
        """The curve's size in bits."""
        return self.public_key().key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        """Not offered: a CA key only signs."""
        raise UnsupportedKeyError("the CA key is for signing only")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        """Always refused: the key is not extractable."""
        raise not_extractable(self.location())


class NonExtractableRsaKey(_Sealed, HsmRsaKey):
    """An RSA key whose private half never leaves its token (signing only)."""

    @property
    def key_size(self) -> int:
        """The modulus size in bits."""
        return self.public_key().key_size

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        """Not offered: a CA key only signs."""
        raise UnsupportedKeyError("the CA key is for signing only")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        """Always refused: the key is not extractable."""
        raise not_extractable(self.location())


def algorithm_of(public: object) -> KeyAlgorithm:
    """Return the :class:`KeyAlgorithm` of a cryptography public key.

    Raises:
        UnsupportedKeyError: another type, curve or size.
    """
    if isinstance(public, ec.EllipticCurvePublicKey):
        if isinstance(public.curve, ec.SECP256R1):
            return KeyAlgorithm.EC_P256
        if isinstance(public.curve, ec.SECP384R1):
            return KeyAlgorithm.EC_P384
        raise UnsupportedKeyError(f"curve {public.curve.name} is not supported")
    if isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072:
        return KeyAlgorithm.RSA_3072
    raise UnsupportedKeyError(f"key type {type(public).__name__} is not supported")


def not_extractable(location: str) -> KeyNotExtractableError:
    """The error every signer raises when asked for its private key material."""
    return KeyNotExtractableError(
        f"the private key in {location} cannot be exported",
        remedy="Keys generated in a token stay there; use the public key or a CSR instead.",
        location=location,
    )
