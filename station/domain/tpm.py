"""TPM identity: what the station learned about a board's TPM, as plain values.

The endorsement key (EK) is recorded as the exact marshaled ``TPM2B_PUBLIC`` the TPM returned
for the persistent handle 0x81010001; that byte string is DPS's ``endorsementKey`` (base64) and
the input of the registration ID. Nothing here talks to a TPM: adapters fill these values in.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import StrEnum

from station.domain.products import EkCertificateResult
from station.domain.registration import tpm_registration_id

#: Persistent handle of the EK the Azure device SDKs read (the rsa2048 template's; the others
#: are in :mod:`station.domain.ek_templates`).
EK_HANDLE = 0x81010001
#: Persistent handle of the storage root key (SRK) the DPS TPM handshake imports under.
SRK_HANDLE = 0x81000001

#: TCG vendor IDs (TPM_PT_MANUFACTURER, as in the EK certificate's SAN) to vendor names.
TPM_VENDORS: dict[str, str] = {
    "414D4400": "AMD",
    "41544D4C": "Atmel",
    "4252434D": "Broadcom",
    "48504500": "HPE",
    "49424D00": "IBM",
    "00001014": "IBM (software TPM)",
    "49424D20": "IBM",
    "49465800": "Infineon",
    "494E5443": "Intel",
    "4C454E00": "Lenovo",
    "4D534654": "Microsoft",
    "4E534D20": "National Semiconductor",
    "4E545A00": "Nationz",
    "4E544300": "Nuvoton",
    "51434F4D": "Qualcomm",
    "534D5343": "SMSC",
    "53544D20": "STMicroelectronics",
    "534D534E": "Samsung",
    "534E5300": "Sinosun",
    "54584E00": "Texas Instruments",
    "57454300": "Winbond",
    "524F4343": "Fuzhou Rockchip",
    "474F4F47": "Google",
}


class EkOrigin(StrEnum):
    """Whether the EK was already persisted or the station created it."""

    FOUND = "found"
    CREATED = "created"


def vendor_name(manufacturer_id: str) -> str:
    """Map a TCG manufacturer ID (``"id:4E544300"`` or ``"4E544300"``) to a vendor name.

    Unknown IDs come back as given (upper-case hex), so the technician still sees something.
    """
    code = manufacturer_id.strip().upper().removeprefix("ID:")
    return TPM_VENDORS.get(code, code)


@dataclass(frozen=True)
class EndorsementKey:
    """The EK as read from (or created in) the TPM."""

    public: bytes  # marshaled TPM2B_PUBLIC, size prefix included
    template: str  # rsa2048 | ecc-p256 | ecc-p384 | ... (from the key's own parameters)
    origin: EkOrigin


@dataclass(frozen=True)
class EkCertificateCheck:
    """The outcome of checking one EK certificate (or its absence)."""

    status: EkCertificateResult
    reason: str = ""  # one sentence for the technician; empty when valid
    vendor: str = ""
    subject: str = ""
    issuer: str = ""
    serial_number: str = ""
    not_before: str = ""  # ISO 8601 UTC
    not_after: str = ""
    anchor: str = ""  # subject of the trust anchor the certificate chains to
    anchor_source: str = ""  # the trust file that holds that anchor (and where it came from)
    nv_index: int | None = None
    ek_template: str = ""  # the EK it certifies (the enrolled one, or an evidence EK)
    der: bytes = field(default=b"", repr=False)  # the certificate as found (padding trimmed)
    #: Vendor encoding deviations read past, e.g. "Intel: explicit DEFAULT in extension 3 ...".
    normalised: tuple[str, ...] = ()
    issuer_url: str = ""  # where the missing issuer is published (AIA caIssuers), if it is

    def summary(self) -> str:
        """One line: status, vendor, encoding deviations read past, and the reason."""
        text = self.status.value
        if self.vendor:
            text += f" ({self.vendor})"
        if self.normalised:
            count = len(self.normalised)
            text += f", {count} vendor encoding deviation{'s' if count > 1 else ''} normalised"
        if self.reason:
            text += f": {self.reason}"
        return text


@dataclass(frozen=True)
class TpmIdentityResult:
    """A board's TPM identity, ready for the manifest and the DPS enrollment."""

    ek: bytes
    ek_b64: str
    registration_id: str
    template: str
    origin: EkOrigin
    srk: bytes
    ek_certificate: EkCertificateCheck
    resident: bool

    @classmethod
    def build(
        cls,
        key: EndorsementKey,
        *,
        srk: bytes,
        ek_certificate: EkCertificateCheck,
        resident: bool,
    ) -> TpmIdentityResult:
        """Derive the base64 EK and the registration ID from ``key`` and bundle the rest."""
        return cls(
            ek=key.public,
            ek_b64=base64.b64encode(key.public).decode("ascii"),
            registration_id=tpm_registration_id(key.public),
            template=key.template,
            origin=key.origin,
            srk=srk,
            ek_certificate=ek_certificate,
            resident=resident,
        )


@dataclass(frozen=True)
class TrustEntry:
    """One EK-certificate trust anchor: what it is, where it is kept, where it came from."""

    fingerprint: str  # SHA-256 of the certificate as stored, lower-case hex
    subject: str
    issuer: str
    not_after: str  # ISO 8601 UTC
    file: str  # the trust file that holds it
    source: str = ""  # for imported anchors: the file it was imported from
    signed_by: str = ""  # at import: "self-signed", the anchor that signed it, or "" (none)


@dataclass(frozen=True)
class TrustSkip:
    """Something an import (or the trust folders) did not take, and why."""

    source: str  # file, and which block or certificate in it
    reason: str


@dataclass(frozen=True)
class WantedIssuer:
    """An issuer an EK certificate named that no anchor provides, and where it is published."""

    issuer: str
    url: str  # the certificate's AIA caIssuers URL ("" when it names none)
    first_seen: str  # ISO 8601 UTC


@dataclass(frozen=True)
class TrustImportReport:
    """What ``station tpm trust import`` did."""

    imported: tuple[TrustEntry, ...]
    skipped: tuple[TrustSkip, ...]
    completed: tuple[WantedIssuer, ...]  # missing issuers the import now provides
