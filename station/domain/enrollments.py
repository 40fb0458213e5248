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
import json
import operator
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from station.domain.canonical import canonical_json
from station.domain.errors import ValidationError
from station.domain.manifest import Attestation, IdentityManifest
from station.domain.placeholders import check_placeholders

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
    return placeholder_values_of(manifest.to_dict())


def placeholder_values_of(data: Mapping[str, Any]) -> dict[str, str]:
    """:func:`placeholder_values` from a manifest's JSON object (as stored; see ``to_dict``)."""
    board = data["board"]
    return {
        "registration_id": data["registration_id"],
        "device_id": data["device_id"],
        "serial": board["serial"],
        "model": board["model"],
        "hardware_revision": board.get("hardware_revision", ""),
        "firmware_version": board.get("firmware_version", ""),
        "batch": data["batch"],
        "product": data["product"],
        "station": data["station"],
        "provisioned_at": data["provisioned_at"],
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
    return enrollment_of(manifest.to_dict(), template, symmetric_keys=symmetric_keys)


def enrollment_of(
    data: Mapping[str, Any],
    template: EnrollmentTemplate,
    *,
    symmetric_keys: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """:func:`individual_enrollment` from a manifest's JSON object (as stored)."""
    _refuse_voided(data)
    fields = placeholder_values_of(data)
    operational = data.get("operational_certificate") or {}
    return {
        "registrationId": data["registration_id"],
        "deviceId": template.device_id.format_map(fields),
        "attestation": _attestation_of(data, template, symmetric_keys),
        **_policy_fields(template, fields),
        **credential_policy_field(operational.get("credential_policy", "")),
    }


def _refuse_voided(data: Mapping[str, Any]) -> None:
    if data.get("status") == "voided":
        raise ValidationError(
            f"{data['registration_id']} is voided and must not be enrolled",
            registration_id=data["registration_id"],
        )


def _attestation_of(
    data: Mapping[str, Any],
    template: EnrollmentTemplate,
    symmetric_keys: tuple[str, str] | None,
) -> dict[str, Any]:
    """The enrollment's ``attestation`` for a manifest's JSON object."""
    kind = data["attestation"]
    if kind == Attestation.TPM:
        section = data["tpm"]
        tpm: dict[str, str] = {"endorsementKey": section["endorsement_key"]}
        if section.get("storage_root_key"):
            tpm["storageRootKey"] = section["storage_root_key"]
        return {"type": "tpm", "tpm": tpm}
    if kind == Attestation.X509:
        pem = data["x509"]["certificate_pem"]
        return {"type": "x509", "x509": {"clientCertificates": {"primary": {"certificate": pem}}}}
    if template.symmetric_keys != "push":
        raise ValidationError(
            f"template {template.name!r} does not allow symmetric keys to leave the station",
            remedy="Symmetric-key devices enroll through their enrollment group; set "
            'symmetric_keys = "push" only if individual enrollments are wanted.',
            registration_id=data["registration_id"],
        )
    if symmetric_keys is None:
        raise ValidationError(
            f"{data['registration_id']}: symmetric keys must be derived for the push",
            registration_id=data["registration_id"],
        )
    primary, secondary = symmetric_keys
    return {
        "type": "symmetricKey",
        "symmetricKey": {"primaryKey": primary, "secondaryKey": secondary},
    }


#: The enrollment and group field naming the DPS credential policy (service api-versions
#: 2025-07-01-preview and 2026-04-01 only; docs/lab-dps.md, "api-versions").
CREDENTIAL_POLICY_FIELD: Final = "credentialPolicyName"


def credential_policy_field(policy: str) -> dict[str, str]:
    """The enrollment field naming the DPS credential policy (none when ``policy`` is empty).

    The policy issues the devices' operational certificates (DPS certificate management):
    ``credentialPolicyName``, a string, as in the published 2025-07-01-preview and 2026-04-01
    service specs; sent under another api-version it may be dropped (the lab DPS drops it).
    """
    return {CREDENTIAL_POLICY_FIELD: policy} if policy else {}


def names_credential_policy(body: Mapping[str, Any]) -> bool:
    """Whether an enrollment or group body (or its :func:`comparable`) names a credential policy."""
    return bool(body.get(CREDENTIAL_POLICY_FIELD))


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
    credential_policy: str = "",
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
        credential_policy: the DPS credential policy issuing the devices' operational
            certificates (empty: none).

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
        **credential_policy_field(credential_policy),
    }


def symmetric_key_group(
    group_id: str,
    template: EnrollmentTemplate,
    *,
    batch: str = "",
    product: str = "",
    station: str = "",
    credential_policy: str = "",
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
        **credential_policy_field(credential_policy),
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
    return csv_row_of(manifest.to_dict(), template, manifest_sha256 or manifest.digest())


def csv_row_of(
    data: Mapping[str, Any], template: EnrollmentTemplate, manifest_sha256: str
) -> dict[str, str]:
    """:func:`csv_row` from a manifest's JSON object (as stored) and its hash."""
    fields = placeholder_values_of(data)
    tpm = data.get("tpm") or {}
    x509 = data.get("x509") or {}
    symmetric = data.get("symmetric_key") or {}
    return {
        "registration_id": csv_text(data["registration_id"]),
        "device_id": csv_text(template.device_id.format_map(fields)),
        "attestation": str(data["attestation"]),
        "serial": csv_text(fields["serial"]),
        "model": csv_text(fields["model"]),
        "batch": csv_text(data["batch"]),
        "product": csv_text(data["product"]),
        "provisioned_at": data["provisioned_at"],
        "ek_sha256": tpm.get("ek_sha256", ""),
        "endorsement_key": tpm.get("endorsement_key", ""),
        "certificate_sha256": x509.get("thumbprint_sha256", ""),
        "certificate_serial": x509.get("serial_number", ""),
        "group_key": symmetric.get("group_key", ""),
        "manifest_sha256": manifest_sha256,
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


#: stands for a per-device value while the rest of an enrollment is encoded once
_SLOT = "\x00slot\x00"
#: filled twins remembered by an encoder at most
_TWIN_CACHE = 1024


class EnrollmentEncoder:
    """The JSON text of :func:`export_enrollment` bodies for one template, fast.

    ``encode(data)`` equals ``json.dumps(export_enrollment(manifest, template), sort_keys=True)``
    for the manifest whose JSON object is ``data``. What is the same for every device (status,
    allocation, hubs, reprovisioning, edge, and a twin without placeholders) is encoded once; a
    twin with placeholders is encoded once per distinct value of the placeholders it uses (in
    practice once per batch: ``{batch}``, ``{product}``, ``{station}``). A bulk export of a
    million devices spends its time here.
    """

    def __init__(self, template: EnrollmentTemplate) -> None:
        self._template = template
        twin = {"tags": template.twin_tags, "desired": template.twin_desired}
        self._twin_names = sorted(
            {
                name
                for _, text in _strings(twin, "twin")
                for _, name, _, _ in string.Formatter().parse(text)
                if name is not None
            }
        )
        self._twin_key = operator.itemgetter(*self._twin_names) if self._twin_names else None
        self._twins: dict[object, str] = {}
        self._encode_object = json.JSONEncoder(sort_keys=True).encode
        skeleton = _policy_fields(template, dict.fromkeys(PLACEHOLDERS, ""))
        # sort_keys puts the per-device values in this order, which encode() follows
        slots = ["attestation", "deviceId", "initialTwin", "registrationId"]
        if not self._twin_names:
            slots.remove("initialTwin")
        skeleton.update(dict.fromkeys(slots, _SLOT))
        self._pieces = self._split(skeleton)
        # the attestation's shapes: a TPM without and with an SRK, an X.509 certificate
        self._attestations = {
            shape: self._split(_attestation_of(probe, template, None))
            for shape, probe in (
                ("tpm", {"attestation": "tpm", "tpm": {"endorsement_key": _SLOT}}),
                (
                    "tpm+srk",
                    {
                        "attestation": "tpm",
                        "tpm": {"endorsement_key": _SLOT, "storage_root_key": _SLOT},
                    },
                ),
                ("x509", {"attestation": "x509", "x509": {"certificate_pem": _SLOT}}),
            )
        }

    def encode(self, data: Mapping[str, Any]) -> str | None:
        """The enrollment body of one manifest as JSON text (``None``: symmetric-key)."""
        if data["attestation"] == Attestation.SYMMETRIC_KEY:
            return None
        if data.get("operational_certificate"):  # a field of its own: the general encoder
            return self._encode_object(enrollment_of(data, self._template))
        _refuse_voided(data)
        fields = placeholder_values_of(data)
        texts = [
            self._attestation(data),
            encode_basestring_ascii(self._template.device_id.format_map(fields)),
        ]
        if self._twin_key is not None:
            texts.append(self._twin(self._twin_key(fields), fields))
        texts.append(encode_basestring_ascii(data["registration_id"]))
        return _splice(self._pieces, texts)

    def _split(self, skeleton: Mapping[str, Any]) -> list[str]:
        """The JSON text of ``skeleton``, cut where its :data:`_SLOT` values are."""
        return self._encode_object(skeleton).split(encode_basestring_ascii(_SLOT))

    def _attestation(self, data: Mapping[str, Any]) -> str:
        """The ``attestation`` JSON text of a TPM or X.509 manifest's JSON object."""
        if data["attestation"] == Attestation.X509:
            leaves = [data["x509"]["certificate_pem"]]
            shape = "x509"
        else:
            tpm = data["tpm"]
            srk = tpm.get("storage_root_key")
            leaves = [tpm["endorsement_key"], srk] if srk else [tpm["endorsement_key"]]
            shape = "tpm+srk" if srk else "tpm"
        return _splice(self._attestations[shape], [encode_basestring_ascii(v) for v in leaves])

    def _twin(self, key: object, fields: Mapping[str, str]) -> str:
        """The filled twin's JSON text, remembered by ``key``: the values of the names it uses."""
        text = self._twins.get(key)
        if text is None:
            if len(self._twins) >= _TWIN_CACHE:  # per-device names: do not keep a million
                self._twins.clear()
            template = self._template
            text = self._encode_object(
                {
                    "tags": _fill(template.twin_tags, fields),
                    "properties": {"desired": _fill(template.twin_desired, fields)},
                }
            )
            self._twins[key] = text
        return text


def _splice(pieces: list[str], values: list[str]) -> str:
    """``pieces[0] + values[0] + pieces[1] + ...``: a skeleton's text with its slots filled."""
    parts = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        parts.append(value)
        parts.append(piece)
    return "".join(parts)


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
        CREDENTIAL_POLICY_FIELD,
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
    if kind == "tpm":
        result["attestation"] = {"tpm": (attestation.get("tpm") or {}).get("endorsementKey")}
    elif kind == "x509":
        result["attestation"] = {"x509": _x509_identity(attestation.get("x509") or {})}
    elif kind == "symmetricKey":
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
