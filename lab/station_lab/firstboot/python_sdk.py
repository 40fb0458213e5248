"""First registration through Microsoft's Python device SDK (azure-iot-device), over MQTT.

This is what a device maker's Python firmware runs: ``ProvisioningDeviceClient`` with the board's
own symmetric key or certificate chain + key, trusting the DPS certificate through the CA bundle
the board holds. The SDK has no HTTPS provisioning transport and offers no TPM attestation; TPM
boards register through the Node SDK (``node_sdk.py``).

The SDK always dials port 8883 (or 443 for MQTT over WebSocket) of the provisioning host. A real
board reaches the global endpoint that way; a lab board reaches the lab DPS's free ports through
the lab's port map, with the SDK's own HTTP proxy option (``lab/station_lab/dps/port_map.py``).

The SDK reports a refusal as an exception whose cause names the status DPS answered on the MQTT
status topic (``... status code 401``), or the registration status it ended in; DPS's
``errorCode`` itself does not reach the device through this SDK.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final

from station.domain.errors import DeviceRegistrationError
from station_lab.firstboot.client import Assignment, DpsEndpoint
from station_lab.firstboot.credentials import SymmetricKeyCredential, X509Credential

log = logging.getLogger(__name__)

_STATUS: Final = re.compile(r"status code (?:of )?(\d{3})")
# "... a failed registration status with ..." / "... an invalid registration status disabled ..."
_REGISTRATION_STATUS: Final = re.compile(r"(failed) registration status|registration status (\w+)")


def sdk_name() -> str:
    """The SDK and its version, as the power-on report shows it."""
    try:
        version = metadata.version("azure-iot-device")
    except metadata.PackageNotFoundError:  # pragma: no cover - a declared dependency
        version = "?"
    return f"azure-iot-device {version} (Python, MQTT)"


@dataclass(frozen=True)
class SdkRoute:
    """How the SDK reaches DPS: directly (``proxy`` None) or through the lab's port map.

    ``proxy`` is ``host:port`` of an HTTP CONNECT proxy.
    """

    proxy: str | None = None
    websockets: bool = False


def register_with_python_sdk(
    endpoint: DpsEndpoint,
    credential: SymmetricKeyCredential | X509Credential,
    route: SdkRoute,
) -> Assignment:
    """Register ``credential`` with the Python device SDK and return DPS's assignment.

    Args:
        endpoint: the board's DPS info (provisioning host, ID scope, CA bundle); a ``:port`` on
            the host is dropped, because the SDK dials DPS's fixed device ports.
        credential: the board's symmetric key, or its certificate chain and key files.
        route: direct, or through the lab's port map.

    Raises:
        DeviceRegistrationError: DPS refused the device, or the SDK could not reach it.
    """
    from azure.iot.device import X509, ProvisioningDeviceClient, ProxyOptions
    from azure.iot.device import exceptions as sdk_errors

    host = _host(endpoint.global_endpoint)
    options: dict[str, Any] = {
        "provisioning_host": host,
        "registration_id": credential.registration_id,
        "id_scope": endpoint.id_scope,
        "websockets": route.websockets,
    }
    if endpoint.ca_bundle is not None:
        options["server_verification_cert"] = endpoint.ca_bundle.read_text(encoding="ascii")
    if route.proxy:
        proxy_host, _, proxy_port = route.proxy.rpartition(":")
        options["proxy_options"] = ProxyOptions(  # type: ignore[no-untyped-call]
            "HTTP", proxy_host.strip("[]"), int(proxy_port)
        )
    try:
        if isinstance(credential, SymmetricKeyCredential):
            client = ProvisioningDeviceClient.create_from_symmetric_key(
                symmetric_key=credential.device_key, **options
            )
        else:
            x509 = X509(  # type: ignore[no-untyped-call]
                str(credential.certificate_chain), str(credential.private_key)
            )
            client = ProvisioningDeviceClient.create_from_x509_certificate(x509=x509, **options)
        result = client.register()
    except (sdk_errors.ConnectionDroppedError, sdk_errors.OperationTimeout) as exc:
        raise DeviceRegistrationError(
            f"the Python device SDK lost DPS at {host} while registering: {exc}",
            remedy="Check the board's DPS endpoint, its CA bundle and that the service runs.",
            registration_id=credential.registration_id,
        ) from exc
    except sdk_errors.CredentialError as exc:
        raise _refused(credential.registration_id, exc, "the connection was refused") from exc
    except sdk_errors.ClientError as exc:
        raise _refused(credential.registration_id, exc, "the SDK could not register") from exc
    state = result.registration_state
    if result.status != "assigned" or state is None:
        raise DeviceRegistrationError(
            f"DPS did not assign {credential.registration_id}: status {result.status}",
            remedy="Check the device's enrollment (enabled, linked hubs, custom allocation).",
            error_code=str(result.status),
            registration_id=credential.registration_id,
        )
    return Assignment(
        registration_id=credential.registration_id,
        assigned_hub=str(state.assigned_hub),
        device_id=str(state.device_id),
        substatus=str(state.sub_status),
        etag=str(state.etag or ""),
        operation_id=str(result.operation_id or ""),
        payload=state.response_payload,
    )


def _host(global_endpoint: str) -> str:
    if global_endpoint.startswith("["):  # [::1]:port
        return global_endpoint[1:].split("]", 1)[0]
    host, _, port = global_endpoint.rpartition(":")
    return host if host and port.isdigit() else global_endpoint


def _refused(reg_id: str, exc: BaseException, fallback: str) -> DeviceRegistrationError:
    """What the SDK's exception chain says DPS answered: a status topic code or a final status."""
    messages = []
    current: BaseException | None = exc
    while current is not None:
        messages.append(str(current))
        current = current.__cause__
    text = " | ".join(messages)
    log.info("Python device SDK refused %s: %s", reg_id, text)
    found = _REGISTRATION_STATUS.search(text)
    if found is not None:
        status = found[1] or found[2]
        return DeviceRegistrationError(
            f"DPS refused the registration of {reg_id}: its registration is {status}",
            remedy="Enable the device's enrollment (or its group) at DPS, then power it on again.",
            error_code=status,
            registration_id=reg_id,
        )
    code = _STATUS.search(text)
    if code is not None:
        return DeviceRegistrationError(
            f"DPS refused the registration of {reg_id} with status {code[1]}",
            remedy="Check that the device is enrolled with the key or certificate it holds.",
            error_code=code[1],
            registration_id=reg_id,
        )
    return DeviceRegistrationError(
        f"DPS refused the registration of {reg_id}: {fallback} ({messages[-1]})",
        remedy="Check the board's credential, its CA bundle and that it is enrolled.",
        registration_id=reg_id,
    )
