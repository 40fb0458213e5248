"""The identity manifest: everything the station asserts about one device, in canonical form.

The manifest is what QA looks at, what a cloud operator verifies, and what the audit chain pins by
hash. It holds public material only: the EK, the device certificate, the name of the group key a
symmetric key was derived from; never a private key or a device secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import cached_property
from typing import Any

from station.domain.canonical import canonical_json, sha256_hex
from station.domain.errors import ValidationError
from station.domain.registration import normalize_registration_id
from station.domain.states import DeviceStatus

MANIFEST_SCHEMA = "station.identity/1"


class Attestation(StrEnum):
    """The DPS attestation mechanisms the station provisions (DPS spelling)."""

    TPM = "tpm"
    X509 = "x509"
    SYMMETRIC_KEY = "symmetricKey"


def _section(part: Any) -> dict[str, Any]:
    """A flat section dataclass as a dict (no deep copy: every field is a string)."""
    return {item.name: getattr(part, item.name) for item in fields(part)}


@dataclass(frozen=True)
class BoardInfo:
    """What the board said about itself in its hello."""

    serial: str
    model: str
    hardware_revision: str = ""
    firmware_version: str = ""


@dataclass(frozen=True)
class TpmIdentity:
    """A TPM identity: the EK DPS will attest, and what the station learned about it."""

    endorsement_key: str  # base64 of the marshaled TPM2B_PUBLIC, exactly as DPS stores it
    ek_sha256: str
    ek_origin: str = "found"  # found at 0x81010001, or created by the station
    ek_certificate_status: str = "absent"
    ek_certificate_vendor: str = ""
    storage_root_key: str = ""


@dataclass(frozen=True)
class X509Identity:
    """An X.509 identity: the device certificate the station issued (public part only)."""

    certificate_pem: str
    thumbprint_sha256: str
    serial_number: str
    not_before: str
    not_after: str
    issuer: str
    key_origin: str = "secure-element"  # or "injected"


@dataclass(frozen=True)
class SymmetricKeyIdentity:
    """A symmetric-key identity: which group key the device key was derived from."""

    group_key: str  # label of the group key in the HSM, never the key itself
    derivation: str = "hmac-sha256(group-key, registration-id)"


@dataclass(frozen=True)
class OperationalCertificate:
    """The board can renew an operational certificate DPS issues (certificate management).

    Recorded when the line proved that the board makes an EC P-384 key in its ``operational``
    slot and a CSR for it with CN = the registration ID, which it sends at every registration.
    """

    credential_policy: str
    public_key_sha256: str  # SHA-256 (hex) of the operational key's SubjectPublicKeyInfo DER
    key_slot: str = "operational"
    key_curve: str = "p384"
    renewal: str = "csr-at-registration"


@dataclass(frozen=True)
class DpsTarget:
    """Where the device will register at first power-on."""

    global_endpoint: str
    id_scope: str


@dataclass(frozen=True)
class IdentityManifest:
    """One device's identity as the station recorded it."""

    registration_id: str
    device_id: str
    attestation: Attestation
    board: BoardInfo
    product: str
    batch: str
    dps: DpsTarget
    station: str
    operator: str
    provisioned_at: str
    status: DeviceStatus = DeviceStatus.PROVISIONED
    tpm: TpmIdentity | None = None
    x509: X509Identity | None = None
    symmetric_key: SymmetricKeyIdentity | None = None
    operational_certificate: OperationalCertificate | None = None

    def __post_init__(self) -> None:
        x509 = self.attestation is Attestation.X509
        if normalize_registration_id(self.registration_id, x509=x509) != self.registration_id:
            raise ValidationError(
                "registration IDs are stored in lower case", value=self.registration_id
            )
        parts = {
            Attestation.TPM: self.tpm,
            Attestation.X509: self.x509,
            Attestation.SYMMETRIC_KEY: self.symmetric_key,
        }
        if parts[self.attestation] is None:
            raise ValidationError(
                f"a {self.attestation} manifest needs its {self.attestation} section",
                attestation=str(self.attestation),
            )
        extra = [
            str(kind)
            for kind, part in parts.items()
            if part is not None and kind != self.attestation
        ]
        if extra:
            raise ValidationError(
                f"a {self.attestation} manifest cannot carry {', '.join(extra)} sections",
                attestation=str(self.attestation),
            )
        if not self.board.serial:
            raise ValidationError("a manifest needs the board serial number")

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as a JSON object (with its schema tag, without empty sections)."""
        data: dict[str, Any] = {
            "schema": MANIFEST_SCHEMA,
            "registration_id": self.registration_id,
            "device_id": self.device_id,
            "attestation": str(self.attestation),
            "board": _section(self.board),
            "product": self.product,
            "batch": self.batch,
            "dps": _section(self.dps),
            "station": self.station,
            "operator": self.operator,
            "provisioned_at": self.provisioned_at,
            "status": str(self.status),
        }
        for name in ("tpm", "x509", "symmetric_key", "operational_certificate"):
            part = getattr(self, name)
            if part is not None:
                data[name] = _section(part)
        return data

    def canonical(self) -> bytes:
        """The canonical JSON bytes that are hashed, signed and stored."""
        return self._canonical

    @cached_property
    def _canonical(self) -> bytes:
        # computed once: a frozen manifest always serialises to the same bytes
        return canonical_json(self.to_dict())

    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`canonical`."""
        return sha256_hex(self._canonical)

    @property
    def ek_sha256(self) -> str:
        """The EK hash for TPM identities, else an empty string."""
        return self.tpm.ek_sha256 if self.tpm else ""

    @property
    def certificate_thumbprint(self) -> str:
        """The certificate thumbprint for X.509 identities, else an empty string."""
        return self.x509.thumbprint_sha256 if self.x509 else ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdentityManifest:
        """Rebuild a manifest from :meth:`to_dict` output.

        Raises:
            ValidationError: wrong schema tag, missing or unknown fields.
        """
        if data.get("schema") != MANIFEST_SCHEMA:
            raise ValidationError(
                f"unknown manifest schema {data.get('schema')!r}", schema=data.get("schema")
            )
        try:
            tpm = data.get("tpm")
            x509 = data.get("x509")
            sym = data.get("symmetric_key")
            operational = data.get("operational_certificate")
            return cls(
                registration_id=data["registration_id"],
                device_id=data["device_id"],
                attestation=Attestation(data["attestation"]),
                board=BoardInfo(**data["board"]),
                product=data["product"],
                batch=data["batch"],
                dps=DpsTarget(**data["dps"]),
                station=data["station"],
                operator=data["operator"],
                provisioned_at=data["provisioned_at"],
                status=DeviceStatus(data.get("status", DeviceStatus.PROVISIONED)),
                tpm=TpmIdentity(**tpm) if tpm else None,
                x509=X509Identity(**x509) if x509 else None,
                symmetric_key=SymmetricKeyIdentity(**sym) if sym else None,
                operational_certificate=(
                    OperationalCertificate(**operational) if operational else None
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"malformed manifest: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> IdentityManifest:
        """Parse a manifest from its JSON text."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"manifest is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValidationError("manifest JSON must be an object")
        return cls.from_dict(data)
