"""The stand-in behaves by api-version, as DPS does: ``credentialPolicyName`` exists only under
the versions that define it (2025-07-01-preview, 2026-04-01; docs/lab-dps.md, "api-versions").

Under any other version it is an unknown field: not validated, not stored, not shown. Requests
go around the official client (which sends only 2021-10-01), with ``requests``.
"""

from __future__ import annotations

import json

import pytest
import requests

from station_lab.dps import (
    CREDENTIAL_POLICY_API_VERSIONS,
    DEFAULT_API_VERSIONS,
    STABLE_API_VERSION,
    auth,
)

OLD = "2021-10-01"
POLICY = "lab-policy"


@pytest.fixture
def send(dps):
    owner = dps.policies[auth.OWNER_POLICY]
    session = requests.Session()

    def call(method, path, api, body=None):
        response = session.request(
            method,
            dps.endpoint + path,
            params={"api-version": api},
            data=json.dumps(body) if body is not None else None,
            headers={
                "Authorization": auth.make_token(dps.host_name, owner),
                "Content-Type": "application/json",
            },
            timeout=30,
            verify=str(dps.ca_bundle),
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    yield call
    session.close()


def _enrollment(rid: str, policy: object = POLICY) -> dict[str, object]:
    return {
        "registrationId": rid,
        "attestation": {"type": "symmetricKey"},
        "credentialPolicyName": policy,
    }


def _group(gid: str) -> dict[str, object]:
    return {
        "enrollmentGroupId": gid,
        "attestation": {"type": "symmetricKey"},
        "credentialPolicyName": POLICY,
    }


def test_the_versions_that_define_the_policy_are_served() -> None:
    assert {"2025-07-01-preview", "2026-04-01"} == CREDENTIAL_POLICY_API_VERSIONS
    assert set(DEFAULT_API_VERSIONS) > CREDENTIAL_POLICY_API_VERSIONS
    assert OLD in DEFAULT_API_VERSIONS and STABLE_API_VERSION == "2026-04-01"


def test_under_an_old_api_version_the_policy_is_dropped_not_stored(dps, send) -> None:
    answer = send("PUT", "/enrollments/old-1", OLD, _enrollment("old-1"))
    assert "credentialPolicyName" not in answer
    # not stored: a client that knows the field does not find it either
    assert "credentialPolicyName" not in send("GET", "/enrollments/old-1", STABLE_API_VERSION)
    # an unknown field is not validated (a value the policy versions refuse passes)
    send("PUT", "/enrollments/old-2", OLD, _enrollment("old-2", policy=""))
    bulk = {"mode": "create", "enrollments": [_enrollment("old-3")]}
    assert send("POST", "/enrollments", OLD, bulk)["isSuccessful"]
    assert "credentialPolicyName" not in send("GET", "/enrollments/old-3", STABLE_API_VERSION)
    send("PUT", "/enrollmentGroups/old-g", OLD, _group("old-g"))
    assert "credentialPolicyName" not in send("GET", "/enrollmentGroups/old-g", STABLE_API_VERSION)
    versions = {e["apiVersion"] for e in dps.access_log() if e["method"] in {"PUT", "POST"}}
    assert versions == {OLD}


@pytest.mark.parametrize("version", sorted(CREDENTIAL_POLICY_API_VERSIONS))
def test_under_a_version_that_defines_it_the_policy_is_kept_and_shown(send, version) -> None:
    answer = send("PUT", "/enrollments/new-1", version, _enrollment("new-1"))
    assert answer["credentialPolicyName"] == POLICY
    bulk = {"mode": "create", "enrollments": [_enrollment("new-2")]}
    assert send("POST", "/enrollments", version, bulk)["isSuccessful"]
    send("PUT", "/enrollmentGroups/new-g", version, _group("new-g"))
    for path in ("/enrollments/new-1", "/enrollments/new-2", "/enrollmentGroups/new-g"):
        assert send("GET", path, version)["credentialPolicyName"] == POLICY
        # the record keeps it, but an old api-version does not show a field it does not define
        assert "credentialPolicyName" not in send("GET", path, OLD)
    page = send("POST", "/enrollments/query", version, {"query": "SELECT *"})
    assert {e["credentialPolicyName"] for e in page} == {POLICY}
    old_page = send("POST", "/enrollments/query", OLD, {"query": "SELECT *"})
    assert all("credentialPolicyName" not in e for e in old_page)


def test_a_policy_version_still_validates_the_field(dps) -> None:
    owner = dps.policies[auth.OWNER_POLICY]
    response = requests.put(
        f"{dps.endpoint}/enrollments/bad-1",
        params={"api-version": STABLE_API_VERSION},
        data=json.dumps(_enrollment("bad-1", policy="")),
        headers={
            "Authorization": auth.make_token(dps.host_name, owner),
            "Content-Type": "application/json",
        },
        timeout=30,
        verify=str(dps.ca_bundle),
    )
    assert response.status_code == 400
    assert "credentialPolicyName" in response.json()["message"]
