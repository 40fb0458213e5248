"""Request-body validation and normalisation, as DPS does it (dps-api.md §2).

The stand-in stores an enrollment as PUT answers it: certificates replaced by their ``info``
block, missing symmetric keys generated, fields sent as null left out (no defaults filled in).
GET and query answer the same record without its symmetric keys (``service.py``). Every refusal
is an :class:`ApiError` with a DPS error code; nothing here lets a library exception escape.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from tpm2_pytss.constants import TPM2_ALG
from tpm2_pytss.types import TPM2B_PUBLIC

from station.domain.errors import InvalidRegistrationIdError
from station.domain.registration import normalize_registration_id
from station_lab.dps import errors as codes
from station_lab.dps.errors import ApiError

ATTESTATION_TYPES = ("tpm", "x509", "symmetricKey")
ALLOCATION_POLICIES = ("hashed", "geoLatency", "static", "custom")
PROVISIONING_STATUSES = ("enabled", "disabled")
BULK_MODES = ("create", "update", "updateIfMatchETag", "delete")
MIN_SYMMETRIC_KEY_BYTES = 16
MAX_SYMMETRIC_KEY_BYTES = 64
GENERATED_KEY_BYTES = 64  # what DPS generates for a key sent as null or left out
MAX_ID_LENGTH = 128


def timestamp(moment: datetime) -> str:
    """Format a time as DPS does: UTC, seven fractional digits, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def invalid(message: str, code: int = codes.INVALID_FIELD) -> ApiError:
    """Return a 400 :class:`ApiError` (``INVALID_FIELD`` unless ``code`` says otherwise)."""
    return ApiError(code, message)


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    # bool is an int in Python; JSON keeps them apart, so must we.
    if isinstance(value, bool) and kind is not bool:
        raise invalid(f"'{where}' must be {what}, not a boolean.")
    if not isinstance(value, kind):
        raise invalid(f"'{where}' must be {what}.")
    return value


def _string(body: Mapping[str, Any], key: str, where: str) -> str | None:
    if key not in body or body[key] is None:
        return None
    return str(_expect(body[key], str, f"{where}{key}", "a string"))


