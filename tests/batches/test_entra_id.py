"""Entra ID sign-in: the official client asks the credential for a DPS token and sends it.

The lab stand-in only knows shared access signatures, so it refuses the bearer token; what this
checks is the station's side: the right scope is requested, the token reaches DPS, and a refusal
becomes a clear credentials error for the operator.
"""

from __future__ import annotations

import time

import pytest
from azure.core.credentials import AccessToken

from station.adapters.dps.client import AzureEnrollmentService
from station.domain.errors import DpsCredentialsError


class StaticToken:
    """A TokenCredential that hands out one fixed token and remembers what it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("lab-token", int(time.time()) + 3600)


def test_entra_id_token_is_requested_for_dps_and_sent(dps) -> None:
    credential = StaticToken()
    service = AzureEnrollmentService.from_entra_id(
        dps.endpoint, credential=credential, ca_bundle=dps.ca_bundle, timeout_s=10
    )
    try:
        with pytest.raises(DpsCredentialsError) as info:
            service.get("some-device")
    finally:
        service.close()
    assert credential.scopes == [("https://azure-devices-provisioning.net/.default",)]
    assert info.value.remedy
    refused = [e for e in dps.access_log() if e["status"] == 401]
    assert refused, "the request reached DPS and was refused"
