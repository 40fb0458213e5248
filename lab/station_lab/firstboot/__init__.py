"""A lab board's first boot: register with DPS using what the station wrote into it.

>>> endpoint = DpsEndpoint("127.0.0.1:8443", "0ne00000001", ca_bundle)  # doctest: +SKIP
>>> client = DeviceRegistrationClient(endpoint)  # doctest: +SKIP
>>> client.register(SymmetricKeyCredential("dev-1", key)).assigned_hub  # doctest: +SKIP

``DeviceRegistrationClient`` is the lab's own HTTPS device client. At ``station lab power-on``
boards register with Microsoft's device SDKs instead: ``python_sdk`` (azure-iot-device, MQTT;
symmetric key and X.509) and ``node_sdk`` (the Node SDK over HTTPS; TPM, through
``tpm_bridge``).

See docs/lab-dps.md, "Device registration" and "Powering on lab boards".
"""

from __future__ import annotations

from station_lab.firstboot.client import (
    Assignment,
    DeviceRegistrationClient,
    DpsEndpoint,
    sas_token,
)
from station_lab.firstboot.credentials import (
    Credential,
    SymmetricKeyCredential,
    TpmCredential,
    X509Credential,
)
from station_lab.firstboot.tpm import DeviceTpm

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
