"""What a board holds to authenticate to DPS at first boot, one class per attestation.

These take exactly what the station writes into a board: a symmetric key (or the group key it was
derived from, in the lab), an X.509 certificate chain and the key its secure element holds, or
access to its TPM.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from station.domain.registration import normalize_registration_id, tpm_registration_id
from station_lab.firstboot.tpm import DeviceTpm


@dataclass(frozen=True)
class SymmetricKeyCredential:
    """A device key (base64): an individual enrollment's key or one derived from a group key."""

    registration_id: str
    device_key: str

    @classmethod
    def from_group_key(cls, registration_id: str, group_key: str) -> SymmetricKeyCredential:
        """Derive the device key as DPS does: base64(HMAC-SHA256(group key, registration ID))."""
        reg_id = normalize_registration_id(registration_id)
        digest = hmac.new(base64.b64decode(group_key), reg_id.encode(), hashlib.sha256).digest()
        return cls(reg_id, base64.b64encode(digest).decode("ascii"))

    @classmethod
    def from_key_bytes(cls, registration_id: str, key: bytes) -> SymmetricKeyCredential:
        """From the raw key bytes a board keeps (its ``symkey`` object)."""
        return cls(
            normalize_registration_id(registration_id), base64.b64encode(key).decode("ascii")
        )

    def signer(self) -> Callable[[bytes], bytes]:
        """HMAC-SHA256 with the device key."""
        key = base64.b64decode(self.device_key)
        return lambda data: hmac.new(key, data, hashlib.sha256).digest()


@dataclass(frozen=True)
class X509Credential:
    """A device certificate chain (PEM, leaf first, intermediates after) and its private key.

    The registration ID is the leaf's CN. ``private_key`` is the PEM file a lab secure element
    keeps; TLS needs it as a file.
    """

    registration_id: str
    certificate_chain: Path
    private_key: Path


@dataclass(frozen=True)
class TpmCredential:
    """A device TPM; the registration ID is derived from its EK like the Azure SDKs do."""

    tpm: DeviceTpm

    @property
    def registration_id(self) -> str:
        """Lower-case unpadded base32 of SHA-256 over the EK's TPM2B_PUBLIC."""
        return tpm_registration_id(self.tpm.endorsement_key())


Credential = SymmetricKeyCredential | X509Credential | TpmCredential
