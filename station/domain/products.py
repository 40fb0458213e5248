"""Product recipes: how one product is provisioned, as validated data.

A recipe names the attestation, how the registration ID is formed, which certificate profile,
EK-certificate policy, DPS target, enrollment template and label template apply, and whether the
board is locked at the end. Recipes are read from ``templates/products/*.toml`` by an adapter and
validated here, so a bad recipe is refused when it is loaded, not halfway through a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from station.domain.ek_templates import EK_TEMPLATES
from station.domain.errors import InvalidRegistrationIdError, ValidationError
from station.domain.placeholders import check_placeholders
from station.domain.registration import normalize_registration_id


class ProductAttestation(StrEnum):
    """How a product's boards prove their identity."""

    TPM = "tpm"  # EK read from the board's TPM
    X509 = "x509"  # key generated in the board's secure element, certificate issued
    X509_INJECTED = "x509-injected"  # no secure element: key generated here, written, wiped
    SYMMETRIC_KEY = "symmetric-key"  # device key derived from a group key in the HSM


class EkCertificateResult(StrEnum):
    """Outcomes of EK-certificate validation (see the TPM identity service)."""

    VALID = "valid"
    ABSENT = "absent"
    UNTRUSTED = "untrusted"
    MISMATCH = "mismatch"
    EXPIRED = "expired"
    MALFORMED = "malformed"


#: Placeholders a registration-ID or device-ID template may use.
TEMPLATE_FIELDS = frozenset({"serial", "model", "product", "prefix", "registration_id"})


@dataclass(frozen=True)
class DpsTargetSpec:
    """Where the device registers at first power-on."""

    global_endpoint: str = "global.azure-devices-provisioning.net"
    id_scope: str = ""


@dataclass(frozen=True)
class CredentialPolicyRef:
    """A DPS credential policy the cloud operator created (``templates/credential-policies``).

    The station cannot ask Azure Device Registry which policies exist, so the admin lists the
    ones the cloud operator set up; a product naming another one stops on the line.
    """

    name: str
    namespace: str = ""  # the Azure Device Registry namespace that holds it
    validity_days: int = 30  # what the policy issues (for the operator's information)

    def __post_init__(self) -> None:
        if not 3 <= len(self.name) <= 50:
            raise ValidationError("a credential policy name has 3 to 50 characters", name=self.name)
        if not 7 <= self.validity_days <= 90:
            raise ValidationError(
                "a credential policy issues for 7 to 90 days", validity_days=self.validity_days
            )


@dataclass(frozen=True)
class OperationalCertificateSpec:
    """Where a product's operational certificates come from (``[product.operational_certificate]``).

    ``source = "dps"``: DPS certificate management (preview) issues them at every registration
    under ``credential_policy`` (an Azure Device Registry policy). The station has the board
    make its P-384 operational key and proves the CSR on the line; pushing a batch names the
    policy in its enrollments.
    """

    credential_policy: str
    source: str = "dps"

    def __post_init__(self) -> None:
        if self.source != "dps":
            raise ValidationError(
                f"operational certificates come from 'dps' only, not {self.source!r}",
                source=self.source,
            )
        if not 3 <= len(self.credential_policy) <= 50:
            raise ValidationError(
                "operational_certificate.credential_policy must name a policy (3-50 characters)",
                credential_policy=self.credential_policy,
            )


