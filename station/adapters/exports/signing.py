"""ES256 for batch manifests: the signing key held in hsm/, and the verifier's chain check."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

import hsm
from station.domain.errors import KeyCustodyError, ManifestError, ValidationError


class HsmManifestSigner:
    """The manifest key (a P-256 key in a PKCS#11 token, TPM or dev file) and its chain."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate]) -> None:
        self._key = key
        self._chain = chain

    @classmethod
    def open(
        cls, uri: str, chain_file: Path, *, pin_source: hsm.PinSource | None = None
    ) -> HsmManifestSigner:
        """Open the key ``uri`` names and the PEM chain (signing certificate first).

        Raises:
            ManifestError: no chain, a chain whose first certificate is not for this key, or
                not a P-256 key.
            KeyCustodyError: the key cannot be opened.
        """
        try:
            chain = x509.load_pem_x509_certificates(chain_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise ManifestError(
                f"cannot read the manifest certificate chain {chain_file}",
                remedy="Set [dps] manifest_chain_file to the PEM chain of the manifest key "
                "(its certificate first).",
                path=str(chain_file),
            ) from exc
        try:
            key = hsm.open_signer(uri, pin_source=pin_source)
        except hsm.HsmError as exc:
            raise KeyCustodyError(
                f"cannot open the manifest signing key: {exc}",
                remedy="Check [dps] manifest_key_uri and the token PIN.",
                uri=uri,
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            key.close()
            raise ManifestError("the manifest key must be an EC P-256 key (ES256)", uri=uri)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if chain[0].public_key().public_bytes(der, spki) != key.public_key().public_bytes(
            der, spki
        ):
            key.close()
            raise ManifestError(
                "the first certificate of the manifest chain is not for the manifest key",
                path=str(chain_file),
            )
        return cls(key, chain)

    def sign(self, data: bytes) -> bytes:
        """Raw r||s ES256 signature."""
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def chain_der(self) -> list[bytes]:
        """Signing certificate first."""
        return [cert.public_bytes(serialization.Encoding.DER) for cert in self._chain]

    def close(self) -> None:
        """Release the key's session."""
        close = getattr(self._key, "close", None)
        if callable(close):
            close()


class X509ManifestTrust:
    """Checks a manifest chain (leaf first) up to one trusted root certificate."""

    def __init__(self, root_pem: bytes, *, now: datetime | None = None) -> None:
        try:
            self._root = x509.load_pem_x509_certificate(root_pem)
        except ValueError as exc:
            raise ManifestError(
                "the trust anchor is not a PEM certificate",
                remedy="Pass the root certificate the station's manifest chain leads to.",
            ) from exc
        self._now = now

    def signature_check(self, chain_der: Sequence[bytes]) -> Callable[[bytes, bytes], bool]:
        """Validate the chain; return the leaf key's ES256 check.

        Raises:
            ValidationError: malformed, expired or untrusted chain, or not a P-256 leaf.
        """
        try:
            public = self._validate([x509.load_der_x509_certificate(der) for der in chain_der])
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # parsed lazily
            raise ValidationError(f"the manifest chain is malformed: {exc}") from exc

        def check(signing_input: bytes, signature: bytes) -> bool:
            if len(signature) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            try:
                public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                return False
            return True

        return check

    def _validate(self, chain: list[x509.Certificate]) -> ec.EllipticCurvePublicKey:
        if not chain:
            raise ValidationError("the manifest chain is empty")
        now = self._now or datetime.now(UTC)
        for cert in chain:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                name = cert.subject.rfc4514_string()
                raise ValidationError(f"certificate {name} is not valid now")
        path = [*chain, self._root] if chain[-1] != self._root else chain
        for child, parent in itertools.pairwise(path):
            try:
                child.verify_directly_issued_by(parent)
            except InvalidSignature as exc:
                raise ValidationError(
                    f"{child.subject.rfc4514_string()} is not issued by "
                    f"{parent.subject.rfc4514_string()}"
                ) from exc
            _require_ca(parent)
        public = chain[0].public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise ValidationError("the manifest signing certificate is not for a P-256 key")
        return public


def _require_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise ValidationError(f"{cert.subject.rfc4514_string()} is not a CA") from exc
    if not constraints.ca:
        raise ValidationError(f"{cert.subject.rfc4514_string()} is not a CA")
