"""Reading CSRs and certificates into the domain's facts (cryptography does the parsing)."""

from __future__ import annotations

import hashlib
import warnings
from datetime import UTC

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from station.domain.certificates import CertificateFacts, CsrFacts, check_csr_size
from station.domain.errors import ChainRejectedError, CsrRejectedError

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _malformed(why: str) -> CsrRejectedError:
    return CsrRejectedError(
        f"CSR refused: {why}",
        remedy="Have the board generate a fresh key and CSR; if this repeats, quarantine it.",
        reason="malformed",
    )


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR (size-checked first).

    Raises:
        CsrRejectedError: too large, empty or not a CSR (``reason="malformed"``).
    """
    check_csr_size(len(data))
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _malformed(f"it is not a PKCS#10 request ({exc})") from exc


def csr_facts(csr: x509.CertificateSigningRequest) -> CsrFacts:
    """Read what the policy needs from a parsed CSR.

    Raises:
        CsrRejectedError: the CSR's extensions or key cannot be decoded.
    """
    with warnings.catch_warnings():
        # cryptography warns about over-long subject attributes; the policy reports them instead
        warnings.simplefilter("ignore", UserWarning)
        return _csr_facts(csr)


def _csr_facts(csr: x509.CertificateSigningRequest) -> CsrFacts:
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CsrRejectedError(
            f"CSR refused: its public key type is not supported ({exc})",
            remedy="Use a P-256, P-384 or RSA (>= 2048 bit) key.",
            reason="key_type",
        ) from exc
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm, InvalidSignature):
        valid = False
    try:
        extensions = list(csr.extensions)
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise _malformed(f"its extensions cannot be decoded ({exc})") from exc
    requests_ca = False
    requests_cert_sign = False
    for ext in extensions:
        value = ext.value
        if isinstance(value, x509.BasicConstraints) and value.ca:
            requests_ca = True
        if isinstance(value, x509.KeyUsage) and (value.key_cert_sign or value.crl_sign):
            requests_cert_sign = True
    curve = ""
    exponent = 0
    if isinstance(key, ec.EllipticCurvePublicKey):
        key_type, curve, bits = "ec", key.curve.name, key.key_size
    elif isinstance(key, rsa.RSAPublicKey):
        key_type, bits, exponent = "rsa", key.key_size, key.public_numbers().e
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, bits = "ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, bits = "ed448", 456
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "dsa", key.key_size
    else:
        key_type, bits = type(key).__name__.lower(), 0
    common_names = tuple(
        attr.value if isinstance(attr.value, str) else attr.value.decode("utf-8", "replace")
        for attr in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )
    return CsrFacts(
        size=len(csr.public_bytes(serialization.Encoding.DER)),
        signature_valid=valid,
        key_type=key_type,
        curve=curve,
        key_bits=bits,
        rsa_exponent=exponent,
        common_names=common_names,
        subject_attributes=len(list(csr.subject)),
        extension_oids=tuple(ext.oid.dotted_string for ext in extensions),
        requests_ca=requests_ca,
        requests_key_cert_sign=requests_cert_sign,
        public_key_der=key.public_bytes(*_SPKI),
    )


def certificate_facts(cert: x509.Certificate) -> CertificateFacts:
    """Read what the chain policy needs from a certificate."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca, path_length = constraints.ca, constraints.path_length
    except x509.ExtensionNotFound:
        is_ca, path_length = False, None
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        cert_sign = usage.key_cert_sign
    except x509.ExtensionNotFound:
        cert_sign = False
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_hex=f"{cert.serial_number:X}",
        not_before=cert.not_valid_before_utc.astimezone(UTC),
        not_after=cert.not_valid_after_utc.astimezone(UTC),
        is_ca=is_ca,
        path_length=path_length,
        key_cert_sign=cert_sign,
        public_key_sha256=hashlib.sha256(cert.public_key().public_bytes(*_SPKI)).hexdigest(),
        self_issued=cert.subject == cert.issuer,
        thumbprint_sha256=cert.fingerprint(hashes.SHA256()).hex().upper(),
    )


def load_certificates(data: bytes, *, what: str) -> list[x509.Certificate]:
    """Parse one or more PEM certificates (or one DER certificate).

    Raises:
        ChainRejectedError: nothing parseable (``reason="malformed"``).
    """
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ChainRejectedError(
            f"the {what} is not a certificate file ({exc})",
            remedy="Pass PEM certificates (-----BEGIN CERTIFICATE-----).",
            reason="malformed",
        ) from exc
    if not certs:
        raise ChainRejectedError(f"the {what} holds no certificate", reason="malformed")
    return certs


def spki(cert_or_key: x509.Certificate | object) -> bytes:
    """The DER SubjectPublicKeyInfo of a certificate or public key."""
    key = cert_or_key.public_key() if isinstance(cert_or_key, x509.Certificate) else cert_or_key
    der: bytes = key.public_bytes(*_SPKI)  # type: ignore[attr-defined]
    return der
