"""Property test: whatever JSON arrives, the answer is never a 500 and errors are DPS-shaped."""

from __future__ import annotations

import json

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from station_lab.dps import auth

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "registrationId",
    "deviceId",
    "attestation",
    "capabilities",
    "iotHubHostName",
    "iotHubs",
    "allocationPolicy",
    "customAllocationDefinition",
    "initialTwin",
    "provisioningStatus",
    "reprovisionPolicy",
    "optionalDeviceInformation",
    "etag",
]
attestations = st.fixed_dictionaries(
    {"type": st.sampled_from(["tpm", "x509", "symmetricKey", "none", "other"]) | json_values},
    optional={
        "tpm": st.fixed_dictionaries(
            {}, optional={"endorsementKey": json_values | st.binary().map(lambda b: b.hex())}
        ),
        "x509": st.dictionaries(
            st.sampled_from(["clientCertificates", "signingCertificates", "caReferences"]),
            json_values,
        ),
        "symmetricKey": st.dictionaries(
            st.sampled_from(["primaryKey", "secondaryKey"]), json_values | st.text()
        ),
    },
)
enrollment_like = st.fixed_dictionaries(
    {"registrationId": st.just("fuzz-1") | json_values, "attestation": attestations | json_values},
    optional={name: json_values for name in FIELDS[3:]},
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=enrollment_like | json_values,
    bulk=st.booleans(),
    mode=st.sampled_from(["create", "update", "delete", "x"]),
)
def test_no_body_makes_the_server_fail(dps, body, bulk, mode):
    owner = dps.policies[auth.OWNER_POLICY]
    headers = {
        "Authorization": auth.make_token(dps.host_name, owner),
        "Content-Type": "application/json",
    }
    if bulk:
        url, method, payload = (
            f"{dps.endpoint}/enrollments",
            "POST",
            {"mode": mode, "enrollments": [body]},
        )
    else:
        url, method, payload = f"{dps.endpoint}/enrollments/fuzz-1", "PUT", body
    response = requests.request(
        method,
        url,
        params={"api-version": "2021-10-01"},
        data=json.dumps(payload),
        headers=dict(headers, **({"If-Match": "*"} if not bulk else {})),
        verify=str(dps.ca_bundle),
        timeout=30,
    )
    assert response.status_code < 500, response.text
    answer = response.json()
    if response.status_code >= 400:
        assert set(answer) == {"errorCode", "trackingId", "message", "timestampUtc"}
        assert answer["errorCode"] // 1000 == response.status_code
    elif bulk:
        assert set(answer) == {"isSuccessful", "errors"}