def _enum(body: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str | None:
    value = _string(body, key, where)
    if value is not None and value not in allowed:
        raise invalid(f"'{where}{key}' must be one of {', '.join(allowed)}, not {value!r}.")
    return value


def _object(body: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    if key not in body or body[key] is None:
        return None
    return dict(_expect(body[key], dict, f"{where}{key}", "an object"))


def check_id(value: Any, what: str, *, x509_limit: bool = False) -> str:
    """Validate a registration ID or enrollment group ID and return it in canonical case."""
    if not isinstance(value, str):
        raise invalid(f"'{what}' must be a string.", codes.INVALID_REGISTRATION_ID)
    try:
        return normalize_registration_id(value, x509=x509_limit)
    except InvalidRegistrationIdError as exc:
        raise invalid(
            exc.message.replace("registration ID", what), codes.INVALID_REGISTRATION_ID
        ) from exc


def parse_tpm2b_public(encoded: Any, where: str) -> bytes:
    """Decode a base64 ``TPM2B_PUBLIC`` strictly; refuse anything else with 400004."""
    if not isinstance(encoded, str) or not encoded:
        raise invalid(f"'{where}' must be a base64 string.", codes.INVALID_ENDORSEMENT_KEY)
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"'{where}' is not valid base64.", codes.INVALID_ENDORSEMENT_KEY) from exc
    message = f"'{where}' is not a marshaled TPM2B_PUBLIC."
    try:
        public, consumed = TPM2B_PUBLIC.unmarshal(raw)
    except Exception as exc:
        raise invalid(message, codes.INVALID_ENDORSEMENT_KEY) from exc
    if consumed != len(raw) or public.size != len(raw) - 2:
        raise invalid(message, codes.INVALID_ENDORSEMENT_KEY)
    area = public.publicArea
    if area.type == TPM2_ALG.RSA:
        bits = int(area.parameters.rsaDetail.keyBits)
        if bits < 1024 or len(bytes(area.unique.rsa)) != bits // 8:
            raise invalid(
                f"'{where}' holds an RSA key of inconsistent size.", codes.INVALID_ENDORSEMENT_KEY
            )
    elif area.type == TPM2_ALG.ECC:
        if not bytes(area.unique.ecc.x) or not bytes(area.unique.ecc.y):
            raise invalid(f"'{where}' holds an empty ECC point.", codes.INVALID_ENDORSEMENT_KEY)
    else:
        raise invalid(f"'{where}' is neither an RSA nor an ECC key.", codes.INVALID_ENDORSEMENT_KEY)
    return raw


def load_certificate(encoded: Any, where: str) -> x509.Certificate:
    """Parse a certificate given as PEM, base64 DER or base64 PEM (400006 if it is none)."""
    if not isinstance(encoded, str) or not encoded.strip():
        raise invalid(
            f"'{where}' must be a certificate (PEM or base64 DER).", codes.INVALID_CERTIFICATE
        )
    text = encoded.strip()
    try:
        if text.startswith("-----BEGIN"):
            return x509.load_pem_x509_certificate(text.encode("ascii"))
        raw = base64.b64decode(text, validate=True)
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except (ValueError, UnicodeEncodeError, binascii.Error) as exc:
        raise invalid(
            f"'{where}' is not a valid X.509 certificate.", codes.INVALID_CERTIFICATE
        ) from exc


def thumbprint(cert: x509.Certificate) -> str:
    """The upper-case hex SHA-256 thumbprint DPS shows (and the stand-in keys certificates by)."""
    return cert.fingerprint(hashes.SHA256()).hex().upper()


def enrolled_certificates(body: Any) -> list[x509.Certificate]:
    """The certificates in an (already validated) enrollment or group request body."""
    mech = body.get("attestation") if isinstance(body, dict) else None
    x = mech.get("x509") if isinstance(mech, dict) else None
    if not isinstance(x, dict):
        return []
    found: list[x509.Certificate] = []
    for key in ("clientCertificates", "signingCertificates"):
        pair = x.get(key)
        if not isinstance(pair, dict):
            continue
        for slot in ("primary", "secondary"):
            entry = pair.get(slot)
            if isinstance(entry, dict) and entry.get("certificate") is not None:
                found.append(load_certificate(entry["certificate"], f"{key}.{slot}"))
    return found


def certificate_info(encoded: Any, where: str) -> dict[str, Any]:
    """Parse a certificate given as PEM, base64 DER or base64 PEM; return its DPS ``info``."""
    cert = load_certificate(encoded, where)
    return {
        "subjectName": _dn(cert.subject),
        "sha1Thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),
        "sha256Thumbprint": thumbprint(cert),
        "issuerName": _dn(cert.issuer),
        "notBeforeUtc": timestamp(cert.not_valid_before_utc),
        "notAfterUtc": timestamp(cert.not_valid_after_utc),
        "serialNumber": format(cert.serial_number, "X"),
        "version": cert.version.value + 1,
    }


def _dn(name: x509.Name) -> str:
    # DPS prints names most-specific first, comma+space separated ("CN=x, O=y, C=z").
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(list(name.rdns)))


def _symmetric_key(value: Any, where: str) -> str:
    if value is None:
        return base64.b64encode(secrets.token_bytes(GENERATED_KEY_BYTES)).decode("ascii")
    if not isinstance(value, str):
        raise invalid(f"'{where}' must be a base64 string.", codes.INVALID_SYMMETRIC_KEY)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"'{where}' is not valid base64.", codes.INVALID_SYMMETRIC_KEY) from exc
    if not MIN_SYMMETRIC_KEY_BYTES <= len(raw) <= MAX_SYMMETRIC_KEY_BYTES:
        raise invalid(
            f"'{where}' must decode to {MIN_SYMMETRIC_KEY_BYTES}-{MAX_SYMMETRIC_KEY_BYTES} bytes, "
            f"not {len(raw)}.",
            codes.INVALID_SYMMETRIC_KEY,
        )
    return value


