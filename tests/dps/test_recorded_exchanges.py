"""The stand-in answers the Azure SDK's recorded exchanges with real DPS the way DPS did.

Each recorded PUT request (``tests/batches/data/dps_recorded_shapes.json``, sources in
``SOURCES.md`` there) is sent through the official client; the stand-in's answers to the PUT, to
GET, to a ``*`` query and to ``attestationmechanism`` must equal the recorded ones, apart from
what the recorder sanitized (key values, certificate and thumbprint values) and what the server
makes (etag, times).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from tests.support.recorded_dps import SERVER_FIELDS, recordings

KEYS = {
    "primaryKey": base64.b64encode(bytes(range(32))).decode(),
    "secondaryKey": base64.b64encode(bytes(range(32, 64))).decode(),
}


def _comparable(answer: Any) -> Any:
    """An answer with server fields, key values and certificate info values blanked."""
    answer = copy.deepcopy(answer)
    if not isinstance(answer, dict):
        return answer
    for key in SERVER_FIELDS:
        if key in answer:
            answer[key] = "<server>"
    mechanism = answer.get("attestation", answer)
    if isinstance(mechanism.get("symmetricKey"), dict):
        mechanism["symmetricKey"] = dict.fromkeys(mechanism["symmetricKey"], "<key>")
    for pair in (mechanism.get("x509") or {}).values():
        for slot in pair.values():
            slot["info"] = sorted(slot["info"])  # which fields, not their sanitized values
    return answer


def _request(entry: dict[str, Any], make_cert: Any) -> dict[str, Any]:
    """The recorded request with what the recorder sanitized put back as real values."""
    request = copy.deepcopy(entry["request"])
    mechanism = request["attestation"]
    if mechanism["type"] == "symmetricKey" and mechanism["symmetricKey"]["primaryKey"]:
        mechanism["symmetricKey"] = dict(KEYS)
    if mechanism["type"] == "x509":
        certificate = make_cert(request["registrationId"])
        mechanism["x509"]["clientCertificates"]["primary"]["certificate"] = certificate
    return request


@pytest.mark.parametrize(
    "entry",
    [
        "symmetric_key_enrollment",
        "symmetric_key_enrollment_generated_keys",
        "tpm_enrollment",
        "x509_enrollment",
    ],
)
def test_enrollment_answers_equal_the_recorded_ones(
    client: Any, make_cert: Any, entry: str
) -> None:
    recorded = recordings()[entry]
    request = _request(recorded, make_cert)
    rid = request["registrationId"]
    created = client.enrollment.create_or_update(id=rid, enrollment=request)
    assert _comparable(created) == _comparable(recorded["put"])
    if "get" in recorded:
        assert _comparable(client.enrollment.get(rid)) == _comparable(recorded["get"])
    listed = list(client.enrollment.query({"query": "*"}))
    assert [_comparable(item) for item in listed] == [_comparable(recorded["query"])]
    mechanism = client.enrollment.get_attestation_mechanism(rid)
    assert _comparable(mechanism) == _comparable(created["attestation"])
    if "attestationmechanism" in recorded:
        assert _comparable(mechanism) == _comparable(recorded["attestationmechanism"])


def test_group_answers_equal_the_recorded_ones(client: Any) -> None:
    recorded = recordings()["symmetric_key_group"]
    request = copy.deepcopy(recorded["request"])
    request["attestation"]["symmetricKey"] = dict(KEYS)
    gid = request["enrollmentGroupId"]
    created = client.enrollment_group.create_or_update(id=gid, enrollment_group=request)
    assert _comparable(created) == _comparable(recorded["put"])
    assert _comparable(client.enrollment_group.get(gid)) == _comparable(recorded["get"])
    listed = list(client.enrollment_group.query({"query": "SELECT *"}))
    assert [_comparable(item) for item in listed] == [_comparable(recorded["query"])]
    mechanism = client.enrollment_group.get_attestation_mechanism(gid)
    assert mechanism == {"type": "symmetricKey", "symmetricKey": KEYS}
