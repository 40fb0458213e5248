"""The lab's Azure Device Registry (ADR) namespace: one credential, credential policies, issuance.

DPS certificate management (preview, api-version ``2025-07-01-preview``) issues each device an
operational certificate at registration from a PKI that ADR keeps per namespace: one
**credential** (the namespace's root CA) and **policies** (each an issuing CA signed by that root,
or by the customer's own root, and a validity in days). Enrollments and groups name a policy;
a device that registers with a ``csr`` gets ``registrationState.issuedCertificateChain``: leaf,
issuing CA, root, each base64 DER.

In the lab the root and issuing-CA keys are EC P-384 keys in the active PKCS#11 token
(SoftHSM2), opened through :mod:`hsm` for each signature; the records hold certificates and key
URIs only. What is confirmed of the service and what the lab assumes is listed in
docs/lab-dps.md, "Operational certificates".
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import hsm
from station.domain.errors import LabDpsError
from station_lab.dps import errors as codes
from station_lab.dps.errors import ApiError
from station_lab.dps.store import DpsStore

MIN_VALIDITY_DAYS: Final = 7  # the service's range (7-90 days; see docs/lab-dps.md)
MAX_VALIDITY_DAYS: Final = 90
DEFAULT_VALIDITY_DAYS: Final = 30
ROOT_VALIDITY_DAYS: Final = 3650
ISSUING_VALIDITY_DAYS: Final = 1825
MIN_ROOT_DAYS_LEFT: Final = 365  # bring your own root: at least a year left (confirmed)
MAX_CSR_BYTES: Final = 4096
CREDENTIAL_KEY: Final = "credential"
_POLICY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{1,48}[A-Za-z0-9]$")  # 3-50 characters


@dataclass(frozen=True)
class IssuedChain:
    """What a registration with a CSR gets: the chain and the leaf's facts for the hub registry."""

    chain_der: tuple[bytes, ...]  # leaf, issuing CA, root
    thumbprint: str
    not_after: str
    issuer: str
    policy: str

    def encoded(self) -> list[str]:
        """The chain as the response carries it: base64 DER, leaf first."""
        return [base64.b64encode(der).decode("ascii") for der in self.chain_der]


