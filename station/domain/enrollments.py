"""Mapping an identity to a DPS IndividualEnrollment, through an enrollment template.

The template (``templates/enrollments/*.toml``) decides everything DPS needs besides the identity
itself: the device ID rule, allocation policy and hubs, reprovisioning, IoT Edge, the initial twin
(with placeholders filled from the manifest) and whether symmetric keys may leave the station.
The output is the JSON body of DPS's ``IndividualEnrollment`` (service API 2021-10-01).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from station.domain.canonical import canonical_json
from station.domain.errors import ValidationError
from station.domain.manifest import Attestation, IdentityManifest

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
        _check_placeholders(where, "device_id", self.device_id)
        for section in (self.twin_tags, self.twin_desired):
            canonical_json(dict(section))  # JSON only, no floats: twins must be reproducible
            for path, text in _strings(section, "twin"):
                _check_placeholders(where, path, text)


def _check_placeholders(where: str, key: str, text: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ValidationError(f"{where}: {key} is malformed: {exc}") from exc
    unknown = names - PLACEHOLDERS
    if unknown or "" in names:
        raise ValidationError(
            f"{where}: {key} uses unknown placeholders {sorted(unknown)}; "
            f"allowed: {', '.join(sorted(PLACEHOLDERS))}",
            key=key,
        )


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
    if str(manifest.status) == "voided":
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
