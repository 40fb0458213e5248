"""Certificate issuance policy and profiles, as pure values and functions.

The CA adapter turns bytes into facts (:class:`CsrFacts`, :class:`CertificateFacts`) and plans into
bytes; everything that *decides* lives here, so it can be tested without a key or a file:

* which CSRs are acceptable (:func:`check_csr`): the signature verifies, the key is P-256, P-384 or
  RSA >= 2048, the CSR is not absurdly large, it does not ask to be a CA, and its CN (if any) is the
  registration ID being issued. Everything else a CSR asks for (SANs, EKUs, other extensions,
  other subject attributes) is ignored: the certificate is built from the profile alone;
* what a device certificate contains (:func:`plan_issuance`), from a :class:`CertificateProfile`;
* serial numbers (:func:`serial_from_random`): positive, 127 random bits, at most 20 octets;
* the per-batch quota (:func:`check_quota`);
* whether an imported intermediate is acceptable (:func:`check_intermediate`).
"""

from __future__ import annotations

import base64
import binascii
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from station.domain.errors import (
    ChainRejectedError,
    CsrRejectedError,
    InvalidRegistrationIdError,
    OperationalKeyError,
    OwnRootRefusedError,
    ProfileError,
    QuotaExceededError,
    ValidationError,
)
from station.domain.registration import normalize_registration_id

MAX_CSR_BYTES = 16_384
"""A CSR larger than this is refused before it is parsed (a P-384 CSR is about 400 bytes)."""
MAX_CSR_EXTENSIONS = 32
MAX_SUBJECT_ATTRIBUTES = 16
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
SERIAL_BYTES = 16
ALLOWED_CURVES = ("secp256r1", "secp384r1")
ALLOWED_KEY_USAGES = frozenset({"digital_signature", "key_agreement", "key_encipherment"})
MANIFEST_SIGNING_EKU = "manifest_signing"
"""The extended key usage that makes a certificate a batch-manifest signer, and nothing else."""
MANIFEST_SIGNING_OID = "2.25.61186853086379216732848569641939349386"
"""Its OID: a UUID-derived OID (ITU-T X.667), owned by nobody else, so no device certificate,
TLS certificate or other CA's product can carry it by accident."""
MANIFEST_SIGNING_PROFILE = "manifest-signing"
MANIFEST_SIGNER_OU = "batch manifest signing"
ALLOWED_EXTENDED_KEY_USAGES = frozenset({"client_auth", "server_auth", MANIFEST_SIGNING_EKU})
MAX_VALIDITY_DAYS = 50 * 366
VERIFICATION_PROFILE = "dps-verification"


# --------------------------------------------------------------------------- facts from adapters
@dataclass(frozen=True)
class CsrFacts:
    """What the CA adapter read from a CSR. The policy decides on these alone.

    Attributes:
        size: DER size in bytes.
        signature_valid: the CSR's self-signature verifies with its own public key.
        key_type: ``ec``, ``rsa``, or the name of another algorithm (``ed25519``, ``dsa``, ...).
        curve: the EC curve name (``secp256r1``), empty for other types.
        key_bits: the key size in bits.
        rsa_exponent: the RSA public exponent (0 for other types).
        common_names: every CN in the subject, in order.
        subject_attributes: how many attributes the subject holds.
        extension_oids: dotted OIDs of the extensions the CSR requests (logged, never copied).
        requests_ca: the CSR requests basicConstraints CA:TRUE.
        requests_key_cert_sign: the CSR requests keyCertSign or cRLSign.
        public_key_der: the SubjectPublicKeyInfo, DER (the only thing the certificate takes).
    """

    size: int
    signature_valid: bool
    key_type: str
    curve: str
    key_bits: int
    common_names: tuple[str, ...]
    subject_attributes: int
    extension_oids: tuple[str, ...]
    requests_ca: bool
    requests_key_cert_sign: bool
    public_key_der: bytes
    rsa_exponent: int = 0


@dataclass(frozen=True)
class CertificateFacts:
    """What the CA adapter read from one certificate of an imported chain."""

    subject: str
    issuer: str
    serial_hex: str
    not_before: datetime
    not_after: datetime
    is_ca: bool
    path_length: int | None
    key_cert_sign: bool
    public_key_sha256: str
    self_issued: bool
    thumbprint_sha256: str


#: what every lab root's subject says (``station ca lab-root``): its chains are for the lab only
LAB_ROOT_MARK = "NOT FOR PRODUCTION"


