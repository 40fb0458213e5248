"""The DPS device registration API of the stand-in, without HTTP (dps-api.md §6-§9).

``PUT /{idScope}/registrations/{id}/register`` attests the device, allocates a hub and answers
202 with an ``operationId``; ``GET .../operations/{operationId}`` reports ``assigning`` until the
(configurable) assignment delay has passed, then the result; ``POST /{idScope}/registrations/{id}``
looks the registration up. Attestation:

* **X.509**: the TLS layer has verified the client's chain up to an enrolled certificate (see
  ``server.py``); here the leaf's CN must equal the registration ID, then the individual
  enrollment whose client certificate is the leaf matches first, else the groups walking up the
  chain (signing certificates or CA references).
* **Symmetric key**: a SAS (``skn=registration``) over ``{idScope}/registrations/{id}`` signed
  with the individual enrollment's key, or with a key derived from a group key.
* **TPM**: an unauthenticated PUT gets 401 with an ``authenticationKey`` made for the enrolled
  EK (``tpm_challenge.py``); the next PUT carries a SAS signed by the imported key.

A disabled enrollment (or group) that matches blocks provisioning: the operation ends with status
``disabled``. The hub registry (``hub_devices``) records which hub got which device.

**Operational certificates** (api-versions ``2025-07-01-preview`` and ``2026-04-01``): a register
body with ``csr``
for an enrollment that names a ``credentialPolicyName`` gets the chain the lab's device registry
issues (``credentials.py``) in ``registrationState.issuedCertificateChain``; the hub registry
records the device's current certificate. Under older api-versions ``csr`` is ignored.
"""

from __future__ import annotations

import base64
import copy
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from station_lab.dps import auth, credentials, tpm_challenge, validation
from station_lab.dps import errors as codes
from station_lab.dps.allocation import AllocationContext, AllocationFailed, Allocator
from station_lab.dps.errors import ApiError
from station_lab.dps.limits import RateLimiter, retry_after_headers
from station_lab.dps.service import ApiRequest, ApiResponse
from station_lab.dps.store import DpsStore
from station_lab.dps.versions import CSR_API_VERSIONS

POLLS_PER_WINDOW: Final = 5  # dps-api.md §4: device polling 5 per 10 s per device
POLL_WINDOW_S: Final = 10.0
MAX_CHAIN: Final = 10
MAX_OPERATIONS: Final = 200_000  # beyond this, the oldest operations are forgotten
MAX_TRACKED_DEVICES: Final = 200_000  # the same bound for poll limiters and TPM challenge keys


@dataclass(frozen=True)
class DeviceApiSettings:
    """Knobs of the device API (from :class:`station_lab.dps.DpsOptions`)."""

    id_scope: str
    retry_after_s: float = 3.0
    assignment_delay_s: float = 0.0
    time_scale: float = 1.0


@dataclass(frozen=True)
class _Match:
    """The enrollment a device authenticated against and how."""

    enrollment: dict[str, Any]
    group_id: str | None
    auth_type: str  # tpm | x509 | symmetricKey
    device_id: str
    extra: dict[str, Any] = field(default_factory=dict)  # attestation part of the device result
    runtime: dict[str, Any] = field(default_factory=dict)  # deviceRuntimeContext attestation
    verify_poll: Callable[[ApiRequest], None] | None = None


@dataclass
class _Operation:
    registration_id: str
    ready_at: float
    result: dict[str, Any]
    verify_poll: Callable[[ApiRequest], None] | None