class DeviceRegistry:
    """An ADR namespace with certificate management enabled (the lab's stand-in).

    Args:
        store: the stand-in's records (table ``adr``: the credential and each policy).
        now: the UTC wall clock (injectable for tests).
        pins: where the token PIN comes from (default: ``$STATION_PKCS11_PIN``).
    """

    def __init__(
        self,
        store: DpsStore,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        pins: hsm.PinSource | None = None,
    ) -> None:
        self.store = store
        self._now = now
        self._pins = pins
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ setup (ARM side)
    def create_credential(self, namespace: str, key_uri: str) -> x509.Certificate:
        """Enable certificate management: make the namespace's root CA.

        Its key is generated at ``key_uri`` (EC P-384). A namespace has one credential; a second
        call keeps the first.
        """
        existing = self.store.get("adr", CREDENTIAL_KEY)
        if existing is not None:
            return _cert(existing["der"])
        key = _generate(key_uri, self._pins)
        try:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{namespace} root CA")])
            now = self._now()
            cert = (
                _ca_builder(
                    name, name, _ec(key.public_key()), now, ROOT_VALIDITY_DAYS, path_length=1
                )
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(_ec(key.public_key())),
                    False,
                )
                .sign(key, hashes.SHA384())
            )
        finally:
            key.close()
        self.store.put(
            "adr",
            CREDENTIAL_KEY,
            {"namespace": namespace, "keyUri": key_uri, "der": _b64(cert)},
        )
        return cert

    def create_policy(
        self, name: str, key_uri: str, *, validity_days: int = DEFAULT_VALIDITY_DAYS
    ) -> x509.Certificate:
        """Create a policy: an issuing CA (key generated at ``key_uri``) signed by the root.

        Raises:
            LabDpsError: no credential yet, a bad name or validity, or the name is taken.
        """
        credential = self._credential()
        _check_policy(name, validity_days)
        if self.store.get("adr", _policy_key(name)) is not None:
            raise LabDpsError(f"the credential policy {name!r} exists", remedy="Pick another name.")
        root = _cert(credential["der"])
        key = _generate(key_uri, self._pins)
        try:
            issuing = self._issuing_certificate(name, _ec(key.public_key()), root, credential)
        finally:
            key.close()
        self.store.put(
            "adr",
            _policy_key(name),
            {
                "name": name,
                "keyUri": key_uri,
                "validityDays": validity_days,
                "status": "active",
                "chain": [_b64(issuing), credential["der"]],
            },
        )
        return issuing

    def policy_csr(self, name: str) -> x509.CertificateSigningRequest:
        """Bring your own root, step 1: the CSR of the policy's issuing-CA key, for your root."""
        policy = self._policy(name)
        key = hsm.open_signer(policy["keyUri"], pin_source=self._pins)
        try:
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} issuing CA")])
            return (
                x509.CertificateSigningRequestBuilder()
                .subject_name(subject)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(key, hashes.SHA384())
            )
        finally:
            key.close()

    def attach_issuing_certificate(
        self, name: str, issuing: x509.Certificate, root: x509.Certificate
    ) -> None:
        """Bring your own root, step 2: the issuing CA your root signed replaces the policy's.

        Refused as the service refuses: a root that is not ECC, whose path length is not 1, with
        less than 365 days left, or that did not sign ``issuing``; an issuing certificate for
        another key.
        """
        policy = self._policy(name)
        _check_own_root(root, self._now())
        try:
            issuing.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise LabDpsError(
                "the issuing-CA certificate was not signed by that root",
                remedy="Sign the policy's CSR with the root you upload.",
            ) from exc
        key = hsm.open_signer(policy["keyUri"], pin_source=self._pins)
        try:
            same = _spki(key.public_key()) == _spki(issuing.public_key())
        finally:
            key.close()
        if not same:
            raise LabDpsError(
                "the issuing-CA certificate is not for the policy's key",
                remedy="Sign the CSR `policy_csr` returned, not another one.",
            )
        policy["chain"] = [_b64(issuing), _b64(root)]
        self.store.put("adr", _policy_key(name), policy)

    def revoke_policy(self, name: str) -> None:
        """Revoke a policy: it issues nothing until it is renewed (:meth:`renew_policy`)."""
        policy = self._policy(name)
        policy["status"] = "revoked"
        self.store.put("adr", _policy_key(name), policy)

    def renew_policy(self, name: str) -> None:
        """A revoked policy gets a new issuing CA (new key at ``<keyUri>-<n>``) and is active."""
        policy = self._policy(name)
        credential = self._credential()
        generation = int(policy.get("generation", 1)) + 1
        uri = f"{policy['keyUri']}-{generation}"
        key = _generate(uri, self._pins)
        try:
            root = _cert(credential["der"])
            issuing = self._issuing_certificate(name, _ec(key.public_key()), root, credential)
        finally:
            key.close()
        policy |= {
            "keyUri": uri,
            "generation": generation,
            "status": "active",
            "chain": [_b64(issuing), credential["der"]],
        }
        self.store.put("adr", _policy_key(name), policy)

    def policies(self) -> list[dict[str, Any]]:
        """Every policy (name, validity, status, chain), without key URIs."""
        return [
            {k: v for k, v in doc.items() if k not in ("keyUri", "generation")}
            for doc in self.store.all("adr")
            if "validityDays" in doc
        ]

    def policy_exists(self, name: str) -> bool:
        """Whether a policy of that name exists (revoked or not)."""
        return self.store.get("adr", _policy_key(name)) is not None

    # ------------------------------------------------------------------ issuance (DPS side)
    def issue(self, policy_name: str, registration_id: str, csr_b64: Any) -> IssuedChain:
        """Check the device's CSR and issue its operational certificate under the policy.

        Raises:
            ApiError: the CSR is malformed, badly signed, names another CN, or its key is not
                EC P-384 (400); the policy does not exist or is revoked (see
                :data:`station_lab.dps.errors.CREDENTIAL_POLICY_UNAVAILABLE`).
        """
        csr = parse_csr(csr_b64)
        check_csr(csr, registration_id)
        policy = self.store.get("adr", _policy_key(policy_name))
        if policy is None or policy.get("status") != "active":
            state = "does not exist" if policy is None else "is revoked"
            raise ApiError(
                codes.CREDENTIAL_POLICY_UNAVAILABLE,
                f"The credential policy {policy_name!r} {state}; no certificate was issued.",
            )
        issuing = _cert(policy["chain"][0])
        now = self._now()
        public = csr.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, registration_id)]))
            .issuer_name(issuing.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(
                min(now + timedelta(days=int(policy["validityDays"])), issuing.not_valid_after_utc)
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(_ec(issuing.public_key())),
                False,
            )
        )
        with self._lock:  # one signing session at a time per lab DPS
            key = hsm.open_signer(policy["keyUri"], pin_source=self._pins)
            try:
                leaf = builder.sign(key, hashes.SHA384())
            finally:
                key.close()
        chain = (
            leaf.public_bytes(serialization.Encoding.DER),
            *(base64.b64decode(der) for der in policy["chain"]),
        )
        return IssuedChain(
            chain_der=chain,
            thumbprint=leaf.fingerprint(hashes.SHA256()).hex().upper(),
            not_after=leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            issuer=issuing.subject.rfc4514_string(),
            policy=policy_name,
        )

    # ------------------------------------------------------------------ helpers
    def _credential(self) -> dict[str, Any]:
        credential = self.store.get("adr", CREDENTIAL_KEY)
        if credential is None:
            raise LabDpsError(
                "certificate management is not enabled in the lab's device registry",
                remedy="Create the credential first (LocalDps.enable_certificate_management).",
            )
        return credential

    def _policy(self, name: str) -> dict[str, Any]:
        policy = self.store.get("adr", _policy_key(name))
        if policy is None:
            raise LabDpsError(
                f"the lab's device registry has no credential policy {name!r}",
                remedy="Create it first (LocalDps.create_credential_policy).",
            )
        return policy

    def _issuing_certificate(
        self,
        name: str,
        public: ec.EllipticCurvePublicKey,
        root: x509.Certificate,
        credential: dict[str, Any],
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} issuing CA")])
        builder = _ca_builder(
            subject, root.subject, public, self._now(), ISSUING_VALIDITY_DAYS, path_length=0
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_ec(root.public_key())), False
        )
        root_key = hsm.open_signer(credential["keyUri"], pin_source=self._pins)
        try:
            return builder.sign(root_key, hashes.SHA384())
        finally:
            root_key.close()


