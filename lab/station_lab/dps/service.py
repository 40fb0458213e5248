"""The DPS service (enrollment) API of the stand-in, without HTTP.

:class:`EnrollmentApi` implements each operation of dps-api.md §1.2 on a :class:`DpsStore`: it
takes a parsed :class:`ApiRequest` and returns an :class:`ApiResponse`, or raises
:class:`ApiError`. The HTTP layer (``server.py``) does transport, auth, limits and logging, so the
device registration API can be added next to this one, sharing those.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.primitives import serialization

from station.domain.errors import LabDpsError
from station_lab.dps import errors as codes
from station_lab.dps import validation
from station_lab.dps.errors import ApiError
from station_lab.dps.store import DpsStore
from station_lab.dps.versions import CREDENTIAL_POLICY_API_VERSIONS

MAX_BULK_ITEMS: Final = 10
REGISTRATION_STATUSES: Final = ("unassigned", "assigning", "assigned", "failed", "disabled")
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
# "SELECT *" (optionally "FROM enrollments") or a bare "*", as Azure's own samples send it
_SELECT_ALL = re.compile(r"\s*(select\s+\*(\s+from\s+[a-z_]+)?|\*)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ApiRequest:
    """One parsed request: route parameters, headers (lower-case names) and the JSON body."""

    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any = None
    has_body: bool = False
    client_chain: tuple[bytes, ...] = ()  # DER, leaf first: the TLS client's verified chain


@dataclass(frozen=True)
class ApiResponse:
    """What to answer: status, JSON body (None for no body) and extra headers."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Quotas:
    """Service limits (defaults are DPS's documented ones)."""

    max_enrollments: int = 1_000_000
    max_groups: int = 100  # per attestation type: X.509 and symmetric-key groups are separate pools


@dataclass(frozen=True)
class _Kind:
    """What differs between individual enrollments and enrollment groups."""

    table: str
    id_field: str
    label: str
    not_found: int
    exists: int
    item_type: str
    validate: Callable[[Any, str | None], dict[str, Any]]


ENROLLMENTS = _Kind(
    "enrollments",
    "registrationId",
    "Enrollment",
    codes.ENROLLMENT_NOT_FOUND,
    codes.ENROLLMENT_EXISTS,
    "Enrollment",
    validation.enrollment,
)
GROUPS = _Kind(
    "groups",
    "enrollmentGroupId",
    "EnrollmentGroup",
    codes.GROUP_NOT_FOUND,
    codes.GROUP_EXISTS,
    "EnrollmentGroup",
    validation.group,
)


