"""Building and signing certificates from the domain's plans (RFC 5280 profile).

Device certificates get: basicConstraints CA:FALSE (critical), keyUsage (critical),
extendedKeyUsage, subjectKeyIdentifier, authorityKeyIdentifier (key identifier of the issuer's
SKI). Nothing from the CSR except the public key.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import hsm
from station.adapters.ca.keys import translate
from station.domain.certificates import (
    MANIFEST_SIGNING_EKU,
    MANIFEST_SIGNING_OID,
    IssuancePlan,
    SignedCertificate,
)

_ATTRIBUTES = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME}
_ATTRIBUTES["OU"] = NameOID.ORGANIZATIONAL_UNIT_NAME
_EKUS = {
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    MANIFEST_SIGNING_EKU: x509.ObjectIdentifier(MANIFEST_SIGNING_OID),
}
#: EKU OIDs back to the names the domain decides with (anything else stays a dotted OID).
EKU_NAMES = {oid.dotted_string: name for name, oid in _EKUS.items()}
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
}


def name_of(subject: tuple[tuple[str, str], ...]) -> x509.Name:
    """Build an X.509 name from ``(("CN", ...), ("O", ...))`` pairs."""
    return x509.Name([x509.NameAttribute(_ATTRIBUTES[k], v) for k, v in subject])


def key_usage(usages: frozenset[str], *, ca: bool = False) -> x509.KeyUsage:
    """The keyUsage extension for a set of usage names."""
    return x509.KeyUsage(
        digital_signature="digital_signature" in usages,
        content_commitment=False,
        key_encipherment="key_encipherment" in usages,
        data_encipherment=False,
        key_agreement="key_agreement" in usages,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def skid_of(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    """The issuer's SKI (computed from its key when the extension is missing)."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


def build_and_sign(
    plan: IssuancePlan,
    public_key: CertificatePublicKeyTypes,
    *,
    issuer: x509.Certificate,
    signer: hsm.Signer,
) -> SignedCertificate:
    """Build the end-entity certificate ``plan`` describes and sign it with ``signer``.

    Raises:
        KeyCustodyError: the key's token failed during signing.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(name_of(plan.subject))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(plan.serial_number)
        .not_valid_before(plan.not_before)
        .not_valid_after(plan.not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(plan.key_usage), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(skid_of(issuer)),
            critical=False,
        )
    )
    if plan.extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_EKUS[name] for name in plan.extended_key_usage]),
            critical=False,
        )
    try:
        cert = builder.sign(signer, _HASHES[plan.hash_algorithm]())
    except hsm.HsmError as exc:
        raise translate(exc) from exc
    return signed_certificate(cert)


def signed_certificate(cert: x509.Certificate) -> SignedCertificate:
    """The issuance-log view of a certificate."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return SignedCertificate(
        pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        serial_hex=_even_hex(cert.serial_number),
        thumbprint_sha256=hashlib.sha256(der).hexdigest().upper(),
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def _even_hex(value: int) -> str:
    text = f"{value:X}"
    return text if len(text) % 2 == 0 else "0" + text


def throwaway_public_key() -> ec.EllipticCurvePublicKey:
    """A fresh P-256 public key whose private half is dropped at once (DPS verification certs)."""
    return ec.generate_private_key(ec.SECP256R1()).public_key()


def ca_certificate(
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate | None,
    signer: hsm.Signer,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None,
) -> x509.Certificate:
    """Build a CA certificate (self-signed root when ``issuer`` is ``None``). Lab use."""
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    aki_source = ski if issuer is None else skid_of(issuer)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(key_usage(frozenset({"digital_signature"}), ca=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(aki_source),
            critical=False,
        )
    )
    try:
        return builder.sign(signer, hashes.SHA256())
    except hsm.HsmError as exc:
        raise translate(exc) from exc
