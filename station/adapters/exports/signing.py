"""ES256 for batch manifests: the signing key held in hsm/, and the verifier's chain check."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
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
from cryptography.x509.oid import NameOID

import hsm
from station.adapters.ca.builder import EKU_NAMES
from station.domain.certificates import manifest_signer_refusal
from station.domain.errors import KeyCustodyError, ManifestError, ValidationError
from station.domain.manifest_signing import TrustedSigner
from station.inputs import MAX_CERTIFICATES, read_bounded


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
            chain = x509.load_pem_x509_certificates(
                read_bounded(
                    chain_file,
                    limit=MAX_CERTIFICATES,
                    what="the manifest chain",
                    error=ManifestError,
                )
            )
        except ValueError as exc:
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
        try:
            _manifest_station(chain[0])
        except ValidationError as exc:
            key.close()
            raise ManifestError(
                f"the manifest chain's certificate cannot sign manifests: {exc.message}",
                remedy="Run 'station ca manifest-key' to certify the manifest key with the "
                "manifest-signing profile.",
                path=str(chain_file),
            ) from exc
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
    """Checks a manifest chain (leaf first) up to one trusted root certificate.

    The leaf must be a manifest-signing certificate (see
    :func:`~station.domain.certificates.manifest_signer_refusal`); given ``pinned_sha256``, it
    must also be exactly that certificate.
    """

    def __init__(
        self, root_pem: bytes, *, pinned_sha256: str = "", now: datetime | None = None
    ) -> None:
        try:
            self._root = x509.load_pem_x509_certificate(root_pem)
        except ValueError as exc:
            raise ManifestError(
                "the trust anchor is not a PEM certificate",
                remedy="Pass the root certificate the station's manifest chain leads to.",
            ) from exc
        self._now = now
        self._pinned = pinned_sha256.replace(":", "").upper()

    def signer(self, chain_der: Sequence[bytes]) -> TrustedSigner:
        """Validate the chain and the leaf's manifest-signing profile; return the signer.

        Raises:
            ValidationError: malformed, expired or untrusted chain, a leaf that is not a
                manifest-signing certificate (the message says what it is instead), not the
                pinned certificate, or not a P-256 leaf.
        """
        try:
            chain = [x509.load_der_x509_certificate(der) for der in chain_der]
            public = self._validate(chain)
            station = _manifest_station(chain[0])
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
            raise ValidationError(f"the manifest chain is malformed: {exc}") from exc
        fingerprint = hashlib.sha256(chain_der[0]).hexdigest().upper()
        if self._pinned and fingerprint != self._pinned:
            raise ValidationError(
                f"signed by certificate SHA-256 {fingerprint}, not the pinned manifest key "
                f"{self._pinned}"
            )

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

        return TrustedSigner(check=check, station=station, fingerprint=fingerprint)

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
            except (InvalidSignature, ValueError, TypeError) as exc:
                # a name that does not match, another key type or a bad signature: not issued
                issued = (
                    f"{child.subject.rfc4514_string()} is issued by "
                    f"{child.issuer.rfc4514_string()}, not by {parent.subject.rfc4514_string()}"
                )
                if parent is self._root:
                    raise ValidationError(
                        f"the manifest chain does not lead to the given root: {issued}",
                        remedy="Check that --trust names the root of the station that signed "
                        "this manifest (ask its admin for it).",
                    ) from exc
                raise ValidationError(issued) from exc
            _require_ca(parent)
        public = chain[0].public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise ValidationError("the manifest signing certificate is not for a P-256 key")
        return public


def _manifest_station(leaf: x509.Certificate) -> str:
    """The station ID a manifest-signing leaf names (its CN), after checking its profile."""
    extensions = leaf.extensions
    try:
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ekus = frozenset(EKU_NAMES.get(oid.dotted_string, oid.dotted_string) for oid in usages)
    except x509.ExtensionNotFound:
        ekus = frozenset()
    try:
        bits = extensions.get_extension_for_class(x509.KeyUsage).value
        key_usage = frozenset(name for name in _KEY_USAGE_BITS if getattr(bits, name))
    except x509.ExtensionNotFound:
        key_usage = frozenset()
    try:
        is_ca = extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    refusal = manifest_signer_refusal(extended_key_usage=ekus, key_usage=key_usage, is_ca=is_ca)
    if refusal:
        raise ValidationError(refusal)
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str):
        raise ValidationError("the manifest signing certificate names no station (CN)")
    return names[0].value


_KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def _require_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise ValidationError(f"{cert.subject.rfc4514_string()} is not a CA") from exc
    if not constraints.ca:
        raise ValidationError(f"{cert.subject.rfc4514_string()} is not a CA")