@dataclass(frozen=True)
class ProductRecipe:
    """One product's provisioning recipe."""

    name: str
    attestation: ProductAttestation
    dps: DpsTargetSpec
    model: str = ""  # board model the hello must report ("" accepts any)
    prefix: str = ""
    registration_id: str = "{prefix}-{serial}"  # ignored for TPM: derived from the EK
    device_id: str = "{registration_id}"
    lock: bool = True
    certificate_profile: str = "device-identity"
    ek_template: str = "rsa2048"  # the EK DPS enrolls (station.domain.ek_templates)
    #: Other EKs whose certificates may vouch for the TPM (e.g. ecc-p384 when only the ECC EK is
    #: certified): read if present, checked, proven resident; never enrolled.
    evidence_eks: tuple[str, ...] = ()
    create_ek_if_absent: bool = False
    ek_certificate_blocks: frozenset[EkCertificateResult] = field(
        default_factory=lambda: frozenset(
            {
                EkCertificateResult.UNTRUSTED,
                EkCertificateResult.MISMATCH,
                EkCertificateResult.EXPIRED,
                EkCertificateResult.MALFORMED,
            }
        )
    )
    group_key: str = ""  # HSM URI of the symmetric group key
    enrollment_template: str = "default"
    label_template: str = "device-50x25"
    auto_print_label: bool = False
    operational_certificate: OperationalCertificateSpec | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", self.name):
            raise ValidationError(
                f"product name {self.name!r} is invalid (lower-case letters, digits, . _ -)",
                product=self.name,
            )
        where = f"product {self.name}"
        if not self.dps.id_scope:
            raise ValidationError(
                f"product {self.name}: dps.id_scope is required", product=self.name
            )
        if self.attestation is not ProductAttestation.TPM:
            check_placeholders(
                self.registration_id, TEMPLATE_FIELDS, where=where, key="registration_id"
            )
        check_placeholders(self.device_id, TEMPLATE_FIELDS, where=where, key="device_id")
        if self.attestation is ProductAttestation.SYMMETRIC_KEY and not self.group_key:
            raise ValidationError(
                f"product {self.name}: symmetric-key products need group_key", product=self.name
            )
        for key, names in (
            ("ek_template", (self.ek_template,)),
            ("evidence_eks", self.evidence_eks),
        ):
            unknown = [n for n in names if n not in EK_TEMPLATES]
            if unknown:
                raise ValidationError(
                    f"product {self.name}: {key} {', '.join(unknown)} unknown; known EK "
                    f"templates: {', '.join(EK_TEMPLATES)}",
                    product=self.name,
                )
        if self.ek_template in self.evidence_eks:
            raise ValidationError(
                f"product {self.name}: evidence_eks repeats the enrolled EK {self.ek_template}",
                product=self.name,
            )

    @property
    def is_x509(self) -> bool:
        """Whether the identity is a certificate (CN = registration ID, at most 64 chars)."""
        return self.attestation in (ProductAttestation.X509, ProductAttestation.X509_INJECTED)

    def registration_id_for(self, *, serial: str, model: str) -> str:
        """Form and validate the registration ID of a non-TPM board.

        Raises:
            ValidationError: the recipe is TPM (its ID comes from the EK).
            InvalidRegistrationIdError: the formed ID breaks the DPS rules.
        """
        if self.attestation is ProductAttestation.TPM:
            raise ValidationError("TPM registration IDs are derived from the endorsement key")
        value = self.registration_id.format(
            serial=serial, model=model, product=self.name, prefix=self.prefix, registration_id=""
        )
        return normalize_registration_id(value, x509=self.is_x509)

    def device_id_for(self, *, registration_id: str, serial: str, model: str) -> str:
        """Form the IoT Hub device ID (defaults to the registration ID)."""
        return self.device_id.format(
            serial=serial,
            model=model,
            product=self.name,
            prefix=self.prefix,
            registration_id=registration_id,
        )

    def blocks(self, result: EkCertificateResult) -> bool:
        """Whether an EK-certificate result stops provisioning for this product."""
        return result in self.ek_certificate_blocks


def check_sample(recipe: ProductRecipe) -> None:
    """Fail at load time if the recipe cannot form a valid ID for a typical serial number.

    Raises:
        InvalidRegistrationIdError: naming the product.
    """
    if recipe.attestation is ProductAttestation.TPM:
        return
    try:
        recipe.registration_id_for(serial="SN0001", model=recipe.model or "model")
    except InvalidRegistrationIdError as exc:
        raise InvalidRegistrationIdError(
            f"product {recipe.name}: its registration_id template gives invalid IDs "
            f"({exc.message})",
            remedy="Fix the template in the product recipe.",
            product=recipe.name,
        ) from exc