def from_lab_root(cert: CertificateFacts) -> bool:
    """Whether ``cert`` is a lab root or was signed by one: never a production chain."""
    return LAB_ROOT_MARK in cert.issuer or LAB_ROOT_MARK in cert.subject


@dataclass(frozen=True)
class ChainFacts:
    """An intermediate certificate checked against the station's key and a root.

    Attributes:
        intermediate: the certificate the station will sign with.
        root: the trust anchor it must chain to.
        others: certificates between the intermediate and the root (usually none).
        matches_key: the intermediate's public key is the station key's public key.
        chain_verified: every signature from the intermediate up to the root verifies.
        problem: why the chain did not verify (empty when it did).
    """

    intermediate: CertificateFacts
    root: CertificateFacts
    others: tuple[CertificateFacts, ...]
    matches_key: bool
    chain_verified: bool
    problem: str = ""


@dataclass(frozen=True)
class KeyDescription:
    """Where the CA key lives and what its holder promises (shown by ``station ca status``)."""

    uri: str
    backend: str
    location: str
    algorithm: str
    sensitive: bool
    extractable: bool
    generated_on_device: bool
    development_only: bool
    public_key_sha256: str


@dataclass(frozen=True)
class SignedCertificate:
    """A certificate the CA adapter built and signed, with the fields the issuance log keeps."""

    pem: str
    serial_hex: str
    thumbprint_sha256: str
    subject: str
    not_before: datetime
    not_after: datetime


# --------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class CertificateProfile:
    """A device-certificate profile (``templates/certs/<name>.toml``, read by the CA adapter).

    ``organization`` and ``organizational_unit`` are templates with the placeholders
    ``{organization}``, ``{product}`` and ``{batch}``; empty ones are left out of the subject.
    """

    name: str
    validity_days: int
    backdate_minutes: int = 5
    organization: str = ""
    organizational_unit: str = ""
    key_usage: tuple[str, ...] = ("digital_signature",)
    extended_key_usage: tuple[str, ...] = ("client_auth",)
    hash_algorithm: str = "sha256"
    description: str = ""

    def validate(self) -> None:
        """Check the profile describes a device (end-entity) certificate we are willing to sign.

        Raises:
            ProfileError: naming the offending field.
        """
        if not 1 <= self.validity_days <= MAX_VALIDITY_DAYS:
            raise _profile_error(self.name, "validity_days", f"between 1 and {MAX_VALIDITY_DAYS}")
        if not 0 <= self.backdate_minutes <= 24 * 60:
            raise _profile_error(self.name, "backdate_minutes", "between 0 and 1440")
        bad = set(self.key_usage) - ALLOWED_KEY_USAGES
        if bad or not self.key_usage:
            raise _profile_error(
                self.name, "key_usage", f"a non-empty subset of {sorted(ALLOWED_KEY_USAGES)}"
            )
        bad = set(self.extended_key_usage) - ALLOWED_EXTENDED_KEY_USAGES
        if bad:
            raise _profile_error(
                self.name,
                "extended_key_usage",
                f"a subset of {sorted(ALLOWED_EXTENDED_KEY_USAGES)}",
            )
        if self.hash_algorithm not in ("sha256", "sha384"):
            raise _profile_error(self.name, "hash_algorithm", "sha256 or sha384")
        if MANIFEST_SIGNING_EKU in self.extended_key_usage and (
            self.extended_key_usage != (MANIFEST_SIGNING_EKU,)
            or self.key_usage != ("digital_signature",)
        ):
            # a manifest signer that could also log in as a device (or the reverse) is the
            # confusion this usage exists to prevent
            raise _profile_error(
                self.name,
                "extended_key_usage",
                f"only {MANIFEST_SIGNING_EKU!r}, with key_usage only 'digital_signature', "
                "in a manifest-signing profile",
            )
        for key in ("organization", "organizational_unit"):
            template = getattr(self, key)
            for _, placeholder, _, _ in string.Formatter().parse(template):
                if placeholder is not None and placeholder not in SubjectContext.PLACEHOLDERS:
                    raise _profile_error(
                        self.name,
                        key,
                        f"a template using only {sorted(SubjectContext.PLACEHOLDERS)}",
                    )

    @property
    def signs_manifests(self) -> bool:
        """Whether this profile certifies the batch-manifest key (never a device)."""
        return MANIFEST_SIGNING_EKU in self.extended_key_usage