class EnrollmentApi:
    """The enrollment, group and registration-state operations.

    Args:
        store: where records live.
        quotas: the individual-enrollment and group ceilings.
        now: the clock (UTC), injectable for tests.
        on_certificates: called with the DER of the X.509 certificates of each written record
            (the server adds them to the device API's client-certificate trust).
    """

    def __init__(
        self,
        store: DpsStore,
        *,
        quotas: Quotas | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_certificates: Callable[[list[bytes]], None] | None = None,
    ) -> None:
        self.store = store
        self.quotas = quotas or Quotas()
        self._now = now
        self._on_certificates = on_certificates

    # ------------------------------------------------------------------ records
    def _path_id(self, request: ApiRequest, kind: _Kind | None = None) -> str:
        what = kind.id_field if kind else "registrationId"
        return validation.check_id(request.params["id"], what)

    def _load(self, kind: _Kind, key: str) -> dict[str, Any]:
        doc = self.store.get(kind.table, key)
        if doc is None:
            raise ApiError(kind.not_found, f"{kind.label} {key!r} does not exist.")
        return doc

    def get(self, kind: _Kind, request: ApiRequest) -> ApiResponse:
        """``GET /enrollments/{id}`` and ``GET /enrollmentGroups/{id}``."""
        doc = self._load(kind, self._path_id(request, kind))
        if kind is ENROLLMENTS:
            state = self.store.get("registrations", doc["registrationId"])
            doc["registrationState"] = state or {
                "registrationId": doc["registrationId"],
                "status": "unassigned",
            }
        return ApiResponse(200, shown(without_keys(doc), request))

    def put(self, kind: _Kind, request: ApiRequest) -> ApiResponse:
        """``PUT`` create-or-update with If-Match (409 on a blind overwrite, 412 on a mismatch)."""
        key = self._path_id(request, kind)
        if not request.has_body:
            raise ApiError(codes.MALFORMED_BODY, f"The request needs an {kind.label} body.")
        record = kind.validate(understood(request.body, request), key)
        with self.store.transaction():
            existing = self.store.get(kind.table, key)
            self._check_write(
                kind, key, record, existing, request.headers.get("if-match"), create_ok=True
            )
            stored = self._write(kind, key, record, existing, request.body)
        return ApiResponse(200, shown(stored, request))

    def delete(self, kind: _Kind, request: ApiRequest) -> ApiResponse:
        """``DELETE`` with optional If-Match."""
        key = self._path_id(request, kind)
        with self.store.transaction():
            existing = self._load(kind, key)
            _match(existing, request.headers.get("if-match"), kind.label, key)
            self.store.delete(kind.table, key)
        return ApiResponse(204)

    def attestation(self, kind: _Kind, request: ApiRequest) -> ApiResponse:
        """``POST .../{id}/attestationmechanism``: the attestation, keys included."""
        doc = self._load(kind, self._path_id(request, kind))
        return ApiResponse(200, doc["attestation"])

    def _check_write(
        self,
        kind: _Kind,
        key: str,
        record: Mapping[str, Any],
        existing: dict[str, Any] | None,
        if_match: str | None,
        *,
        create_ok: bool,
    ) -> None:
        if existing is None:
            if not create_ok:
                raise ApiError(kind.not_found, f"{kind.label} {key!r} does not exist.")
            self._check_quota(kind, record)
            return
        if if_match is None:
            raise ApiError(kind.exists, f"{kind.label} already exists.")
        _match(existing, if_match, kind.label, key)
        if kind is GROUPS and existing["attestation"]["type"] != record["attestation"]["type"]:
            self._check_quota(kind, record)  # a group changing type joins the other pool

    def _check_quota(self, kind: _Kind, record: Mapping[str, Any]) -> None:
        if kind is ENROLLMENTS:
            limit, held, what = self.quotas.max_enrollments, self.store.count(kind.table), ""
        else:
            # DPS counts X.509 and symmetric-key groups separately (100 of each)
            attestation = str(record["attestation"]["type"])
            limit = self.quotas.max_groups
            held = self.store.count_by_attestation(kind.table, attestation)
            what = f" {attestation}"
        if held >= limit:
            raise ApiError(
                codes.FORBIDDEN_QUOTA,
                f"The service holds its maximum of {limit}{what} {kind.label} records.",
            )

    def _write(
        self,
        kind: _Kind,
        key: str,
        record: dict[str, Any],
        existing: dict[str, Any] | None,
        body: Any,
    ) -> dict[str, Any]:
        if existing is not None:
            _keep_symmetric_keys(record, existing, body)
        stamp = validation.timestamp(self._now())
        record["etag"] = validation.new_etag()
        record["createdDateTimeUtc"] = existing["createdDateTimeUtc"] if existing else stamp
        record["lastUpdatedDateTimeUtc"] = stamp
        self.store.put(kind.table, key, record)
        self._keep_certificates(body)
        return record

    def _keep_certificates(self, body: Any) -> None:
        # Answers show only a certificate's info, but the device API needs the certificate itself
        # to match chains, so it is kept by thumbprint (never echoed).
        ders: list[bytes] = []
        for cert in validation.enrolled_certificates(body):
            der = cert.public_bytes(serialization.Encoding.DER)
            doc = {"der": base64.b64encode(der).decode("ascii")}
            self.store.put("certificates", validation.thumbprint(cert), doc)
            ders.append(der)
        if ders and self._on_certificates is not None:
            self._on_certificates(ders)

    # ------------------------------------------------------------------ bulk
    def bulk(self, kind: _Kind, request: ApiRequest) -> ApiResponse:
        """``POST /enrollments`` or ``/enrollmentGroups``: up to 10 items, item errors in a 200."""
        body = request.body
        if not isinstance(body, dict):
            raise ApiError(codes.MALFORMED_BODY, "The bulk operation body must be a JSON object.")
        mode = body.get("mode")
        if mode not in validation.BULK_MODES:
            raise validation.invalid(
                f"'mode' must be one of {', '.join(validation.BULK_MODES)}, not {mode!r}."
            )
        list_key = "enrollments" if kind is ENROLLMENTS else "enrollmentGroups"
        items = body.get(list_key)
        if not isinstance(items, list) or not items:
            raise validation.invalid(f"'{list_key}' must be a non-empty array.")
        if len(items) > MAX_BULK_ITEMS:
            raise ApiError(
                codes.TOO_MANY_BULK_ITEMS,
                f"A bulk operation takes at most {MAX_BULK_ITEMS} items, not {len(items)}.",
            )
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            item_id = item.get(kind.id_field) if isinstance(item, dict) else None
            try:
                self._bulk_item(kind, str(mode), understood(item, request))
            except ApiError as exc:
                errors.append(
                    {
                        kind.id_field: item_id if isinstance(item_id, str) else f"[{index}]",
                        "errorCode": exc.error_code,
                        "errorStatus": exc.message,
                    }
                )
        return ApiResponse(200, {"isSuccessful": not errors, "errors": errors})

    def _bulk_item(self, kind: _Kind, mode: str, item: Any) -> None:
        if mode == "delete":
            if not isinstance(item, dict):
                raise validation.invalid("A bulk item must be an object.")
            key = validation.check_id(item.get(kind.id_field), kind.id_field)
            with self.store.transaction():
                current = self._load(kind, key)
                if item.get("etag") is not None:
                    _match(current, str(item["etag"]), kind.label, key)
                self.store.delete(kind.table, key)
            return
        record = kind.validate(item, None)
        key = record[kind.id_field]
        etag = item.get("etag") if isinstance(item, dict) else None
        with self.store.transaction():
            existing = self.store.get(kind.table, key)
            if mode == "create":
                if existing is not None:
                    raise ApiError(kind.exists, f"{kind.label} already exists.")
                self._check_quota(kind, record)
            elif mode == "update":
                # Observed in real traffic: updating an existing record needs its etag (else 409).
                self._check_write(kind, key, record, existing, etag, create_ok=True)
            else:  # updateIfMatchETag
                if existing is None:
                    raise ApiError(kind.not_found, f"{kind.label} {key!r} does not exist.")
                _match(existing, etag if etag is not None else "", kind.label, key)
            self._write(kind, key, record, existing, item)

    # ------------------------------------------------------------------ query
    def query(self, kind: _Kind, request: ApiRequest) -> ApiResponse:
        """``POST .../query``: ``SELECT *`` paged by x-ms-max-item-count / x-ms-continuation."""
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise ApiError(codes.INVALID_QUERY, "The body must be a QuerySpecification {query}.")
        if not _SELECT_ALL.fullmatch(body["query"]):
            raise ApiError(
                codes.INVALID_QUERY, "The stand-in supports only 'SELECT *' queries (no WHERE)."
            )
        response = self._page(kind.table, kind.item_type, request, group_key=None)
        return ApiResponse(
            response.status,
            [shown(without_keys(doc), request) for doc in response.body],
            response.headers,
        )

    def registration_query(self, request: ApiRequest) -> ApiResponse:
        """``POST /registrations/{groupId}/query``: the registration states of one group."""
        group_id = validation.check_id(request.params["id"], "enrollmentGroupId")
        self._load(GROUPS, group_id)
        return self._page("registrations", "DeviceRegistration", request, group_key=group_id)

    def _page(
        self, table: str, item_type: str, request: ApiRequest, *, group_key: str | None
    ) -> ApiResponse:
        size = _page_size(request.headers.get("x-ms-max-item-count"))
        after = _decode_continuation(request.headers.get("x-ms-continuation"))
        docs, next_after = self.store.page(table, after=after, limit=size, group_key=group_key)
        headers = {"x-ms-item-type": item_type, "x-ms-max-item-count": str(size)}
        if next_after is not None:
            headers["x-ms-continuation"] = _encode_continuation(next_after)
        return ApiResponse(200, docs, headers)

    # ------------------------------------------------------------------ registration states
    def registration_get(self, request: ApiRequest) -> ApiResponse:
        """``GET /registrations/{id}``."""
        key = self._path_id(request)
        doc = self.store.get("registrations", key)
        if doc is None:
            raise ApiError(codes.REGISTRATION_NOT_FOUND, f"Registration {key!r} does not exist.")
        return ApiResponse(200, doc)

    def registration_delete(self, request: ApiRequest) -> ApiResponse:
        """``DELETE /registrations/{id}`` with optional If-Match."""
        key = self._path_id(request)
        with self.store.transaction():
            doc = self.store.get("registrations", key)
            if doc is None:
                raise ApiError(
                    codes.REGISTRATION_NOT_FOUND, f"Registration {key!r} does not exist."
                )
            _match(doc, request.headers.get("if-match"), "Registration", key)
            self.store.delete("registrations", key)
        return ApiResponse(204)

    def record_registration(
        self,
        registration_id: str,
        *,
        group_id: str | None = None,
        status: str = "assigned",
        assigned_hub: str = "lab-hub.azure-devices.net",
        device_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a device registration state, as the device API will when a device registers.

        Until the device registration API exists this is how the lab and tests create them.
        """
        if status not in REGISTRATION_STATUSES:
            raise LabDpsError(
                f"unknown registration status {status!r}",
                remedy=f"Use one of {', '.join(REGISTRATION_STATUSES)}.",
            )
        try:
            key = validation.check_id(registration_id, "registrationId")
            group_key = validation.check_id(group_id, "enrollmentGroupId") if group_id else None
        except ApiError as exc:
            raise LabDpsError(exc.message, registration_id=registration_id) from exc
        stamp = validation.timestamp(self._now())
        existing = self.store.get("registrations", key)
        doc: dict[str, Any] = {
            "registrationId": key,
            "createdDateTimeUtc": existing["createdDateTimeUtc"] if existing else stamp,
            "status": status,
            "lastUpdatedDateTimeUtc": stamp,
            "etag": validation.new_etag(),
        }
        if status == "assigned":
            doc |= {
                "assignedHub": assigned_hub,
                "deviceId": device_id or key,
                "substatus": "initialAssignment",
            }
        self.store.put("registrations", key, doc, group_key=group_key)
        return doc


def understood(body: Any, request: ApiRequest) -> Any:
    """An enrollment or group body as DPS reads it under the request's api-version.

    ``credentialPolicyName`` is defined only from 2025-07-01-preview on (and in 2026-04-01); under
    an older api-version it is an unknown field, and the stand-in drops unknown fields: it is not
    validated and not stored (modelled; docs/lab-dps.md, "api-versions").
    """
    if isinstance(body, dict) and "credentialPolicyName" in body and not _defines_policy(request):
        return {k: v for k, v in body.items() if k != "credentialPolicyName"}
    return body


def shown(doc: dict[str, Any], request: ApiRequest) -> dict[str, Any]:
    """A stored record as answered under the request's api-version (no field it does not define)."""
    if "credentialPolicyName" in doc and not _defines_policy(request):
        return {k: v for k, v in doc.items() if k != "credentialPolicyName"}
    return doc


def _defines_policy(request: ApiRequest) -> bool:
    # The HTTPS server puts the request's api-version into the parameters; an in-process call
    # without one is the stand-in's own (tests), which sees every field.
    version = request.params.get("apiVersion")
    return version is None or version in CREDENTIAL_POLICY_API_VERSIONS


def without_keys(doc: dict[str, Any]) -> dict[str, Any]:
    """A record as GET and query show it: a symmetric-key attestation is its type alone.

    Real DPS shows the keys only in the PUT answer and from ``attestationmechanism`` (recorded
    by the Azure SDK's tests; see tests/batches/data/SOURCES.md).
    """
    mechanism = doc.get("attestation")
    if isinstance(mechanism, dict) and mechanism.get("type") == "symmetricKey":
        return {**doc, "attestation": {"type": "symmetricKey"}}
    return doc


def _keep_symmetric_keys(record: dict[str, Any], existing: Mapping[str, Any], body: Any) -> None:
    """On update, a symmetric key the request omits keeps its stored value (not a new one)."""
    new, old = record["attestation"], existing.get("attestation", {})
    if new.get("type") != "symmetricKey" or old.get("type") != "symmetricKey":
        return
    sent = body.get("attestation", {}).get("symmetricKey") or {}
    for slot in ("primaryKey", "secondaryKey"):
        if sent.get(slot) is None:
            new["symmetricKey"][slot] = old["symmetricKey"][slot]


def _match(existing: Mapping[str, Any], if_match: str | None, label: str, key: str) -> None:
    """Apply If-Match: absent or ``*`` passes, the exact etag passes, anything else is 412.

    DPS takes one etag (the record's, verbatim); a list of etags is not one of them, so it is
    412 too, even when it names the current etag (an etag never contains a comma).
    """
    if if_match is None or if_match.strip() == "*":
        return
    given = if_match.strip()
    if "," in given:
        raise ApiError(
            codes.PRECONDITION_FAILED,
            f"If-Match names several etags; {label} {key!r} is matched against one only.",
        )
    current = str(existing.get("etag", ""))
    # Some clients (C# v1) wrap the etag in quotes; accept both forms.
    if given not in (current, f'"{current}"'):
        raise ApiError(
            codes.PRECONDITION_FAILED, f"The etag of {label} {key!r} does not match If-Match."
        )


def _page_size(header: str | None) -> int:
    if header is None or header.strip() == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(header)
    except ValueError as exc:
        raise ApiError(codes.INVALID_QUERY, "x-ms-max-item-count must be an integer.") from exc
    if size < 1:
        raise ApiError(codes.INVALID_QUERY, "x-ms-max-item-count must be at least 1.")
    return min(size, MAX_PAGE_SIZE)


def _encode_continuation(after: int) -> str:
    return base64.b64encode(json.dumps([{"token": f"+POS:{after}"}]).encode()).decode("ascii")


def _decode_continuation(token: str | None) -> int:
    if not token:
        return 0
    try:
        decoded = json.loads(base64.b64decode(token, validate=True))
        text = decoded[0]["token"]
        if not isinstance(text, str) or not text.startswith("+POS:"):
            raise ValueError(text)
        after = int(text[5:])
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise ApiError(codes.INVALID_QUERY, "The x-ms-continuation token is not valid.") from exc
    if after < 0:
        raise ApiError(codes.INVALID_QUERY, "The x-ms-continuation token is not valid.")
    return after
