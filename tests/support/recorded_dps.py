"""A DPS service double that answers in the shapes real DPS answers in.

The rules are the ones the Azure SDK's recordings of real DPS show (``tests/batches/data/SOURCES.md``), and
``test_recorded_shapes.py`` checks the double against those recordings before the station is run
against it: GET and query carry no symmetric keys, fields sent as null are left out (but
``provisioningStatus``, answered null), a lone primary certificate is answered as primary and
secondary, GET adds ``registrationState``, and query lists in no particular order.

It implements :class:`station.ports.EnrollmentService`, so push and reconcile run on it unchanged.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from station.domain.errors import EnrollmentServiceError
from station.domain.pushes import BulkItemError
from station_lab.dps.validation import certificate_info

RECORDINGS = Path(__file__).resolve().parents[1] / "batches" / "data" / "dps_recorded_shapes.json"
GENERATED_KEY_BYTES = 64  # what real DPS generates when a key is sent as null
SERVER_FIELDS = ("etag", "createdDateTimeUtc", "lastUpdatedDateTimeUtc")


def recordings() -> dict[str, Any]:
    """The recorded exchanges (see ``tests/batches/data/SOURCES.md``)."""
    data: dict[str, Any] = json.loads(RECORDINGS.read_text(encoding="utf-8"))
    return data


class RecordedShapeDps:
    """Individual enrollments and groups, answered as real DPS answers them.

    Args:
        info_of: the certificate ``info`` DPS shows for a certificate as sent (default: parsed
            from the PEM, as the stand-in does).
    """

    def __init__(self, info_of: Callable[[str], dict[str, Any]] | None = None) -> None:
        self._info_of = info_of or (lambda pem: certificate_info(pem, "certificate"))
        self._enrollments: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, dict[str, Any]] = {}
        self.operations = 0
        self.calls: list[str] = []
        self.page_size = 5  # small, so reconcile reads several pages

    # ------------------------------------------------------------------ the service port
    def bulk_create(self, enrollments: Sequence[Mapping[str, Any]]) -> list[BulkItemError]:
        """Create each new enrollment; an existing one is a 409201 item error, as in DPS."""
        self._count("bulk")
        errors: list[BulkItemError] = []
        for body in enrollments:
            rid = str(body["registrationId"]).lower()
            if rid in self._enrollments:
                errors.append(BulkItemError(rid, 409201, "Enrollment already exists."))
            else:
                self._enrollments[rid] = _stored(body)
        return errors

    def put(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /enrollments/{id}`` (create): the answer."""
        rid = str(body["registrationId"]).lower()
        self._enrollments[rid] = _stored(body)
        return self._answer(self._enrollments[rid], "put")

    def get(
        self, registration_id: str, *, credential_policy: bool = False
    ) -> dict[str, Any] | None:
        """``GET /enrollments/{id}``: no symmetric keys, plus ``registrationState``.

        ``credential_policy`` picks the api-version in the real client; the recordings hold
        whatever was sent, so it changes nothing here (the lab DPS models the difference).
        """
        self._count("get")
        sent = self._enrollments.get(registration_id.lower())
        return None if sent is None else self._answer(sent, "get")

    def attestation_mechanism(self, registration_id: str) -> dict[str, Any] | None:
        """``POST /enrollments/{id}/attestationmechanism``: the keys are here."""
        self._count("attestationmechanism")
        sent = self._enrollments.get(registration_id.lower())
        return None if sent is None else self._attestation(sent["attestation"], "put")

    def query(self) -> list[dict[str, Any]]:
        """``SELECT *``: every enrollment, newest first (real DPS promises no order)."""
        return [self._answer(sent, "query") for sent in reversed(self._enrollments.values())]

    def query_page(
        self, continuation: str | None = None, *, credential_policy: bool = False
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of :meth:`query` (``page_size`` items), with an opaque continuation."""
        self._count("query")
        start = int(continuation or 0)
        listed = self.query()[start : start + self.page_size]
        following = start + self.page_size
        return listed, (str(following) if following < len(self._enrollments) else None)

    def create_group(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /enrollmentGroups/{id}`` (create): the answer."""
        self._count("group.put")
        gid = str(group["enrollmentGroupId"]).lower()
        if gid in self._groups:  # a PUT without If-Match on an existing group, as DPS answers
            raise EnrollmentServiceError(
                "DPS refused the request: 409 (error 409202)", status=409, error_code="409202"
            )
        self._groups[gid] = _stored(group)
        return self._answer(self._groups[gid], "put")

    def get_group(self, group_id: str, *, credential_policy: bool = False) -> dict[str, Any] | None:
        """``GET /enrollmentGroups/{id}``: no symmetric keys."""
        self._count("group.get")
        sent = self._groups.get(group_id.lower())
        return None if sent is None else self._answer(sent, "get")

    def group_attestation_mechanism(self, group_id: str) -> dict[str, Any] | None:
        """``POST /enrollmentGroups/{id}/attestationmechanism``: the keys, as DPS shows them."""
        self._count("group.attestationmechanism")
        sent = self._groups.get(group_id.lower())
        return None if sent is None else self._attestation(sent["attestation"], "put")

    def group(self, group_id: str, view: str) -> dict[str, Any]:
        """A group as GET (``"get"``), query (``"query"``) or attestationmechanism show it."""
        sent = self._groups[group_id.lower()]
        if view == "attestationmechanism":
            return self._attestation(sent["attestation"], "put")
        return self._answer(sent, view)

    def close(self) -> None:
        """Nothing to close."""

    # ------------------------------------------------------------------ the shapes
    def _count(self, call: str) -> None:
        self.operations += 1
        self.calls.append(call)

    def _answer(self, sent: Mapping[str, Any], view: str) -> dict[str, Any]:
        id_field = "registrationId" if "registrationId" in sent else "enrollmentGroupId"
        answer: dict[str, Any] = {id_field: sent[id_field]}
        for key, value in sent.items():
            if key in (id_field, "attestation", "etag") or value is None:
                continue
            answer[key] = copy.deepcopy(value)
        answer["provisioningStatus"] = sent.get("provisioningStatus")  # null stays null
        answer["attestation"] = self._attestation(sent["attestation"], view)
        answer |= {
            "etag": "IjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCI=",
            "createdDateTimeUtc": "2023-05-19T23:10:45.1256254Z",
            "lastUpdatedDateTimeUtc": "2023-05-19T23:10:45.1256254Z",
        }
        if view == "get" and id_field == "registrationId":
            answer["registrationState"] = {
                "registrationId": sent[id_field],
                "status": "unassigned",
            }
        return answer

    def _attestation(self, mechanism: Mapping[str, Any], view: str) -> dict[str, Any]:
        kind = mechanism["type"]
        if kind == "symmetricKey":
            if view in ("get", "query"):
                return {"type": "symmetricKey"}
            return {"type": kind, "symmetricKey": dict(mechanism["symmetricKey"])}
        if kind == "x509":
            x509 = mechanism["x509"]
            answered: dict[str, Any] = {}
            for pair_name in ("clientCertificates", "signingCertificates"):
                pair = x509.get(pair_name)
                if not pair:
                    continue
                primary = {"info": self._info_of(pair["primary"]["certificate"])}
                secondary = pair.get("secondary")
                answered[pair_name] = {
                    "primary": primary,
                    "secondary": (
                        {"info": self._info_of(secondary["certificate"])} if secondary else primary
                    ),
                }
            if x509.get("caReferences"):
                answered["caReferences"] = dict(x509["caReferences"])
            return {"type": kind, "x509": answered}
        return copy.deepcopy(dict(mechanism))


def _stored(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body as DPS keeps it: symmetric keys sent as null (or left out) are generated."""
    stored = copy.deepcopy(dict(body))
    mechanism = stored.get("attestation") or {}
    if mechanism.get("type") == "symmetricKey":
        keys = mechanism.get("symmetricKey") or {}
        mechanism["symmetricKey"] = {
            slot: keys.get(slot)
            or base64.b64encode(secrets.token_bytes(GENERATED_KEY_BYTES)).decode("ascii")
            for slot in ("primaryKey", "secondaryKey")
        }
    return stored