def _profile_error(name: str, key: str, expected: str) -> ProfileError:
    return ProfileError(
        f"certificate profile {name!r}: '{key}' must be {expected}",
        remedy=f"Fix '{key}' in templates/certs/{name}.toml.",
        profile=name,
        key=key,
    )


@dataclass(frozen=True)
class SubjectContext:
    """Values a profile's subject templates may use."""

    PLACEHOLDERS = frozenset({"organization", "product", "batch"})

    organization: str = ""
    product: str = ""
    batch: str = ""


# --------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class IssuancePlan:
    """Exactly what goes into a certificate: the adapter adds the public key, SKI and AKI."""

    serial_number: int
    subject: tuple[tuple[str, str], ...]  # ("CN", ...), ("O", ...), ("OU", ...)
    not_before: datetime
    not_after: datetime
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...]
    hash_algorithm: str
    profile: str
    registration_id: str = ""

    @property
    def serial_hex(self) -> str:
        """The serial as upper-case hex with an even number of digits (as DPS shows it)."""
        return serial_hex(self.serial_number)


def serial_hex(serial: int) -> str:
    """Format a serial number as upper-case hex with an even number of digits."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def serial_from_random(random: bytes) -> int:
    """Turn random bytes into a positive certificate serial (RFC 5280 4.1.2.2).

    The top bit is cleared so the DER INTEGER needs no sign octet and stays within 20 octets.

    Args:
        random: exactly :data:`SERIAL_BYTES` random bytes (127 bits are used).

    Raises:
        ValueError: wrong length, or all used bits zero (draw again).
    """
    if len(random) != SERIAL_BYTES:
        raise ValueError(f"need {SERIAL_BYTES} random bytes, got {len(random)}")
    value = int.from_bytes(random, "big") & ((1 << (8 * SERIAL_BYTES - 1)) - 1)
    if value < (1 << 64):
        # fewer than 64 significant bits would weaken the >= 64-bit-entropy promise's spirit
        raise ValueError("serial too small; draw again")
    return value


def check_csr_size(size: int) -> None:
    """Refuse a CSR larger than :data:`MAX_CSR_BYTES` before anything parses it.

    Raises:
        CsrRejectedError: ``reason="too_large"`` or ``"empty"``.
    """
    if size == 0:
        raise _reject("empty", "the CSR is empty")
    if size > MAX_CSR_BYTES:
        raise _reject(
            "too_large", f"the CSR is {size} bytes, the limit is {MAX_CSR_BYTES}", size=size
        )


def check_csr(facts: CsrFacts, registration_id: str) -> str:
    """Apply the CSR policy and return the normalised registration ID to issue for.

    Args:
        facts: what the adapter read from the CSR.
        registration_id: the registration ID the station (or the admin) decided on.

    Raises:
        CsrRejectedError: with ``details["reason"]`` one of ``too_large``, ``bad_signature``,
            ``key_type``, ``weak_key``, ``requests_ca``, ``requests_key_cert_sign``,
            ``too_many_extensions``, ``too_many_attributes``, ``invalid_cn``, ``cn_mismatch``.
        InvalidRegistrationIdError: ``registration_id`` itself breaks the DPS X.509 rules.
    """
    wanted = normalize_registration_id(registration_id, x509=True)
    check_csr_size(facts.size)
    if not facts.signature_valid:
        raise _reject("bad_signature", "the CSR's signature does not verify with its own key")
    if facts.key_type == "ec":
        if facts.curve not in ALLOWED_CURVES:
            raise _reject(
                "key_type",
                f"EC curve {facts.curve or 'unknown'} is not allowed (P-256 or P-384)",
                curve=facts.curve,
            )
    elif facts.key_type == "rsa":
        if facts.key_bits < MIN_RSA_BITS:
            raise _reject(
                "weak_key",
                f"an RSA key of {facts.key_bits} bits is too weak (at least {MIN_RSA_BITS})",
                bits=facts.key_bits,
            )
        if facts.key_bits > MAX_RSA_BITS:
            raise _reject(
                "too_large",
                f"an RSA key of {facts.key_bits} bits is larger than {MAX_RSA_BITS}",
                bits=facts.key_bits,
            )
        if facts.rsa_exponent < 65537 or facts.rsa_exponent % 2 == 0:
            raise _reject(
                "weak_key",
                f"RSA public exponent {facts.rsa_exponent} is not allowed (65537 or larger, odd)",
            )
    else:
        raise _reject(
            "key_type",
            f"{facts.key_type} keys are not allowed (P-256, P-384 or RSA >= {MIN_RSA_BITS})",
            key_type=facts.key_type,
        )
    if facts.requests_ca:
        raise _reject("requests_ca", "the CSR asks to be a CA (basicConstraints CA:TRUE)")
    if facts.requests_key_cert_sign:
        raise _reject(
            "requests_key_cert_sign", "the CSR asks for keyCertSign/cRLSign (CA key usages)"
        )
    if len(facts.extension_oids) > MAX_CSR_EXTENSIONS:
        raise _reject(
            "too_many_extensions",
            f"the CSR requests {len(facts.extension_oids)} extensions (limit {MAX_CSR_EXTENSIONS})",
        )
    if facts.subject_attributes > MAX_SUBJECT_ATTRIBUTES:
        raise _reject(
            "too_many_attributes",
            f"the CSR subject has {facts.subject_attributes} attributes "
            f"(limit {MAX_SUBJECT_ATTRIBUTES})",
        )
    if len(facts.common_names) > 1:
        raise _reject("invalid_cn", "the CSR subject has more than one CN")
    if facts.common_names:
        cn = facts.common_names[0]
        try:
            normalized = normalize_registration_id(cn, x509=True)
        except InvalidRegistrationIdError as exc:
            raise _reject(
                "invalid_cn",
                f"the CSR's CN is not a valid registration ID: {exc.message}",
                cn=cn,
                rule=exc.details.get("rule", ""),
            ) from exc
        if normalized != wanted:
            raise _reject(
                "cn_mismatch",
                f"the CSR's CN {cn!r} is not the registration ID {wanted!r}",
                cn=cn,
                registration_id=wanted,
            )
    return wanted


#: DPS certificate management issues operational certificates for EC P-384 keys only.
OPERATIONAL_CURVE = "secp384r1"
#: Bring your own root: what Azure Device Registry requires of the root that signs a policy's
#: issuing CA (ECC, path length 1, at least a year left).
OWN_ROOT_MIN_DAYS_LEFT = 365
OWN_ROOT_PATH_LENGTH = 1
ISSUING_CA_PROFILE = "adr-issuing-ca"


@dataclass(frozen=True)
class OwnRootFacts:
    """The station root that is to sign a cloud issuing-CA CSR, as the CA adapter read it."""

    certificate: CertificateFacts
    key_type: str  # "ec", "rsa", ...
    matches_key: bool  # the root certificate is for the key in the HSM


def check_own_root(root: OwnRootFacts, *, now: datetime) -> None:
    """Azure Device Registry's rules for your own root: ECC, path length 1, 365 days left.

    Raises:
        OwnRootRefusedError: ``reason`` ``key_type``, ``path_length``, ``expiring`` or
            ``key_mismatch``.
    """
    cert = root.certificate
    if not root.matches_key:
        raise _own_root(
            "key_mismatch",
            "the root certificate is not for the root key in the HSM",
            "Pass the root certificate that belongs to --root-key.",
        )
    if root.key_type != "ec":
        raise _own_root(
            "key_type",
            f"the root is an {root.key_type.upper()} key; the service takes ECC roots only",
            "Use an ECC (P-256 or P-384) root for DPS certificate management.",
        )
    if not cert.is_ca or cert.path_length != OWN_ROOT_PATH_LENGTH:
        raise _own_root(
            "path_length",
            f"the root's path length is {cert.path_length}, the service requires "
            f"{OWN_ROOT_PATH_LENGTH}",
            "Use a root with basicConstraints CA:TRUE, pathlen:1.",
        )
    left = cert.not_after - now
    if left < timedelta(days=OWN_ROOT_MIN_DAYS_LEFT):
        raise _own_root(
            "expiring",
            f"the root has {max(left.days, 0)} days left; the service requires at least "
            f"{OWN_ROOT_MIN_DAYS_LEFT}",
            "Renew the root before signing issuing CAs with it.",
        )


def check_issuing_csr(facts: CsrFacts) -> str:
    """The cloud-generated issuing-CA CSR: a valid signature over an EC key and a CN.

    Returns:
        The CSR's common name (the issuing CA's subject).

    Raises:
        OwnRootRefusedError: ``reason`` ``bad_signature``, ``key_type`` or ``invalid_cn``.
    """
    if not facts.signature_valid:
        raise _own_root(
            "bad_signature",
            "the issuing-CA CSR's signature does not verify",
            "Download the policy's CSR again from Azure Device Registry.",
        )
    if facts.key_type != "ec":
        raise _own_root(
            "key_type",
            f"the issuing-CA CSR is for an {facts.key_type.upper()} key; the service uses ECC",
            "Check that the file is the policy's CSR from Azure Device Registry.",
        )
    if len(facts.common_names) != 1 or not facts.common_names[0]:
        raise _own_root(
            "invalid_cn",
            "the issuing-CA CSR must name exactly one CN",
            "Check that the file is the policy's CSR from Azure Device Registry.",
        )
    return facts.common_names[0]


def plan_issuing_ca(
    common_name: str, *, serial: int, now: datetime, days: int, root_not_after: datetime
) -> IssuancePlan:
    """The issuing-CA certificate: CA, path length 0, cut at the root's expiry."""
    if days < 1:
        raise ValidationError("an issuing CA is valid for at least one day", days=days)
    return IssuancePlan(
        serial_number=serial,
        subject=(("CN", common_name),),
        not_before=now - timedelta(minutes=5),
        not_after=min(now + timedelta(days=days), root_not_after),
        key_usage=frozenset({"key_cert_sign", "crl_sign"}),
        extended_key_usage=(),
        hash_algorithm="sha256",
        profile=ISSUING_CA_PROFILE,
    )


