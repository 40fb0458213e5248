"""The device API never fails with anything but a DPS-shaped refusal, whatever it is sent."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from azure.iot.deviceprovisioning import DeviceProvisioningClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tpm2_pytss.types import TPM2B_PUBLIC

from station_lab.dps import LocalDps
from station_lab.dps.errors import ApiError
from station_lab.dps.service import ApiRequest


def _public(attributes: str) -> str:
    public = TPM2B_PUBLIC.parse("rsa2048:aes128cfb", objectAttributes=attributes)
    public.publicArea.unique.rsa = os.urandom(256)
    return base64.b64encode(public.marshal()).decode("ascii")


ENROLLED_EK = _public("fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|restricted|decrypt")
SOME_SRK = _public("fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "registrationId": json_values | st.just("fuzz-1"),
            "tpm": json_values
            | st.fixed_dictionaries(
                {
                    "endorsementKey": st.text(max_size=40)
                    | st.just(base64.b64encode(b"x" * 40).decode())
                    | st.just(ENROLLED_EK)
                },
                optional={"storageRootKey": json_values | st.just(SOME_SRK) | st.just(ENROLLED_EK)},
            ),
            "payload": json_values,
        },
    ),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "authorization": st.text(max_size=60)
        | st.just(
            "SharedAccessSignature sr=0ne00000001%2Fregistrations%2Ffuzz-1&sig=AA%3D%3D&se=9999999999&skn=registration"
        )
    },
)


@pytest.fixture
def enrolled(service: DeviceProvisioningClient) -> None:
    """A TPM enrollment for fuzz-1 and a symmetric-key group, so attestation code paths run."""
    ek = ENROLLED_EK
    service.enrollment.create_or_update(
        id="fuzz-1",
        enrollment={
            "registrationId": "fuzz-1",
            "attestation": {"type": "tpm", "tpm": {"endorsementKey": ek}},
        },
    )
    service.enrollment_group.create_or_update(
        id="fuzz-group",
        enrollment_group={
            "enrollmentGroupId": "fuzz-group",
            "attestation": {"type": "symmetricKey"},
        },
    )


chains = st.just(()) | st.lists(st.binary(max_size=64), min_size=1, max_size=3).map(tuple)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=bodies,
    sent_headers=headers,
    chain=chains,
    reg_id=st.sampled_from(["fuzz-1", "Fuzz-1", "-bad-"]),
)
def test_register_and_lookup_refuse_cleanly(
    dps: LocalDps,
    enrolled: None,
    body: Any,
    sent_headers: dict[str, str],
    chain: tuple[bytes, ...],
    reg_id: str,
) -> None:
    assert dps.device_api is not None
    params = {"idScope": dps.id_scope, "id": reg_id}
    request = ApiRequest(params, sent_headers, body, has_body=body is not None, client_chain=chain)
    for operation in (dps.device_api.register, dps.device_api.status_lookup):
        try:
            answer = operation(request)
        except ApiError as exc:
            assert 400 <= exc.status < 500
        else:
            assert answer.status in (200, 202, 401)