def _certificate_pair(body: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    pair = _object(body, key, where)
    if pair is None:
        return None
    result: dict[str, Any] = {}
    for slot in ("primary", "secondary"):
        entry = _object(pair, slot, f"{where}{key}.")
        if entry is None:
            continue
        result[slot] = {
            "info": certificate_info(entry.get("certificate"), f"{where}{key}.{slot}.certificate")
        }
    if "primary" not in result:
        raise invalid(f"'{where}{key}.primary' is required.", codes.INVALID_CERTIFICATE)
    if key == "clientCertificates":
        # Recorded from real DPS: a lone primary certificate is answered as the secondary too.
        result.setdefault("secondary", result["primary"])
    return result


def attestation(body: Any, *, group: bool) -> dict[str, Any]:
    """Validate an AttestationMechanism and return it as the stand-in stores and answers it."""
    mech = dict(_expect(body, dict, "attestation", "an object"))
    kind = _enum(mech, "type", (*ATTESTATION_TYPES, "none"), "attestation.")
    if kind is None:
        raise invalid("'attestation.type' is required.")
    if kind == "none":
        raise invalid("Attestation type 'none' cannot be enrolled.")
    if group and kind == "tpm":
        raise invalid("An enrollment group's attestation must be x509 or symmetricKey.")
    result: dict[str, Any] = {"type": kind}
    if kind == "tpm":
        tpm = _object(mech, "tpm", "attestation.")
        if tpm is None:
            raise invalid(
                "'attestation.tpm' is required for TPM attestation.", codes.INVALID_ENDORSEMENT_KEY
            )
        parse_tpm2b_public(tpm.get("endorsementKey"), "attestation.tpm.endorsementKey")
        result["tpm"] = {"endorsementKey": tpm["endorsementKey"]}
        if tpm.get("storageRootKey") is not None:
            parse_tpm2b_public(tpm["storageRootKey"], "attestation.tpm.storageRootKey")
            result["tpm"]["storageRootKey"] = tpm["storageRootKey"]
    elif kind == "x509":
        x = _object(mech, "x509", "attestation.")
        if x is None:
            raise invalid(
                "'attestation.x509' is required for X.509 attestation.", codes.INVALID_CERTIFICATE
            )
        out: dict[str, Any] = {}
        cert_key = "signingCertificates" if group else "clientCertificates"
        other = "clientCertificates" if group else "signingCertificates"
        if x.get(other) is not None:
            raise invalid(f"'attestation.x509.{other}' is not allowed here; use {cert_key}.")
        certs = _certificate_pair(x, cert_key, "attestation.x509.")
        if certs is not None:
            out[cert_key] = certs
        refs = _object(x, "caReferences", "attestation.x509.")
        if refs is not None:
            out["caReferences"] = {
                slot: _expect(refs[slot], str, f"attestation.x509.caReferences.{slot}", "a string")
                for slot in ("primary", "secondary")
                if refs.get(slot) is not None
            }
            if "primary" not in out["caReferences"]:
                raise invalid("'attestation.x509.caReferences.primary' is required.")
        if not out:
            raise invalid(
                f"'attestation.x509' needs {cert_key} or caReferences.", codes.INVALID_CERTIFICATE
            )
        result["x509"] = out
    else:
        sym = _object(mech, "symmetricKey", "attestation.") or {}
        result["symmetricKey"] = {
            "primaryKey": _symmetric_key(
                sym.get("primaryKey"), "attestation.symmetricKey.primaryKey"
            ),
            "secondaryKey": _symmetric_key(
                sym.get("secondaryKey"), "attestation.symmetricKey.secondaryKey"
            ),
        }
    return result


def _common_fields(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """Validate the fields individual enrollments and groups share, copying them to ``out``."""
    hub = _string(body, "iotHubHostName", "")
    if hub is not None:
        out["iotHubHostName"] = hub
    if body.get("iotHubs") is not None:
        hubs = _expect(body["iotHubs"], list, "iotHubs", "an array of host names")
        out["iotHubs"] = [_expect(h, str, "iotHubs[]", "a host name string") for h in hubs]
    policy = _enum(body, "allocationPolicy", ALLOCATION_POLICIES, "")
    if policy is not None:
        out["allocationPolicy"] = policy
    custom = _object(body, "customAllocationDefinition", "")
    if custom is not None:
        for key in ("webhookUrl", "apiVersion"):
            if _string(custom, key, "customAllocationDefinition.") is None:
                raise invalid(f"'customAllocationDefinition.{key}' is required.")
        out["customAllocationDefinition"] = {
            "webhookUrl": custom["webhookUrl"],
            "apiVersion": custom["apiVersion"],
        }
    if policy == "custom" and custom is None:
        raise invalid("allocationPolicy 'custom' needs a customAllocationDefinition.")
    twin = _object(body, "initialTwin", "")
    if twin is not None:
        clean: dict[str, Any] = {}
        tags = _object(twin, "tags", "initialTwin.")
        if tags is not None:
            clean["tags"] = tags
        props = _object(twin, "properties", "initialTwin.")
        if props is not None:
            desired = _object(props, "desired", "initialTwin.properties.")
            clean["properties"] = {"desired": desired} if desired is not None else {}
        out["initialTwin"] = clean
    # Fields sent as null or left out are not filled with defaults: real DPS answers them by
    # leaving them out, and provisioningStatus as null (it still means enabled).
    caps = _object(body, "capabilities", "")
    if caps is not None:
        iot_edge = caps.get("iotEdge", False)
        out["capabilities"] = {
            "iotEdge": _expect(iot_edge, bool, "capabilities.iotEdge", "a boolean")
        }
    out["provisioningStatus"] = _enum(body, "provisioningStatus", PROVISIONING_STATUSES, "")
    # Certificate management: the ADR credential policy that issues the devices' operational
    # certificates (a string, in the 2025-07-01-preview and 2026-04-01 service specs).
    credential_policy = _string(body, "credentialPolicyName", "")
    if credential_policy is not None:
        if not credential_policy.strip() or len(credential_policy) > 50:
            raise invalid("'credentialPolicyName' must name a credential policy (3-50 characters).")
        out["credentialPolicyName"] = credential_policy
    reprov = _object(body, "reprovisionPolicy", "")
    if reprov is not None:
        out["reprovisionPolicy"] = {
            key: _expect(reprov.get(key, True), bool, f"reprovisionPolicy.{key}", "a boolean")
            for key in ("updateHubAssignment", "migrateDeviceData")
        }


def enrollment(body: Any, path_id: str | None) -> dict[str, Any]:
    """Validate an IndividualEnrollment request body (PUT or a bulk item).

    Args:
        body: the decoded JSON.
        path_id: the id in the URL (None for bulk items, where the body's id is the key).

    Returns:
        The record to store, without etag and timestamps.
    """
    doc = dict(_expect(body, dict, "body", "an IndividualEnrollment object"))
    if doc.get("registrationId") is None:
        raise invalid("'registrationId' is required.", codes.INVALID_REGISTRATION_ID)
    mech = attestation(doc.get("attestation"), group=False)
    reg_id = check_id(doc["registrationId"], "registrationId", x509_limit=mech["type"] == "x509")
    if path_id is not None and reg_id != path_id:
        raise invalid("'registrationId' in the body differs from the id in the URL.")
    out: dict[str, Any] = {"registrationId": reg_id}
    device_id = _string(doc, "deviceId", "")
    if device_id is not None:
        out["deviceId"] = device_id
    info = _object(doc, "optionalDeviceInformation", "")
    if info is not None:
        out["optionalDeviceInformation"] = info
    out["attestation"] = mech
    _common_fields(doc, out)
    return out


def group(body: Any, path_id: str | None) -> dict[str, Any]:
    """Validate an EnrollmentGroup request body; see :func:`enrollment`."""
    doc = dict(_expect(body, dict, "body", "an EnrollmentGroup object"))
    if doc.get("enrollmentGroupId") is None:
        raise invalid("'enrollmentGroupId' is required.", codes.INVALID_REGISTRATION_ID)
    group_id = check_id(doc["enrollmentGroupId"], "enrollmentGroupId")
    if path_id is not None and group_id != path_id:
        raise invalid("'enrollmentGroupId' in the body differs from the id in the URL.")
    out: dict[str, Any] = {"enrollmentGroupId": group_id}
    out["attestation"] = attestation(doc.get("attestation"), group=True)
    _common_fields(doc, out)
    return out


def new_etag() -> str:
    """Return a fresh opaque etag shaped like DPS's (base64 of a quoted GUID-like string)."""
    token = secrets.token_hex(16)
    guid = f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:]}"
    return base64.b64encode(f'"{guid}"'.encode("ascii")).decode("ascii")


def registration_etag(seed: str) -> str:
    """Return a deterministic etag for registration state written without one."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    guid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return base64.b64encode(f'"{guid}"'.encode("ascii")).decode("ascii")