def _own_root(reason: str, why: str, remedy: str) -> OwnRootRefusedError:
    return OwnRootRefusedError(why, remedy=remedy, reason=reason)


def check_operational_csr(facts: CsrFacts, registration_id: str) -> None:
    """The rules DPS applies to a registration's ``csr`` (certificate management, preview).

    The signature verifies, the key is EC P-384 and the subject's only CN is the registration
    ID. Checked on the line so that a board that would fail in the field fails here.

    Raises:
        OperationalKeyError: ``details["reason"]`` ``bad_signature``, ``key_type`` or
            ``cn_mismatch``.
    """
    if not facts.signature_valid:
        raise _operational(
            "bad_signature",
            "the board's CSR for its operational key does not verify with that key",
            "Set the board aside for QA: its secure element signs wrongly (firmware fault).",
        )
    if facts.key_type != "ec" or facts.curve != OPERATIONAL_CURVE:
        raise _operational(
            "key_type",
            f"the operational key is {facts.curve or facts.key_type}, DPS issues for EC P-384 only",
            "Set the board aside for QA: update its firmware so keygen makes P-384 keys.",
            curve=facts.curve or facts.key_type,
        )
    if facts.common_names != (registration_id,):
        shown = ", ".join(facts.common_names) or "none"
        raise _operational(
            "cn_mismatch",
            f"the operational CSR names CN {shown}, not the registration ID {registration_id}",
            "Set the board aside for QA: its firmware must put the registration ID in the CSR.",
            common_names=list(facts.common_names),
        )