class DeviceRegistrationApi:
    """Register, poll and look up device registrations.

    Args:
        store: the stand-in's records (enrollments, groups, certificates, registrations, hubs).
        allocator: chooses hubs.
        settings: ID scope and timing.
        clock: monotonic seconds (injectable for tests).
        now: UTC wall clock for timestamps.
    """

    def __init__(
        self,
        store: DpsStore,
        allocator: Allocator,
        settings: DeviceApiSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        registry: credentials.DeviceRegistry | None = None,
    ) -> None:
        self.store = store
        self.registry = registry or credentials.DeviceRegistry(store, now=now)
        self.allocator = allocator
        self.settings = settings
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._operations: dict[str, _Operation] = {}
        self._poll_limits: dict[str, RateLimiter] = {}
        self._tpm_keys: dict[str, str] = {}  # registration ID -> base64 HMAC key (memory only)

    # ------------------------------------------------------------------ operations
    def register(self, request: ApiRequest) -> ApiResponse:
        """``PUT /{idScope}/registrations/{id}/register``: attest, allocate, answer 202."""
        reg_id = self._registration_id(request)
        match = self._attest(request, reg_id, challenge=True)
        if isinstance(match, ApiResponse):
            return match  # the TPM challenge
        body = request.body if isinstance(request.body, dict) else {}
        csr = self._csr(request, reg_id, match)
        state = self._assign(reg_id, match, body.get("payload"), csr)
        operation_id = f"5.{uuid.uuid4().hex[:16]}.{uuid.uuid4()}"
        result: dict[str, Any] = {
            "operationId": operation_id,
            "status": state["status"],
            "registrationState": {**state, **match.extra},
        }
        with self._lock:
            if len(self._operations) >= MAX_OPERATIONS:
                self._operations.pop(next(iter(self._operations)))
            self._operations[operation_id] = _Operation(
                reg_id, self._clock() + self.settings.assignment_delay_s, result, match.verify_poll
            )
        location = f"/{self.settings.id_scope}/registrations/{reg_id}/register"
        return ApiResponse(
            202,
            {"operationId": operation_id, "status": "assigning"},
            {**self._retry_after(self.settings.retry_after_s), "Location": location},
        )

    def operation_status(self, request: ApiRequest) -> ApiResponse:
        """``GET .../operations/{operationId}``: 202 while assigning, then 200 with the result."""
        reg_id = self._registration_id(request)
        with self._lock:
            operation = self._operations.get(request.params["operationId"])
        if operation is None or operation.registration_id != reg_id:
            raise ApiError(
                codes.OPERATION_NOT_FOUND,
                f"Operation {request.params['operationId']!r} does not exist for {reg_id!r}.",
            )
        if operation.verify_poll is not None:
            operation.verify_poll(request)
        self._count_poll(reg_id)
        remaining = operation.ready_at - self._clock()
        if remaining > 0:
            return ApiResponse(
                202,
                {"operationId": request.params["operationId"], "status": "assigning"},
                self._retry_after(min(self.settings.retry_after_s, remaining)),
            )
        return ApiResponse(200, copy.deepcopy(operation.result))

    def status_lookup(self, request: ApiRequest) -> ApiResponse:
        """``POST /{idScope}/registrations/{id}``: the registration's current result."""
        reg_id = self._registration_id(request)
        if isinstance(request.body, dict) and request.body.get("csr") is not None:
            # the preview spec: a csr in a status lookup is a bad request
            raise ApiError(codes.CSR_NOT_ALLOWED, "'csr' is not allowed in a status lookup.")
        match = self._attest(request, reg_id, challenge=False)
        if isinstance(match, ApiResponse):  # pragma: no cover - challenge=False never returns one
            return match
        state = self.store.get("registrations", reg_id)
        if state is None:
            raise ApiError(codes.REGISTRATION_NOT_FOUND, f"Registration {reg_id!r} does not exist.")
        return ApiResponse(200, {**state, **match.extra})

    def hub_devices(self, hub: str | None = None) -> list[dict[str, Any]]:
        """The hub registry: every device a linked hub got (optionally of one hub)."""
        devices = self.store.all("hub_devices")
        if hub is None:
            return devices
        return [d for d in devices if str(d["hub"]).lower() == hub.lower()]

    # ------------------------------------------------------------------ helpers
    def _registration_id(self, request: ApiRequest) -> str:
        scope = request.params["idScope"]
        if scope.lower() != self.settings.id_scope.lower():
            raise ApiError(codes.UNKNOWN_ID_SCOPE, f"The ID scope {scope!r} is not this service's.")
        reg_id = validation.check_id(request.params["id"], "registrationId")
        body = request.body
        if request.has_body and not isinstance(body, dict):
            raise ApiError(codes.INVALID_DEVICE_REQUEST, "The body must be a DeviceRegistration.")
        named = body.get("registrationId") if isinstance(body, dict) else None
        if named is not None and (not isinstance(named, str) or named.lower() != reg_id):
            raise ApiError(
                codes.INVALID_DEVICE_REQUEST,
                "'registrationId' in the body differs from the id in the URL.",
            )
        return reg_id

    def _csr(self, request: ApiRequest, reg_id: str, match: _Match) -> str | None:
        """The register body's ``csr`` (certificate-management api-versions), before assignment."""
        body = request.body if isinstance(request.body, dict) else {}
        encoded = body.get("csr")
        if encoded is None or request.params.get("apiVersion") not in CSR_API_VERSIONS:
            return None
        if not match.enrollment.get("credentialPolicyName"):
            raise ApiError(
                codes.CSR_NOT_ALLOWED,
                "The enrollment names no credential policy: no certificate can be issued.",
            )
        csr = credentials.parse_csr(encoded)
        credentials.check_csr(csr, reg_id)
        return str(encoded)

    def _retry_after(self, seconds: float) -> dict[str, str]:
        return retry_after_headers(seconds)

    def _count_poll(self, reg_id: str) -> None:
        with self._lock:
            limiter = self._poll_limits.get(reg_id)
            if limiter is None:
                _bound(self._poll_limits)
                # RateLimiter counts per scaled minute; a 10 s window is a 6x shorter minute.
                scale = self.settings.time_scale * 60.0 / POLL_WINDOW_S
                limiter = RateLimiter(POLLS_PER_WINDOW, time_scale=scale, clock=self._clock)
                self._poll_limits[reg_id] = limiter
        wait = limiter.acquire()
        if wait > 0:
            raise ApiError(
                codes.THROTTLED,
                f"Too many polls: a device may poll {POLLS_PER_WINDOW} times per "
                f"{POLL_WINDOW_S:g} seconds.",
                headers=self._retry_after(wait),
            )

    # ------------------------------------------------------------------ attestation
    def _attest(self, request: ApiRequest, reg_id: str, *, challenge: bool) -> _Match | ApiResponse:
        body = request.body if isinstance(request.body, dict) else {}
        if isinstance(body.get("tpm"), dict):
            return self._attest_tpm(request, reg_id, body["tpm"], challenge=challenge)
        if request.headers.get("authorization"):
            return self._attest_symmetric(request, reg_id)
        if request.client_chain:
            return self._attest_x509(request, reg_id)
        raise ApiError(
            codes.UNAUTHORIZED,
            "The device presented no credential (client certificate, SAS token or TPM).",
        )

    def _token(self, request: ApiRequest, reg_id: str) -> auth.DeviceToken:
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(codes.UNAUTHORIZED, "The request carries no Authorization header.")
        return auth.parse_device_token(
            header, id_scope=self.settings.id_scope, registration_id=reg_id, now=time.time()
        )

    def _sas_check(self, reg_id: str, key: str) -> Callable[[ApiRequest], None]:
        def verify(request: ApiRequest) -> None:
            if not self._token(request, reg_id).signed_with(key):
                raise ApiError(codes.UNAUTHORIZED, "The SharedAccessSignature does not match.")

        return verify

    def _attest_symmetric(self, request: ApiRequest, reg_id: str) -> _Match:
        token = self._token(request, reg_id)
        enrollment = self.store.get("enrollments", reg_id)
        if enrollment is not None and enrollment["attestation"]["type"] == "symmetricKey":
            keys = enrollment["attestation"]["symmetricKey"]
            for key in (keys["primaryKey"], keys["secondaryKey"]):
                if token.signed_with(key):
                    return _Match(
                        enrollment,
                        None,
                        "symmetricKey",
                        enrollment.get("deviceId") or reg_id,
                        runtime={"symmetricKey": {}},
                        verify_poll=self._sas_check(reg_id, key),
                    )
            raise ApiError(codes.UNAUTHORIZED, "The SharedAccessSignature does not match.")
        for group in self.store.all("groups"):
            if group["attestation"]["type"] != "symmetricKey":
                continue
            keys = group["attestation"]["symmetricKey"]
            for group_key in (keys["primaryKey"], keys["secondaryKey"]):
                device_key = auth.derive_device_key(group_key, reg_id)
                if token.signed_with(device_key):
                    group_id = group["enrollmentGroupId"]
                    return _Match(
                        group,
                        group_id,
                        "symmetricKey",
                        reg_id,
                        extra={"symmetricKey": {"enrollmentGroupId": group_id}},
                        runtime={"symmetricKey": {}},
                        verify_poll=self._sas_check(reg_id, device_key),
                    )
        raise ApiError(
            codes.UNAUTHORIZED,
            "The SharedAccessSignature matches no enrollment or enrollment group.",
        )

    def _attest_tpm(
        self, request: ApiRequest, reg_id: str, tpm: Mapping[str, Any], *, challenge: bool
    ) -> _Match | ApiResponse:
        enrollment = self.store.get("enrollments", reg_id)
        if enrollment is None or enrollment["attestation"]["type"] != "tpm":
            raise ApiError(codes.ENROLLMENT_NOT_FOUND, f"No TPM enrollment exists for {reg_id!r}.")
        presented = validation.parse_tpm2b_public(tpm.get("endorsementKey"), "tpm.endorsementKey")
        enrolled = base64.b64decode(enrollment["attestation"]["tpm"]["endorsementKey"])
        if not hmac.compare_digest(presented, enrolled):
            raise ApiError(
                codes.INVALID_ENDORSEMENT_KEY,
                "Endorsement key is invalid, or does not match the Enrollment.",
            )
        srk: bytes | None = None
        if tpm.get("storageRootKey") is not None:
            srk = validation.parse_tpm2b_public(tpm["storageRootKey"], "tpm.storageRootKey")
        with self._lock:
            key = self._tpm_keys.get(reg_id)
        if not request.headers.get("authorization") or key is None:
            if not challenge:
                raise ApiError(codes.UNAUTHORIZED, "The request carries no valid TPM SAS token.")
            if srk is None:
                raise ApiError(
                    codes.INVALID_DEVICE_REQUEST,
                    "'tpm.storageRootKey' is required for the TPM challenge.",
                )
            made = tpm_challenge.make_challenge(presented, srk)
            with self._lock:
                _bound(self._tpm_keys)
                self._tpm_keys[reg_id] = made.key
            return ApiResponse(
                401,
                {
                    "message": "Unauthorized: activate the authentication key and sign with it.",
                    "authenticationKey": made.authentication_key,
                    "keyName": auth.DEVICE_KEY_NAME,
                },
            )
        if not self._token(request, reg_id).signed_with(key):
            raise ApiError(codes.UNAUTHORIZED, "The SharedAccessSignature does not match.")
        extra: dict[str, Any] = {}
        if srk is not None:
            # On assignment DPS sends another blob: the IoT Hub credential, imported the same way.
            hub_key = tpm_challenge.make_challenge(presented, srk)
            extra["tpm"] = {"authenticationKey": hub_key.authentication_key}
        runtime = {"tpm": {k: tpm[k] for k in ("endorsementKey", "storageRootKey") if k in tpm}}
        return _Match(
            enrollment,
            None,
            "tpm",
            enrollment.get("deviceId") or reg_id,
            extra=extra,
            runtime=runtime,
            verify_poll=self._sas_check(reg_id, key),
        )

    def _attest_x509(self, request: ApiRequest, reg_id: str) -> _Match:
        chain = self._complete_chain(list(request.client_chain))
        leaf = chain[0]
        names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else ""
        if common_name.lower() != reg_id:
            raise ApiError(
                codes.UNAUTHORIZED,
                f"Invalid certificate: its CN {common_name!r} is not the registration ID.",
            )
        thumbs = [validation.thumbprint(cert) for cert in chain]
        leaf_thumb = thumbs[0]

        def verify_poll(poll: ApiRequest) -> None:
            presented = poll.client_chain[:1]
            if not presented or validation.thumbprint(_der(presented[0])) != leaf_thumb:
                raise ApiError(codes.UNAUTHORIZED, "Poll with the certificate you registered with.")

        enrollment = self.store.get("enrollments", reg_id)
        if enrollment is not None and enrollment["attestation"]["type"] == "x509":
            pair = enrollment["attestation"]["x509"].get("clientCertificates", {})
            if leaf_thumb in _thumbprints(pair):
                return _Match(
                    enrollment,
                    None,
                    "x509",
                    enrollment.get("deviceId") or common_name,
                    extra={"x509": {}},
                    runtime={"x509": {}},
                    verify_poll=verify_poll,
                )
        groups = [g for g in self.store.all("groups") if g["attestation"]["type"] == "x509"]
        cas = {ca["name"].lower(): ca["thumbprint"] for ca in self.store.all("cas")}
        for thumb in thumbs[1:]:
            for group in groups:
                spec = group["attestation"]["x509"]
                anchors = _thumbprints(spec.get("signingCertificates", {}))
                refs = spec.get("caReferences", {})
                anchors |= {cas[str(n).lower()] for n in refs.values() if str(n).lower() in cas}
                if thumb in anchors:
                    group_id = group["enrollmentGroupId"]
                    return _Match(
                        group,
                        group_id,
                        "x509",
                        common_name,
                        extra={"x509": {"enrollmentGroupId": group_id}},
                        runtime={"x509": {}},
                        verify_poll=verify_poll,
                    )
        raise ApiError(
            codes.UNAUTHORIZED,
            "Invalid certificate: no enrollment or enrollment group matches its chain.",
        )

    def _complete_chain(self, ders: list[bytes]) -> list[x509.Certificate]:
        """The client's chain, extended upwards with enrolled certificates (to walk to the root)."""
        chain = [_der(der) for der in ders[:MAX_CHAIN]]
        known = [_der(base64.b64decode(doc["der"])) for doc in self.store.all("certificates")]
        known += [_der(base64.b64decode(doc["der"])) for doc in self.store.all("cas")]
        while len(chain) < MAX_CHAIN and chain[-1].issuer != chain[-1].subject:
            parent = next((c for c in known if _issued(chain[-1], c)), None)
            if parent is None or parent in chain:
                break
            chain.append(parent)
        return chain

    # ------------------------------------------------------------------ assignment
    def _assign(
        self, reg_id: str, match: _Match, payload: Any, csr: str | None = None
    ) -> dict[str, Any]:
        stamp = validation.timestamp(self._now())
        existing = self.store.get("registrations", reg_id)
        state: dict[str, Any] = {
            "registrationId": reg_id,
            "createdDateTimeUtc": existing["createdDateTimeUtc"] if existing else stamp,
            "lastUpdatedDateTimeUtc": stamp,
            "etag": validation.new_etag(),
        }
        disabled = match.enrollment.get("provisioningStatus") == "disabled"
        if disabled:
            state |= {
                "status": "disabled",
                "errorCode": codes.ENROLLMENT_DISABLED,
                "errorMessage": "The enrollment is disabled.",
            }
            self.store.put("registrations", reg_id, state, group_key=match.group_id)
            return state
        previous = self.store.get("hub_devices", reg_id)
        current_hub = existing.get("assignedHub") if existing else None
        policy = match.enrollment.get("reprovisionPolicy") or {}
        twin = match.enrollment.get("initialTwin") or {}
        if current_hub and not policy.get("updateHubAssignment", True):
            hub, result_payload, substatus = current_hub, None, "initialAssignment"
            twin = previous.get("twin", twin) if previous else twin
        else:
            try:
                allocation = self.allocator.allocate(
                    AllocationContext(
                        registration_id=reg_id,
                        enrollment=_public_enrollment(match.enrollment),
                        is_group=match.group_id is not None,
                        attestation=match.runtime,
                        payload=payload,
                        current_hub=current_hub,
                        current_device_id=existing.get("deviceId") if existing else None,
                    )
                )
            except AllocationFailed as exc:
                state |= {
                    "status": "failed",
                    "errorCode": codes.CUSTOM_ALLOCATION_FAILED,
                    "errorMessage": exc.message,
                }
                self.store.put("registrations", reg_id, state, group_key=match.group_id)
                return state
            hub, result_payload = allocation.hub, allocation.payload
            if allocation.initial_twin is not None:
                twin = dict(allocation.initial_twin)
            if not current_hub:
                substatus = "initialAssignment"
            elif policy.get("migrateDeviceData", True):
                substatus = "deviceDataMigrated"
                twin = previous.get("twin", twin) if previous else twin
            else:
                substatus = "deviceDataReset"
        issued: credentials.IssuedChain | None = None
        if csr is not None:
            try:
                issued = self.registry.issue(match.enrollment["credentialPolicyName"], reg_id, csr)
            except ApiError as exc:
                state |= {
                    "status": "failed",
                    "errorCode": exc.error_code,
                    "errorMessage": exc.message,
                }
                self.store.put("registrations", reg_id, state, group_key=match.group_id)
                return state
        state |= {
            "assignedHub": hub,
            "deviceId": match.device_id,
            "status": "assigned",
            "substatus": substatus,
        }
        if result_payload is not None:
            state["payload"] = result_payload
        device: dict[str, Any] = {
            "hub": hub,
            "deviceId": match.device_id,
            "registrationId": reg_id,
            "authType": match.auth_type,
            "enrollmentGroupId": match.group_id,
            "twin": twin,
            "updated": stamp,
        }
        if issued is not None:
            device["certificate"] = {
                "thumbprint": issued.thumbprint,
                "notAfter": issued.not_after,
                "issuer": issued.issuer,
                "policy": issued.policy,
            }
        elif previous is not None and "certificate" in previous:
            device["certificate"] = previous["certificate"]  # registered again without a CSR
        with self.store.transaction():
            self.store.put("registrations", reg_id, state, group_key=match.group_id)
            self.store.put("hub_devices", reg_id, device)
        if issued is not None:
            # the chain goes to the device only, in the operation's result (never stored)
            return {**state, "issuedCertificateChain": issued.encoded()}
        return state


def _bound(table: dict[str, Any]) -> None:
    """Forget the oldest entry of a per-device table that has reached its bound."""
    if len(table) >= MAX_TRACKED_DEVICES:
        table.pop(next(iter(table)))


def _der(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ApiError(codes.UNAUTHORIZED, "Invalid certificate.") from exc


def _issued(child: x509.Certificate, parent: x509.Certificate) -> bool:
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _thumbprints(pair: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for slot in ("primary", "secondary"):
        entry = pair.get(slot)
        if isinstance(entry, dict):
            info = entry.get("info", {})
            if isinstance(info, dict) and isinstance(info.get("sha256Thumbprint"), str):
                found.add(info["sha256Thumbprint"])
    return found


def _public_enrollment(record: Mapping[str, Any]) -> dict[str, Any]:
    """The enrollment as a webhook sees it: without symmetric keys."""
    public = copy.deepcopy(dict(record))
    mech = public.get("attestation", {})
    if isinstance(mech, dict) and "symmetricKey" in mech:
        mech["symmetricKey"] = {}
    return public