def parse_csr(encoded: Any) -> x509.CertificateSigningRequest:
    """The ``csr`` field: base64 DER PKCS#10 without PEM armour (else 400, CSR_MALFORMED)."""
    if not isinstance(encoded, str) or not encoded or len(encoded) > MAX_CSR_BYTES * 2:
        raise ApiError(codes.CSR_MALFORMED, "'csr' must be a base64 DER PKCS#10 request.")
    try:
        der = base64.b64decode(encoded, validate=True)
        return x509.load_der_x509_csr(der)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(
            codes.CSR_MALFORMED,
            "'csr' is not a base64 DER PKCS#10 request (send DER without PEM headers).",
        ) from exc


def check_csr(csr: x509.CertificateSigningRequest, registration_id: str) -> None:
    """The service's CSR rules: signature valid, CN = registration ID, key EC P-384."""
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):  # an unknown signature algorithm is not valid
        valid = False
    if not valid:
        raise ApiError(codes.CSR_SIGNATURE, "The CSR's signature does not verify.")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if len(names) == 1 else ""
    if common_name != registration_id:
        raise ApiError(
            codes.CSR_SUBJECT,
            f"The CSR's common name {common_name!r} is not the registration ID "
            f"{registration_id!r}.",
        )
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise ApiError(
            codes.CSR_KEY, "The CSR's key must be an EC P-384 key (RSA is not supported)."
        )


def _check_own_root(root: x509.Certificate, now: datetime) -> None:
    """Bring your own root: ECC, path length 1, at least 365 days left (LabDpsError if not)."""
    if not isinstance(root.public_key(), ec.EllipticCurvePublicKey):
        raise LabDpsError("your root must be an ECC key (RSA is not accepted)")
    try:
        basic = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca or basic.path_length != 1:
        raise LabDpsError("your root must be a CA with path length 1")
    if root.not_valid_after_utc - now < timedelta(days=MIN_ROOT_DAYS_LEFT):
        raise LabDpsError(f"your root must have at least {MIN_ROOT_DAYS_LEFT} days left")


def _check_policy(name: str, validity_days: int) -> None:
    if not _POLICY_NAME.match(name):
        raise LabDpsError(
            f"{name!r} is not a policy name",
            remedy="Use 3 to 50 letters, digits and hyphens (not first or last).",
        )
    if not MIN_VALIDITY_DAYS <= validity_days <= MAX_VALIDITY_DAYS:
        raise LabDpsError(
            f"a policy's validity is {MIN_VALIDITY_DAYS} to {MAX_VALIDITY_DAYS} days, "
            f"not {validity_days}",
        )


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public: ec.EllipticCurvePublicKey,
    now: datetime,
    days: int,
    *,
    path_length: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
    )


def _ec(public: object) -> ec.EllipticCurvePublicKey:
    """The registry's keys are all EC P-384 (a key of another type is a broken record)."""
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise LabDpsError("the lab device registry holds a key that is not an EC key")
    return public


def _generate(uri: str, pins: hsm.PinSource | None) -> hsm.Signer:
    try:
        return hsm.generate_key(uri, hsm.KeyAlgorithm.EC_P384, pin_source=pins)
    except hsm.HsmError as exc:
        raise LabDpsError(f"the lab registry cannot make a key at {uri}: {exc}") from exc


def _policy_key(name: str) -> str:
    return f"policy:{name.lower()}"


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def _cert(b64: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(b64))


def _spki(public: Any) -> bytes:
    return bytes(
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
