"""Mapping an identity to a DPS IndividualEnrollment, through an enrollment template.

The template (``templates/enrollments/*.toml``) decides everything DPS needs besides the identity
itself: the device ID rule, allocation policy and hubs, reprovisioning, IoT Edge, the initial twin
(with placeholders filled from the manifest) and whether symmetric keys may leave the station.
The output is the JSON body of DPS's ``IndividualEnrollment`` (service API 2021-10-01).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from station.domain.canonical import canonical_json
from station.domain.errors import ValidationError
from station.domain.manifest import Attestation, IdentityManifest
from station.domain.placeholders import check_placeholders
from station.domain.states import DeviceStatus

ALLOCATION_POLICIES = ("hashed", "static", "geoLatency", "custom")
PLACEHOLDERS = frozenset(
    {
        "registration_id",
        "device_id",
        "serial",
        "model",
        "hardware_revision",
        "firmware_version",
        "batch",
        "product",
        "station",
        "provisioned_at",
    }
)
_MIN_CUSTOM_API = "2018-09-01-preview"


@dataclass(frozen=True)
class EnrollmentTemplate:
    """How identities of one product become DPS enrollments."""

    name: str
    device_id: str = "{registration_id}"
    provisioning_status: str = "enabled"
    allocation_policy: str = "hashed"
    iot_hubs: tuple[str, ...] = ()
    iot_hub_host_name: str = ""
    custom_webhook_url: str = ""
    custom_api_version: str = "2021-10-01"
    reprovision_update_hub_assignment: bool = True
    reprovision_migrate_device_data: bool = True
    iot_edge: bool = False
    twin_tags: Mapping[str, Any] = field(default_factory=dict)
    twin_desired: Mapping[str, Any] = field(default_factory=dict)
    symmetric_keys: str = "never"  # "never", or "push": derived keys go into pushes, never files

    def __post_init__(self) -> None:
        where = f"enrollment template {self.name!r}"
        if self.provisioning_status not in ("enabled", "disabled"):
            raise ValidationError(f"{where}: provisioning_status must be enabled or disabled")
        if self.allocation_policy not in ALLOCATION_POLICIES:
            raise ValidationError(
                f"{where}: allocation_policy must be one of {', '.join(ALLOCATION_POLICIES)}"
            )
        if self.allocation_policy == "static" and len(self.iot_hubs) != 1:
            raise ValidationError(f"{where}: the static policy needs exactly one hub in iot_hubs")
        if self.allocation_policy == "custom":
            if not self.custom_webhook_url.startswith("https://"):
                raise ValidationError(f"{where}: custom allocation needs an https webhook URL")
            if self.custom_api_version < _MIN_CUSTOM_API:
                raise ValidationError(
                    f"{where}: custom_api_version must be {_MIN_CUSTOM_API} or newer"
                )
        elif self.custom_webhook_url:
            raise ValidationError(f"{where}: custom_webhook_url needs allocation_policy = custom")
        if self.symmetric_keys not in ("never", "push"):
            raise ValidationError(f"{where}: symmetric_keys must be never or push")
        check_placeholders(self.device_id, PLACEHOLDERS, where=where, key="device_id")
        for section in (self.twin_tags, self.twin_desired):
            canonical_json(dict(section))  # JSON only, no floats: twins must be reproducible
            for path, text in _strings(section, "twin"):
                check_placeholders(text, PLACEHOLDERS, where=where, key=path)


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [item for k, v in value.items() for item in _strings(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [item for i, v in enumerate(value) for item in _strings(v, f"{path}[{i}]")]
    return []


def _fill(value: Any, fields: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format_map(fields)
    if isinstance(value, Mapping):
        return {k: _fill(v, fields) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(v, fields) for v in value]
    return value


def placeholder_values(manifest: IdentityManifest) -> dict[str, str]:
    """The values a template's placeholders take for ``manifest``."""
    return {
        "registration_id": manifest.registration_id,
        "device_id": manifest.device_id,
        "serial": manifest.board.serial,
        "model": manifest.board.model,
        "hardware_revision": manifest.board.hardware_revision,
        "firmware_version": manifest.board.firmware_version,
        "batch": manifest.batch,
        "product": manifest.product,
        "station": manifest.station,
        "provisioned_at": manifest.provisioned_at,
    }