def _operational(reason: str, why: str, remedy: str, **details: Any) -> OperationalKeyError:
    return OperationalKeyError(why, remedy=remedy, reason=reason, **details)


def _reject(reason: str, why: str, **details: Any) -> CsrRejectedError:
    return CsrRejectedError(
        f"CSR refused: {why}",
        remedy="Have the board generate a fresh key and CSR with CN = its registration ID; "
        "if this repeats, quarantine the board.",
        reason=reason,
        **details,
    )


def plan_issuance(
    profile: CertificateProfile,
    registration_id: str,
    *,
    serial: int,
    now: datetime,
    ca_not_after: datetime,
    context: SubjectContext | None = None,
) -> IssuancePlan:
    """Plan a device certificate: CN = registration ID, O/OU from the profile, usages, validity.

    The validity starts ``backdate_minutes`` before ``now`` (board clocks drift) and never ends
    after the CA's own ``not_after``.

    Raises:
        InvalidRegistrationIdError: the registration ID breaks the X.509 rules.
        CaError: the CA certificate has expired.
    """
    cn = normalize_registration_id(registration_id, x509=True)
    values = context or SubjectContext()
    subject: list[tuple[str, str]] = [("CN", cn)]
    for attr, template in (("O", profile.organization), ("OU", profile.organizational_unit)):
        text = template.format(
            organization=values.organization, product=values.product, batch=values.batch
        ).strip()
        if text:
            if len(text) > 64 or any(ord(c) < 0x20 for c in text):
                raise _profile_error(profile.name, attr, "at most 64 printable characters")
            subject.append((attr, text))
    not_before, not_after = _validity(profile, now, ca_not_after)
    return IssuancePlan(
        serial_number=serial,
        subject=tuple(subject),
        not_before=not_before,
        not_after=not_after,
        key_usage=frozenset(profile.key_usage),
        extended_key_usage=profile.extended_key_usage,
        hash_algorithm=profile.hash_algorithm,
        profile=profile.name,
        registration_id=cn,
    )


