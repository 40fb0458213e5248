"""The official Python device SDK (azure-iot-device), pointed at the lab DPS.

The SDK dials port 8883 (MQTT) or 443 (MQTT over WebSocket) of the provisioning host with no way
to name another port; it reaches the lab's free ports through the lab's port map, with the SDK's
own proxy option. It trusts the lab DPS through the lab CA bundle, never by turning checks off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from azure.iot.device import X509, ProvisioningDeviceClient, ProxyOptions

from station_lab.dps import LocalDps

TRANSPORTS = {"mqtt": False, "mqtt-ws": True}  # access-log transport -> SDK websockets flag


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


def derive(group_key: str, registration_id: str) -> str:
    """A group device's key, as the device maker derives it."""
    digest = hmac.new(base64.b64decode(group_key), registration_id.encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def sdk_client(
    dps: LocalDps,
    registration_id: str,
    *,
    transport: str = "mqtt",
    symmetric_key: str | None = None,
    cert: tuple[Path, Path] | None = None,
) -> Any:
    host, port = dps.port_map
    common: dict[str, Any] = {
        "provisioning_host": "localhost",
        "registration_id": registration_id,
        "id_scope": dps.id_scope,
        "server_verification_cert": dps.ca_bundle.read_text(),
        "websockets": TRANSPORTS[transport],
        "proxy_options": ProxyOptions("HTTP", host, port),
    }
    if symmetric_key is not None:
        return ProvisioningDeviceClient.create_from_symmetric_key(
            symmetric_key=symmetric_key, **common
        )
    assert cert is not None
    return ProvisioningDeviceClient.create_from_x509_certificate(
        x509=X509(str(cert[0]), str(cert[1])), **common
    )


def entries(dps: LocalDps, registration_id: str) -> list[dict[str, Any]]:
    """The device's MQTT entries in the access log."""
    return [
        e
        for e in dps.access_log()
        if e.get("transport", "").startswith("mqtt") and e.get("registrationId") == registration_id
    ]