def individual_enrollment(
    manifest: IdentityManifest,
    template: EnrollmentTemplate,
    *,
    symmetric_keys: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Build the DPS ``IndividualEnrollment`` body for ``manifest``.

    Args:
        manifest: the recorded identity.
        template: the product's enrollment template.
        symmetric_keys: (primary, secondary) base64 device keys for a symmetric-key identity;
            only allowed when the template says ``symmetric_keys = "push"``.

    Raises:
        ValidationError: a symmetric-key identity without keys, keys the template forbids, or a
            voided identity.
    """
    if manifest.status is DeviceStatus.VOIDED:
        raise ValidationError(
            f"{manifest.registration_id} is voided and must not be enrolled",
            registration_id=manifest.registration_id,
        )
    fields = placeholder_values(manifest)
    attestation: dict[str, Any]
    if manifest.attestation is Attestation.TPM:
        assert manifest.tpm is not None  # guaranteed by IdentityManifest validation
        tpm: dict[str, str] = {"endorsementKey": manifest.tpm.endorsement_key}
        if manifest.tpm.storage_root_key:
            tpm["storageRootKey"] = manifest.tpm.storage_root_key
        attestation = {"type": "tpm", "tpm": tpm}
    elif manifest.attestation is Attestation.X509:
        assert manifest.x509 is not None
        attestation = {
            "type": "x509",
            "x509": {
                "clientCertificates": {"primary": {"certificate": manifest.x509.certificate_pem}}
            },
        }
    else:
        if template.symmetric_keys != "push":
            raise ValidationError(
                f"template {template.name!r} does not allow symmetric keys to leave the station",
                remedy="Symmetric-key devices enroll through their enrollment group; set "
                'symmetric_keys = "push" only if individual enrollments are wanted.',
                registration_id=manifest.registration_id,
            )
        if symmetric_keys is None:
            raise ValidationError(
                f"{manifest.registration_id}: symmetric keys must be derived for the push",
                registration_id=manifest.registration_id,
            )
        primary, secondary = symmetric_keys
        attestation = {
            "type": "symmetricKey",
            "symmetricKey": {"primaryKey": primary, "secondaryKey": secondary},
        }
    body: dict[str, Any] = {
        "registrationId": manifest.registration_id,
        "deviceId": template.device_id.format_map(fields),
        "attestation": attestation,
        **_policy_fields(template, fields),
    }
    return body


def _policy_fields(template: EnrollmentTemplate, fields: Mapping[str, str]) -> dict[str, Any]:
    """What individual enrollments and groups share: status, allocation, hubs, twin, edge."""
    body: dict[str, Any] = {
        "capabilities": {"iotEdge": template.iot_edge},
        "provisioningStatus": template.provisioning_status,
        "allocationPolicy": template.allocation_policy,
        "reprovisionPolicy": {
            "updateHubAssignment": template.reprovision_update_hub_assignment,
            "migrateDeviceData": template.reprovision_migrate_device_data,
        },
    }
    if template.iot_hubs:
        body["iotHubs"] = list(template.iot_hubs)
    if template.iot_hub_host_name:
        body["iotHubHostName"] = template.iot_hub_host_name
    if template.allocation_policy == "custom":
        body["customAllocationDefinition"] = {
            "webhookUrl": template.custom_webhook_url,
            "apiVersion": template.custom_api_version,
        }
    if template.twin_tags or template.twin_desired:
        body["initialTwin"] = {
            "tags": _fill(template.twin_tags, fields),
            "properties": {"desired": _fill(template.twin_desired, fields)},
        }
    return body


GROUP_PLACEHOLDERS = frozenset({"batch", "product", "station"})


def _group_fields(group_id: str, batch: str, product: str, station: str) -> dict[str, str]:
    # A group has no device: device-level placeholders stay as the group's own id.
    return {
        **{name: group_id for name in PLACEHOLDERS},
        "batch": batch,
        "product": product,
        "station": station,
    }


def x509_ca_group(
    group_id: str,
    template: EnrollmentTemplate,
    *,
    ca_certificate_pem: str = "",
    ca_reference: str = "",
    batch: str = "",
    product: str = "",
    station: str = "",
) -> dict[str, Any]:
    """The DPS ``EnrollmentGroup`` for devices whose certificates the station's intermediate signs.

    Args:
        group_id: the enrollment group ID.
        template: allocation, hubs, twin and status for the group.
        ca_certificate_pem: the station intermediate (``signingCertificates``), or
        ca_reference: the name of the intermediate already verified in DPS (``caReferences``).
        batch: filled into twin placeholders, with ``product`` and ``station``.
        product: see ``batch``.
        station: see ``batch``.

    Raises:
        ValidationError: neither or both of the certificate and the CA reference are given.
    """
    if bool(ca_certificate_pem) == bool(ca_reference):
        raise ValidationError(
            "an X.509 group names the station intermediate either as a certificate or as a "
            "verified CA reference (exactly one)",
            group=group_id,
        )
    x509: dict[str, Any] = (
        {"signingCertificates": {"primary": {"certificate": ca_certificate_pem}}}
        if ca_certificate_pem
        else {"caReferences": {"primary": ca_reference}}
    )
    return {
        "enrollmentGroupId": group_id,
        "attestation": {"type": "x509", "x509": x509},
        **_policy_fields(template, _group_fields(group_id, batch, product, station)),
    }


def symmetric_key_group(
    group_id: str,
    template: EnrollmentTemplate,
    *,
    batch: str = "",
    product: str = "",
    station: str = "",
) -> dict[str, Any]:
    """The DPS ``EnrollmentGroup`` for symmetric-key devices.

    No key is sent: DPS generates the group keys, and the station admin imports the primary key
    into the HSM (``hsm.import_group_key``), where device keys are derived. So no group key ever
    sits in a file or a request body the station writes.
    """
    return {
        "enrollmentGroupId": group_id,
        "attestation": {"type": "symmetricKey"},
        **_policy_fields(template, _group_fields(group_id, batch, product, station)),
    }


#: Columns of the CSV export, in order. No secret is ever a column.
CSV_COLUMNS = (
    "registration_id",
    "device_id",
    "attestation",
    "serial",
    "model",
    "batch",
    "product",
    "provisioned_at",
    "ek_sha256",
    "endorsement_key",
    "certificate_sha256",
    "certificate_serial",
    "group_key",
    "manifest_sha256",
)


#: What a spreadsheet reads as the start of a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_text(value: str) -> str:
    """A text cell a spreadsheet will show as text: a leading formula character gets a ``'``.

    Board serials and models, batch and product names come from outside the station; one like
    ``=HYPERLINK(...)`` must not become a live formula in the cloud operator's spreadsheet.
    """
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_row(
    manifest: IdentityManifest, template: EnrollmentTemplate, *, manifest_sha256: str = ""
) -> dict[str, str]:
    """One CSV export row for ``manifest`` (public material only; text cells neutralised).

    Args:
        manifest: the identity.
        template: gives the device ID rule.
        manifest_sha256: the stored manifest hash, if known (else computed).
    """
    fields = placeholder_values(manifest)
    return {
        "registration_id": csv_text(manifest.registration_id),
        "device_id": csv_text(template.device_id.format_map(fields)),
        "attestation": str(manifest.attestation),
        "serial": csv_text(manifest.board.serial),
        "model": csv_text(manifest.board.model),
        "batch": csv_text(manifest.batch),
        "product": csv_text(manifest.product),
        "provisioned_at": manifest.provisioned_at,
        "ek_sha256": manifest.tpm.ek_sha256 if manifest.tpm else "",
        "endorsement_key": manifest.tpm.endorsement_key if manifest.tpm else "",
        "certificate_sha256": manifest.x509.thumbprint_sha256 if manifest.x509 else "",
        "certificate_serial": manifest.x509.serial_number if manifest.x509 else "",
        "group_key": manifest.symmetric_key.group_key if manifest.symmetric_key else "",
        "manifest_sha256": manifest_sha256 or manifest.digest(),
    }


def export_enrollment(
    manifest: IdentityManifest, template: EnrollmentTemplate
) -> dict[str, Any] | None:
    """The enrollment body a file export may carry, or ``None`` for symmetric-key identities.

    Symmetric-key devices never get an individual enrollment in a file: their keys would be in
    it. They enroll through their group (:func:`symmetric_key_group`).
    """
    if manifest.attestation is Attestation.SYMMETRIC_KEY:
        return None
    return individual_enrollment(manifest, template)


#: What DPS assumes for a field an enrollment leaves out (or sends as null). Real DPS answers
#: such a field by leaving it out (``provisioningStatus``: by ``null``), so both sides are
#: compared with these filled in.
DPS_DEFAULTS: Mapping[str, Any] = {
    "capabilities": {"iotEdge": False},
    "provisioningStatus": "enabled",
    "reprovisionPolicy": {"updateHubAssignment": True, "migrateDeviceData": True},
}
#: The comparable attestation of a symmetric-key enrollment DPS answered without its keys (GET
#: and query never carry them): it must be completed through ``attestationmechanism``.
KEYS_NOT_SHOWN: Mapping[str, Any] = {"symmetricKey": None}


def key_fingerprint(key: str) -> str:
    """A symmetric key's fingerprint: SHA-256 over the decoded key, hex (the key stays secret).

    Comparisons, conflict records and reports carry this, never the key itself.
    """
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = key.encode("utf-8")  # not base64: still fingerprinted, never shown
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def comparable(body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an enrollment that DPS stores as given, for comparing ours with DPS's.

    DPS answers with server fields (etag, times, registration state), leaves out fields sent
    as null (see :data:`DPS_DEFAULTS`), shows certificate *info* instead of the certificate and
    never shows symmetric keys on GET or query. Both sides are reduced to the same shape: the
    certificate compared by its SHA-256 thumbprint, symmetric keys by their fingerprints
    (:data:`KEYS_NOT_SHOWN` when the answer did not carry them).
    """
    keep = (
        "registrationId",
        "enrollmentGroupId",
        "deviceId",
        "capabilities",
        "provisioningStatus",
        "allocationPolicy",
        "reprovisionPolicy",
        "iotHubs",
        "iotHubHostName",
        "customAllocationDefinition",
        "initialTwin",
    )
    result: dict[str, Any] = {key: body[key] for key in keep if body.get(key) is not None}
    for key, default in DPS_DEFAULTS.items():
        given = result.get(key)
        if isinstance(default, Mapping):
            result[key] = {**default, **given} if isinstance(given, Mapping) else dict(default)
        elif given is None:
            result[key] = default
    if "registrationId" in result:
        result.setdefault("deviceId", result["registrationId"])  # DPS's default device ID
    twin = result.get("initialTwin")
    if isinstance(twin, Mapping):
        result["initialTwin"] = {
            "tags": twin.get("tags") or {},
            "desired": (twin.get("properties") or {}).get("desired") or {},
        }
    attestation = body.get("attestation") or {}
    kind = attestation.get("type", "")
    if kind == Attestation.TPM:
        result["attestation"] = {"tpm": (attestation.get("tpm") or {}).get("endorsementKey")}
    elif kind == Attestation.X509:
        result["attestation"] = {"x509": _x509_identity(attestation.get("x509") or {})}
    elif kind == Attestation.SYMMETRIC_KEY:
        keys = attestation.get("symmetricKey") or {}
        primary_key, secondary_key = keys.get("primaryKey"), keys.get("secondaryKey")
        if isinstance(primary_key, str) and isinstance(secondary_key, str):
            result["attestation"] = {
                "symmetricKey": [key_fingerprint(primary_key), key_fingerprint(secondary_key)]
            }
        else:
            result["attestation"] = dict(KEYS_NOT_SHOWN)
    else:
        result["attestation"] = {kind: None}
    return result


def _x509_identity(x509: Mapping[str, Any]) -> str:
    """What an X.509 attestation trusts, as one comparable string.

    Its primary certificate's SHA-256 thumbprint (from DPS's ``info`` or from the PEM we send),
    or ``ca:NAME`` for a CA reference.
    """
    for pair in ("clientCertificates", "signingCertificates"):
        primary = (x509.get(pair) or {}).get("primary") or {}
        if primary:
            thumb = (primary.get("info") or {}).get("sha256Thumbprint") or primary.get(
                "sha256Thumbprint"
            )
            if not thumb and isinstance(primary.get("certificate"), str):
                thumb = pem_thumbprint(primary["certificate"])
            return str(thumb or "").upper()
    reference = (x509.get("caReferences") or {}).get("primary")
    return f"ca:{reference}" if reference else ""


def pem_thumbprint(pem: str) -> str:
    """The upper-case hex SHA-256 thumbprint of a PEM certificate ("" if it is not one)."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN"):
        return ""
    end = next((i for i, line in enumerate(lines) if line.startswith("-----END")), len(lines))
    try:
        der = base64.b64decode("".join(lines[1:end]), validate=True)
    except (binascii.Error, ValueError):
        return ""
    return hashlib.sha256(der).hexdigest().upper()


def keys_not_shown(compared: Mapping[str, Any]) -> bool:
    """Whether a :func:`comparable` came from an answer without the symmetric keys."""
    return compared.get("attestation") == KEYS_NOT_SHOWN


def with_attestation(body: Mapping[str, Any], mechanism: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with its attestation replaced by what ``attestationmechanism`` answered."""
    return {**body, "attestation": dict(mechanism)}


def expected_comparable(
    manifest: IdentityManifest, template: EnrollmentTemplate, body: Mapping[str, Any]
) -> dict[str, Any]:
    """:func:`comparable` of the body we push, with the certificate reduced to its thumbprint."""
    result = comparable(body)
    if manifest.x509 is not None:
        result["attestation"] = {"x509": manifest.x509.thumbprint_sha256.upper()}
    return result