def plan_verification(
    code: str, *, serial: int, now: datetime, ca_not_after: datetime
) -> IssuancePlan:
    """Plan a DPS proof-of-possession certificate: subject CN = the verification code.

    Raises:
        ValidationError: the code is empty, too long or not printable ASCII.
    """
    text = code.strip()
    if not text or len(text) > 64 or not all(c.isascii() and c.isalnum() for c in text):
        raise ValidationError(
            f"verification code {code!r} is not a DPS verification code",
            remedy="Copy the code exactly as DPS shows it (letters and digits, at most 64).",
            code=code,
        )
    return IssuancePlan(
        serial_number=serial,
        subject=(("CN", text),),
        not_before=now - timedelta(minutes=5),
        not_after=min(now + timedelta(days=30), ca_not_after),
        key_usage=frozenset({"digital_signature"}),
        extended_key_usage=("client_auth",),
        hash_algorithm="sha256",
        profile=VERIFICATION_PROFILE,
    )


def plan_manifest_signing(
    profile: CertificateProfile,
    station_id: str,
    *,
    serial: int,
    now: datetime,
    ca_not_after: datetime,
) -> IssuancePlan:
    """Plan the batch-manifest key's certificate: CN = the station ID, the manifest-signing EKU.

    The CN is what a verifier compares with the station a manifest header names, so a manifest
    key of one station cannot speak for another.

    Raises:
        ProfileError: ``profile`` is not a manifest-signing profile.
        ValidationError: the station ID cannot be a certificate CN.
    """
    if not profile.signs_manifests:
        raise _profile_error(profile.name, "extended_key_usage", f"[{MANIFEST_SIGNING_EKU!r}]")
    if not station_id or len(station_id) > 64 or not station_id.isprintable():
        raise ValidationError(
            f"station ID {station_id!r} cannot name a manifest signing certificate",
            remedy="Set [station] id to at most 64 printable characters.",
        )
    not_before, not_after = _validity(profile, now, ca_not_after)
    return IssuancePlan(
        serial_number=serial,
        subject=(("CN", station_id), ("OU", MANIFEST_SIGNER_OU)),
        not_before=not_before,
        not_after=not_after,
        key_usage=frozenset(profile.key_usage),
        extended_key_usage=profile.extended_key_usage,
        hash_algorithm=profile.hash_algorithm,
        profile=profile.name,
    )


def manifest_signer_refusal(
    *, extended_key_usage: frozenset[str], key_usage: frozenset[str], is_ca: bool
) -> str:
    """Why a certificate may not sign batch manifests, or ``""`` when it may.

    Args:
        extended_key_usage: the EKU names (``client_auth``, ``manifest_signing``, or a dotted OID
            for anything else); empty when the certificate has no EKU extension.
        key_usage: the keyUsage bits set (``digital_signature``, ...).
        is_ca: basicConstraints CA:TRUE.
    """
    if is_ca:
        return "signed by a CA certificate, not a manifest key"
    if MANIFEST_SIGNING_EKU not in extended_key_usage:
        if "client_auth" in extended_key_usage:
            return "signed by a device certificate, not a manifest key"
        return (
            "signed by a certificate without the manifest-signing usage "
            f"({MANIFEST_SIGNING_OID}), not a manifest key"
        )
    if extended_key_usage != {MANIFEST_SIGNING_EKU}:
        return "the manifest signing certificate also allows other usages"
    if key_usage != {"digital_signature"}:
        return "the manifest signing certificate's keyUsage is not digitalSignature only"
    return ""


