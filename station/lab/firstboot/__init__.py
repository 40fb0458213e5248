"""A lab board's first boot: register with DPS using what the station wrote into it.

>>> endpoint = DpsEndpoint("127.0.0.1:8443", "0ne00000001", ca_bundle)  # doctest: +SKIP
>>> client = DeviceRegistrationClient(endpoint)  # doctest: +SKIP
>>> client.register(SymmetricKeyCredential("dev-1", key)).assigned_hub  # doctest: +SKIP

See docs/lab-dps.md, "Device registration".
"""

from __future__ import annotations

from station.lab.firstboot.client import (
    Assignment,
    DeviceRegistrationClient,
    DpsEndpoint,
    sas_token,
)
from station.lab.firstboot.credentials import (
    Credential,
    SymmetricKeyCredential,
    TpmCredential,
    X509Credential,
)
from station.lab.firstboot.tpm import DeviceTpm

__all__ = [
    "Assignment",
    "Credential",
    "DeviceRegistrationClient",
    "DeviceTpm",
    "DpsEndpoint",
    "SymmetricKeyCredential",
    "TpmCredential",
    "X509Credential",
    "sas_token",
]
