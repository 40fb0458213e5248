r"""Shared access policies and SAS tokens, as DPS checks them (dps-api.md §3.1).

A service-API token is ``SharedAccessSignature sr=<resource>&sig=<sig>&se=<expiry>&skn=<policy>``
(field order free). ``sig`` is base64(HMAC-SHA256(base64decode(policy key),
urlencode(resource) + "\\n" + se)). The resource is the DPS host name, lower-cased, optionally
followed by a path (matched by segment). The same helpers will serve the device API later
(resource ``{idScope}/registrations/{id}``, ``skn=registration``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, urlencode

from station_lab.dps import errors as codes
from station_lab.dps.errors import ApiError

ENROLLMENT_READ = "EnrollmentRead"
ENROLLMENT_WRITE = "EnrollmentWrite"
REGISTRATION_READ = "RegistrationStatusRead"
REGISTRATION_WRITE = "RegistrationStatusWrite"
SERVICE_CONFIG = "ServiceConfig"
ALL_PERMISSIONS = (
    SERVICE_CONFIG,
    ENROLLMENT_READ,
    ENROLLMENT_WRITE,
    REGISTRATION_READ,
    REGISTRATION_WRITE,
)
OWNER_POLICY = "provisioningserviceowner"
READER_POLICY = "enrollmentread"


@dataclass(frozen=True)
class AccessPolicy:
    """A shared access policy: a name, a base64 key and the permissions it grants."""

    name: str
    key: str
    permissions: frozenset[str]


def new_key() -> str:
    """Return a fresh 32-byte policy key, base64-encoded as DPS shows them."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def load_or_create_policies(path: Path) -> dict[str, AccessPolicy]:
    """Read the lab's policies from ``path``, creating the default two on first use.

    The defaults are ``provisioningserviceowner`` (every permission, like a new DPS) and
    ``enrollmentread`` (read-only, to test permission refusals). The file is written 0600 because
    it holds the keys.
    """
    if not path.exists():
        policies = {
            OWNER_POLICY: AccessPolicy(OWNER_POLICY, new_key(), frozenset(ALL_PERMISSIONS)),
            READER_POLICY: AccessPolicy(
                READER_POLICY, new_key(), frozenset({ENROLLMENT_READ, REGISTRATION_READ})
            ),
        }
        raw = [
            {"name": p.name, "key": p.key, "permissions": sorted(p.permissions)}
            for p in policies.values()
        ]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(raw, handle, indent=2)
        return policies
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return {
        item["name"]: AccessPolicy(item["name"], item["key"], frozenset(item["permissions"]))
        for item in loaded
    }


def connection_string(host_name: str, policy: AccessPolicy) -> str:
    """Return the DPS service connection string for ``policy`` on ``host_name``."""
    return f"HostName={host_name};SharedAccessKeyName={policy.name};SharedAccessKey={policy.key}"