# --------------------------------------------------------------------------- quota
def check_quota(*, batch: str, issued: int, batch_size: int, spare: int) -> None:
    """Stop issuance beyond the batch size plus the configured spare.

    Raises:
        QuotaExceededError: ``issued`` already reached ``batch_size + spare``.
    """
    limit = batch_size + spare
    if issued >= limit:
        raise QuotaExceededError(
            f"batch {batch} has used its certificate quota ({issued} of {limit}: "
            f"{batch_size} boards + {spare} spare)",
            remedy="Check the line for a runaway or repeating board; an admin can raise "
            "[ca] quota_spare or the batch size if the extra certificates are legitimate.",
            batch=batch,
            issued=issued,
            limit=limit,
        )


# --------------------------------------------------------------------------- intermediate
@dataclass(frozen=True)
class ImportVerdict:
    """The outcome of :func:`check_intermediate`: accepted, with warnings to show."""

    warnings: tuple[str, ...] = field(default_factory=tuple)


def check_intermediate(chain: ChainFacts, *, now: datetime, warn_days: int) -> ImportVerdict:
    """Accept an intermediate only if the station can safely sign with it.

    Raises:
        ChainRejectedError: with ``details["reason"]``: ``key_mismatch``, ``not_ca``,
            ``path_length``, ``no_key_cert_sign``, ``untrusted``, ``not_yet_valid``, ``expired``.
    """
    ica = chain.intermediate

    def refuse(reason: str, why: str, remedy: str) -> ChainRejectedError:
        return ChainRejectedError(
            f"certificate refused: {why}", remedy=remedy, reason=reason, subject=ica.subject
        )

    if not chain.matches_key:
        raise refuse(
            "key_mismatch",
            "its public key is not the station's CA key",
            "Import the certificate the root signed for this station's CSR ('station ca init').",
        )
    if not ica.is_ca:
        raise refuse("not_ca", "it is not a CA certificate", "Have the root sign it as a CA.")
    if ica.path_length != 0:
        raise refuse(
            "path_length",
            f"its pathLenConstraint is {ica.path_length}, the station requires 0",
            "Have the root sign it with pathlen:0 (the station issues only device certificates).",
        )
    if not ica.key_cert_sign:
        raise refuse(
            "no_key_cert_sign",
            "its key usage lacks keyCertSign",
            "Have the root sign it with keyUsage keyCertSign.",
        )
    if not chain.chain_verified:
        raise refuse(
            "untrusted",
            f"it does not chain to the given root ({chain.problem or 'signature mismatch'})",
            "Check that you passed the right root certificate.",
        )
    for cert in (ica, *chain.others, chain.root):
        if cert.not_before > now:
            raise refuse(
                "not_yet_valid",
                f"{cert.subject} is not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC",
                "Check the station's clock, or wait until the certificate becomes valid.",
            )
        if cert.not_after <= now:
            raise refuse(
                "expired",
                f"{cert.subject} expired on {cert.not_after:%Y-%m-%d}",
                "Have the root issue a fresh certificate.",
            )
    warnings: list[str] = []
    soonest = min((ica, *chain.others, chain.root), key=lambda c: c.not_after)
    days_left = (soonest.not_after - now).days
    if days_left < warn_days:
        warnings.append(
            f"{soonest.subject} expires in {days_left} days ({soonest.not_after:%Y-%m-%d}); "
            "plan its renewal now"
        )
    return ImportVerdict(warnings=tuple(warnings))


# --------------------------------------------------------------------------- group keys
def decode_group_key(text: str) -> bytes:
    """Decode a DPS enrollment-group key (base64, as the portal and the API show it).

    Raises:
        ValidationError: not base64, or shorter than 16 bytes.
    """
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(
            "the group key is not base64 text",
            remedy="Paste the primary key exactly as DPS shows it for the enrollment group.",
        ) from exc
    if len(key) < 16:
        raise ValidationError(
            f"the group key has {len(key)} bytes; DPS keys have at least 16",
            remedy="Paste the primary key exactly as DPS shows it for the enrollment group.",
        )
    return key


def _validity(
    profile: CertificateProfile, now: datetime, ca_not_after: datetime
) -> tuple[datetime, datetime]:
    """The profile's validity window, backdated and cut at the CA's own expiry.

    Raises:
        ChainRejectedError: the CA has already expired, so nothing it signs would be valid.
    """
    not_after = min(now + timedelta(days=profile.validity_days), ca_not_after)
    if not_after <= now:
        raise ChainRejectedError(
            "the station's CA certificate has expired; it cannot issue",
            remedy="Import a renewed intermediate with 'station ca import'.",
            reason="expired",
        )
    return now - timedelta(minutes=profile.backdate_minutes), not_after
