"""Registration IDs: the name a device presents to DPS.

Rules (DPS service and device API specs, see docs/architecture.md "Identity rules"):

* case-insensitive, so the station stores and compares them in lower case;
* 1 to 128 characters from ``a-z 0-9 : . _ -``;
* the first and the last character must be alphanumeric (DPS documents "no special characters at
  start or end"; some pages allow a trailing ``-``; the station takes the stricter reading);
* for X.509 attestation the certificate CN *is* the registration ID, and a CN holds at most 64
  characters, so X.509 identities are limited to 64.

TPM devices do not choose their ID: the Azure device SDKs derive it from the endorsement key as the
lowercase, unpadded RFC 4648 base32 of SHA-256 over the marshaled ``TPM2B_PUBLIC``.
"""

from __future__ import annotations

import base64
import hashlib
import re

from station.domain.errors import InvalidRegistrationIdError

MAX_LENGTH = 128
MAX_X509_LENGTH = 64
TPM_ID_LENGTH = 52

_ALLOWED = re.compile(r"[a-z0-9:._-]*")
_ALNUM = re.compile(r"[a-z0-9]")


def normalize_registration_id(value: str, *, x509: bool = False) -> str:
    """Validate ``value`` against the DPS rules and return its canonical (lower-case) form.

    Args:
        value: the candidate registration ID, any case.
        x509: apply the 64-character limit that a certificate CN imposes.

    Raises:
        InvalidRegistrationIdError: with ``details["rule"]`` naming the broken rule.
    """
    candidate = value.lower()
    limit = MAX_X509_LENGTH if x509 else MAX_LENGTH

    def fail(rule: str, why: str) -> InvalidRegistrationIdError:
        return InvalidRegistrationIdError(
            f"registration ID {value!r} is invalid: {why}",
            remedy="Check the product's registration-ID template and the board serial number.",
            rule=rule,
            value=value,
        )

    if not candidate:
        raise fail("empty", "it is empty")
    if len(candidate) > limit:
        kind = "an X.509 certificate CN" if x509 else "DPS"
        raise fail("length", f"it has {len(candidate)} characters, {kind} allows at most {limit}")
    if not _ALLOWED.fullmatch(candidate):
        bad = sorted({c for c in candidate if not _ALLOWED.fullmatch(c)})
        raise fail("charset", f"characters {''.join(bad)!r} are not allowed (a-z 0-9 : . _ -)")
    if not _ALNUM.fullmatch(candidate[0]):
        raise fail("first", "it must start with a letter or digit")
    if not _ALNUM.fullmatch(candidate[-1]):
        raise fail("last", "it must end with a letter or digit")
    return candidate


def is_valid_registration_id(value: str, *, x509: bool = False) -> bool:
    """Return whether ``value`` satisfies the DPS rules (see :func:`normalize_registration_id`)."""
    try:
        normalize_registration_id(value, x509=x509)
    except InvalidRegistrationIdError:
        return False
    return True


def tpm_registration_id(endorsement_key: bytes) -> str:
    """Derive the registration ID the Azure SDKs use for a TPM device.

    Args:
        endorsement_key: the marshaled ``TPM2B_PUBLIC`` of the EK (size prefix included), i.e.
            exactly the bytes DPS stores base64-encoded as ``attestation.tpm.endorsementKey``.
    """
    digest = hashlib.sha256(endorsement_key).digest()
    return base64.b32encode(digest).decode("ascii").lower().rstrip("=")