def sign(resource: str, key: str, expiry: int) -> str:
    r"""Return the base64 signature over ``urlencode(resource) + "\\n" + expiry``."""
    message = f"{quote_plus(resource)}\n{expiry}".encode()
    digest = hmac.new(base64.b64decode(key), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def make_token(
    resource: str, policy: AccessPolicy, *, ttl_s: int = 3600, now: float | None = None
) -> str:
    """Build a SAS token for ``resource`` signed with ``policy`` (for tests and tools)."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    fields = {"sr": resource, "sig": sign(resource, policy.key, expiry), "se": str(expiry)}
    fields["skn"] = policy.name
    return "SharedAccessSignature " + urlencode(fields)


def _unauthorized(message: str) -> ApiError:
    return ApiError(codes.UNAUTHORIZED, message)


def authenticate(
    header: str | None,
    *,
    policies: Mapping[str, AccessPolicy],
    audiences: Iterable[str],
    path: str,
    now: float,
) -> AccessPolicy:
    """Check an ``Authorization`` header and return the policy that signed it.

    Args:
        header: the raw header value (None when absent).
        policies: the service's shared access policies by name.
        audiences: host names the service answers to (lower case, with or without port).
        path: the request's path: a token whose resource names a path (``sr=HOST/enrollments``)
            is good for that path and below it only, segment by segment.
        now: the current Unix time.

    Raises:
        ApiError: 401002 when the header is missing, malformed, for another resource, expired,
            names an unknown policy or carries a wrong signature.
    """
    if not header:
        raise _unauthorized("The request carries no Authorization header.")
    scheme, _, rest = header.strip().partition(" ")
    if scheme != "SharedAccessSignature" or not rest:
        raise _unauthorized("The Authorization header is not a SharedAccessSignature token.")
    try:
        fields = dict(parse_qsl(rest.strip(), keep_blank_values=True, strict_parsing=True))
    except ValueError as exc:
        raise _unauthorized("The SharedAccessSignature token is malformed.") from exc
    missing = [name for name in ("sr", "sig", "se", "skn") if not fields.get(name)]
    if missing:
        raise _unauthorized(f"The SharedAccessSignature token lacks {', '.join(missing)}.")
    resource = fields["sr"]
    host, _, scope = resource.lower().partition("/")
    if host not in {a.lower() for a in audiences}:
        raise _unauthorized(f"The token's resource {resource!r} is not this service.")
    if not _covers(scope, path):
        raise _unauthorized(f"The token's resource {resource!r} does not cover {path!r}.")
    try:
        expiry = int(fields["se"])
    except ValueError as exc:
        raise _unauthorized("The token's expiry (se) is not a number.") from exc
    if expiry <= now:
        raise _unauthorized("The SharedAccessSignature token has expired.")
    policy = policies.get(fields["skn"])
    if policy is None:
        raise _unauthorized(f"There is no shared access policy named {fields['skn']!r}.")
    if not _signature_matches(fields["sig"], resource, policy.key, expiry):
        raise _unauthorized("The SharedAccessSignature signature does not match.")
    return policy


def _covers(scope: str, path: str) -> bool:
    """Whether a token scoped to ``scope`` (a path below the host) may be used for ``path``."""
    granted = [part for part in scope.split("/") if part]
    wanted = [part for part in path.lower().split("/") if part]
    return wanted[: len(granted)] == granted


def _signature_matches(sig: str, resource: str, key: str, expiry: int) -> bool:
    # SDKs disagree on how the resource is encoded before signing (quote_plus, quote, raw);
    # DPS evidently accepts them all, so the stand-in does too.
    message_forms = {quote_plus(resource), quote(resource, safe=""), resource}
    message_forms |= {form.lower() for form in list(message_forms)}
    secret = base64.b64decode(key)
    try:
        given = base64.b64decode(sig, validate=True)
    except ValueError:
        return False
    for form in message_forms:
        expected = hmac.new(secret, f"{form}\n{expiry}".encode(), hashlib.sha256).digest()
        if hmac.compare_digest(expected, given):
            return True
    return False


def require(policy: AccessPolicy, permission: str) -> None:
    """Refuse (401002) when ``policy`` lacks ``permission``."""
    if permission not in policy.permissions:
        raise _unauthorized(f"The policy {policy.name!r} does not grant {permission}.")


# --------------------------------------------------------------------------- device API (§3.2)
#: Route marker: device API operations authenticate by attestation, not by a service policy.
DEVICE_ACCESS = "DeviceAttestation"
DEVICE_KEY_NAME = "registration"


@dataclass(frozen=True)
class DeviceToken:
    """A parsed device SAS token (``skn=registration``) for one registration."""

    resource: str
    signature: str
    expiry: int

    def signed_with(self, key: str) -> bool:
        """Return whether the token was signed with ``key`` (base64), in any accepted encoding."""
        return _signature_matches(self.signature, self.resource, key, self.expiry)


def device_resource(id_scope: str, registration_id: str) -> str:
    """The resource a device signs: ``{idScope}/registrations/{registrationId}``."""
    return f"{id_scope}/registrations/{registration_id}"


def parse_device_token(
    header: str, *, id_scope: str, registration_id: str, now: float
) -> DeviceToken:
    """Parse a device ``Authorization`` header and check everything but the signature.

    Raises:
        ApiError: 401002 when the token is malformed, names a key other than ``registration``,
            is for another
            registration or ID scope, or expired.
    """
    scheme, _, rest = header.strip().partition(" ")
    if scheme != "SharedAccessSignature" or not rest:
        raise _unauthorized("The Authorization header is not a SharedAccessSignature token.")
    try:
        fields = dict(parse_qsl(rest.strip(), keep_blank_values=True, strict_parsing=True))
    except ValueError as exc:
        raise _unauthorized("The SharedAccessSignature token is malformed.") from exc
    missing = [name for name in ("sr", "sig", "se") if not fields.get(name)]
    if missing:
        raise _unauthorized(f"The SharedAccessSignature token lacks {', '.join(missing)}.")
    # The Python device SDK signs DPS tokens without skn (real DPS accepts them); one that names
    # a key must name the registration key.
    if fields.get("skn", DEVICE_KEY_NAME) != DEVICE_KEY_NAME:
        raise _unauthorized(f"A device token must use skn={DEVICE_KEY_NAME} or no skn.")
    # Devices URL-encode the resource once or not at all; both decode to the same text.
    resource = fields["sr"]
    expected = device_resource(id_scope, registration_id)
    if resource.lower() not in (expected.lower(), quote_plus(expected).lower()):
        raise _unauthorized(f"The token's resource {resource!r} is not {expected!r}.")
    try:
        expiry = int(fields["se"])
    except ValueError as exc:
        raise _unauthorized("The token's expiry (se) is not a number.") from exc
    if expiry <= now:
        raise _unauthorized("The SharedAccessSignature token has expired.")
    return DeviceToken(resource, fields["sig"], expiry)


def derive_device_key(group_key: str, registration_id: str) -> str:
    """Derive a device key from a group key: base64(HMAC-SHA256(group key, registration ID))."""
    digest = hmac.new(base64.b64decode(group_key), registration_id.encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")
