"""A device's first registration with DPS over HTTPS, as its firmware does it at first boot.

``PUT /{idScope}/registrations/{id}/register``, then ``GET .../operations/{operationId}`` after
each ``Retry-After`` until the operation is done (a 429 is waited out the same way). For a TPM,
the first PUT gets DPS's 401 challenge; the key in it is activated and imported in the TPM, which
then signs the SAS for the second PUT and the polls (dps-api.md §7-§8).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from station.domain.errors import DeviceRegistrationError
from station_lab.firstboot.credentials import (
    Credential,
    SymmetricKeyCredential,
    TpmCredential,
    X509Credential,
)

DEVICE_API_VERSION: Final = "2021-10-01"
CSR_API_VERSION: Final = "2026-04-01"  # the first stable api-version with certificate management
DEFAULT_POLL_S: Final = 2.0  # the SDKs' default when Retry-After is absent
TOKEN_TTL_S: Final = 3600
INVALID_CERTIFICATE: Final = 401002  # what DPS reports for a certificate it does not accept


@dataclass(frozen=True)
class DpsEndpoint:
    """The DPS info a board holds: where to register, the ID scope, and the TLS trust.

    ``global_endpoint`` is ``host`` or ``host:port`` (the lab's stand-in is ``127.0.0.1:PORT``).
    """

    global_endpoint: str
    id_scope: str
    ca_bundle: Path | None = None
    api_version: str = DEVICE_API_VERSION

    @classmethod
    def from_board(
        cls,
        dps_object: Mapping[str, Any],
        *,
        ca_bundle: Path | None = None,
        endpoint_override: str | None = None,
    ) -> DpsEndpoint:
        """Build from the ``dps`` object the station writes into a board.

        Args:
            dps_object: the decoded CBOR map ``{endpoint, scope, rid}`` (docs/board-protocol.md).
            ca_bundle: trust for the DPS TLS certificate (the lab's CA bundle).
            endpoint_override: where to register instead of ``endpoint`` (the lab stand-in
                plays ``global.azure-devices-provisioning.net`` on ``127.0.0.1:PORT``).

        Raises:
            DeviceRegistrationError: the object lacks a text ``endpoint`` or ``scope``.
        """
        endpoint, scope = dps_object.get("endpoint"), dps_object.get("scope")
        if not isinstance(endpoint, str) or not isinstance(scope, str):
            raise DeviceRegistrationError(
                "the board's DPS object lacks its endpoint or ID scope",
                remedy="Provision the board again so the station writes its DPS info.",
            )
        return cls(endpoint_override or endpoint, scope, ca_bundle)


@dataclass(frozen=True)
class Assignment:
    """A successful registration: the hub and device ID to connect with, and DPS's answer."""

    registration_id: str
    assigned_hub: str
    device_id: str
    substatus: str
    etag: str
    operation_id: str
    payload: Any = None
    registration_state: Mapping[str, Any] = field(default_factory=dict)

    @property
    def issued_chain(self) -> tuple[bytes, ...]:
        """The operational certificate chain DPS issued (leaf, issuing CA, root; DER), if any."""
        chain = self.registration_state.get("issuedCertificateChain")
        if not isinstance(chain, list):
            return ()
        return tuple(base64.b64decode(str(der)) for der in chain)


def sas_token(
    id_scope: str,
    registration_id: str,
    sign: Callable[[bytes], bytes],
    *,
    now: float | None = None,
    ttl_s: int = TOKEN_TTL_S,
) -> str:
    r"""Build the device SAS token (``skn=registration``).

    ``sig = sign(urlencode("{idScope}/registrations/{id}") + "\n" + se)``, base64-encoded.
    """
    resource = f"{id_scope}/registrations/{registration_id}"
    expiry = int((time.time() if now is None else now) + ttl_s)
    encoded = urllib.parse.quote_plus(resource)
    signature = base64.b64encode(sign(f"{encoded}\n{expiry}".encode())).decode("ascii")
    fields = {"sr": resource, "sig": signature, "se": str(expiry), "skn": "registration"}
    return "SharedAccessSignature " + urllib.parse.urlencode(fields)


class DeviceRegistrationClient:
    """Registers one device with DPS (what a board's firmware does at first boot).

    Args:
        endpoint: the DPS info the station wrote into the board.
        timeout_s: how long the whole registration (challenge, register, polls) may take.
        sleep: waits between polls (injectable for tests).
    """

    def __init__(
        self,
        endpoint: DpsEndpoint,
        *,
        timeout_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._sleep = sleep

    def register(
        self, credential: Credential, *, payload: Any = None, csr: bytes | None = None
    ) -> Assignment:
        """Register and poll until DPS has decided; return the assignment.

        With ``csr`` (PKCS#10 DER) the registration asks for an operational certificate: the
        body carries it as ``csr`` (base64 DER) under api-version 2026-04-01, and the
        assignment's :attr:`Assignment.issued_chain` holds what DPS issued.

        Raises:
            DeviceRegistrationError: DPS refused (its ``errorCode`` in ``details``), the
                registration ended ``disabled`` or ``failed``, or it timed out.
        """
        deadline = time.monotonic() + self.timeout_s
        reg_id = credential.registration_id
        body: dict[str, Any] = {"registrationId": reg_id}
        if payload is not None:
            body["payload"] = payload
        api_version = self.endpoint.api_version
        if csr is not None:
            body["csr"] = _b64(csr)
            api_version = CSR_API_VERSION
        authorization: str | None = None
        if isinstance(credential, TpmCredential):
            body["tpm"] = {
                "endorsementKey": _b64(credential.tpm.endorsement_key()),
                "storageRootKey": _b64(credential.tpm.storage_root_key()),
            }
        elif isinstance(credential, SymmetricKeyCredential):
            authorization = sas_token(self.endpoint.id_scope, reg_id, credential.signer())
        connection = self._connect(credential)
        try:
            status, headers, answer = self._call(
                connection,
                credential,
                "PUT",
                f"{reg_id}/register",
                body,
                authorization,
                api_version,
            )
            if status == 401 and isinstance(credential, TpmCredential) and _challenge(answer):
                blob = base64.b64decode(str(answer["authenticationKey"]))
                credential.tpm.import_authentication_key(blob)
                authorization = sas_token(
                    self.endpoint.id_scope, reg_id, credential.tpm.hmac_sha256
                )
                status, headers, answer = self._call(
                    connection,
                    credential,
                    "PUT",
                    f"{reg_id}/register",
                    body,
                    authorization,
                    api_version,
                )
            if status not in (200, 202):
                raise _refused(status, answer, reg_id)
            operation_id = str(answer.get("operationId", ""))
            while answer.get("status") in ("assigning", "unassigned") or status == 429:
                self._wait(headers, deadline, reg_id)
                status, headers, answer = self._call(
                    connection,
                    credential,
                    "GET",
                    f"{reg_id}/operations/{urllib.parse.quote(operation_id, safe='')}",
                    None,
                    authorization,
                    api_version,
                )
                if status not in (200, 202, 429):
                    raise _refused(status, answer, reg_id)
        finally:
            connection.close()
        return _assignment(answer, reg_id)

    # ------------------------------------------------------------------ HTTP
    def _connect(self, credential: Credential) -> http.client.HTTPSConnection:
        tls = ssl.create_default_context(
            cafile=str(self.endpoint.ca_bundle) if self.endpoint.ca_bundle else None
        )
        if isinstance(credential, X509Credential):
            tls.load_cert_chain(credential.certificate_chain, credential.private_key)
        host, _, port = self.endpoint.global_endpoint.rpartition(":")
        if not host or not port.isdigit():
            host, port = self.endpoint.global_endpoint, "443"
        return http.client.HTTPSConnection(
            host.strip("[]"), int(port), context=tls, timeout=max(1.0, self.timeout_s)
        )

    def _call(
        self,
        connection: http.client.HTTPSConnection,
        credential: Credential,
        method: str,
        tail: str,
        body: Mapping[str, Any] | None,
        authorization: str | None,
        api_version: str,
    ) -> tuple[int, Mapping[str, str], dict[str, Any]]:
        scope = urllib.parse.quote(self.endpoint.id_scope, safe="")
        path = f"/{scope}/registrations/{tail}?api-version={api_version}"
        headers = {"Accept": "application/json", "User-Agent": "station-lab-firstboot/1"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        if authorization:
            headers["Authorization"] = authorization
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except ssl.SSLError as exc:
            raise self._tls_refusal(credential, exc) from exc
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            if isinstance(credential, X509Credential):
                raise self._tls_refusal(credential, exc) from exc
            raise DeviceRegistrationError(
                f"cannot reach DPS at {self.endpoint.global_endpoint}: {exc}",
                remedy="Check the board's DPS endpoint and that the service is running.",
                endpoint=self.endpoint.global_endpoint,
            ) from exc
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError as exc:
            raise DeviceRegistrationError(
                "DPS answered with something that is not JSON", status=response.status
            ) from exc
        lowered = {name.lower(): value for name, value in response.getheaders()}
        return response.status, lowered, answer if isinstance(answer, dict) else {}

    def _tls_refusal(self, credential: Credential, exc: BaseException) -> DeviceRegistrationError:
        # DPS checks a device certificate in the TLS handshake: a chain it does not trust (not
        # enrolled, tampered, expired) ends the connection with an alert instead of a JSON body.
        if isinstance(credential, X509Credential):
            return DeviceRegistrationError(
                "DPS refused the device certificate in the TLS handshake",
                remedy="Check that the certificate chain is the one the station issued and that "
                "its CA or the device is enrolled.",
                error_code=INVALID_CERTIFICATE,
                tls_error=str(exc),
            )
        return DeviceRegistrationError(
            f"the TLS connection to DPS failed: {exc}",
            remedy="Check the board's CA bundle and DPS endpoint.",
            tls_error=str(exc),
        )

    def _wait(self, headers: Mapping[str, str], deadline: float, reg_id: str) -> None:
        try:
            # the lab stand-in adds the exact wait in ms (its clock may be scaled); DPS sends
            # whole seconds in Retry-After
            millis = headers.get("x-ms-retry-after-ms")
            delay = (
                float(millis) / 1000
                if millis
                else float(headers.get("retry-after", DEFAULT_POLL_S))
            )
        except ValueError:
            delay = DEFAULT_POLL_S
        delay = max(0.0, delay)
        if time.monotonic() + delay > deadline:
            raise DeviceRegistrationError(
                f"DPS did not finish registering {reg_id} within {self.timeout_s:g} s",
                remedy="Try again later; check the DPS service's health.",
                registration_id=reg_id,
            )
        self._sleep(delay)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _challenge(answer: Mapping[str, Any]) -> bool:
    return isinstance(answer.get("authenticationKey"), str) and "errorCode" not in answer


def _refused(status: int, answer: Mapping[str, Any], reg_id: str) -> DeviceRegistrationError:
    code = answer.get("errorCode")
    message = str(answer.get("message") or f"HTTP {status}")
    return DeviceRegistrationError(
        f"DPS refused the registration of {reg_id}: {message}",
        remedy=_remedy(code if isinstance(code, int) else 0),
        http_status=status,
        error_code=code,
        tracking_id=answer.get("trackingId"),
        registration_id=reg_id,
    )


def _remedy(code: int) -> str:
    if code == 404201:
        return "The device is not enrolled: check that its batch was pushed to DPS."
    if code == 400004:
        return "The TPM's endorsement key is not the enrolled one: re-read it at the station."
    if code // 1000 == 401:
        return "The device's credential does not match its enrollment: re-provision the board."
    if code // 1000 == 429:
        return "DPS is throttling; wait and power the board on again."
    return "See the DPS error code in the details."


def _assignment(answer: Mapping[str, Any], reg_id: str) -> Assignment:
    state = answer.get("registrationState")
    state = state if isinstance(state, dict) else {}
    status = answer.get("status")
    if status != "assigned":
        raise DeviceRegistrationError(
            f"DPS did not assign {reg_id}: status {status}"
            + (f" ({state['errorMessage']})" if state.get("errorMessage") else ""),
            remedy="Check the device's enrollment (enabled, linked hubs, custom allocation).",
            status=status,
            error_code=state.get("errorCode"),
            registration_id=reg_id,
        )
    return Assignment(
        registration_id=str(state.get("registrationId", reg_id)),
        assigned_hub=str(state.get("assignedHub", "")),
        device_id=str(state.get("deviceId", "")),
        substatus=str(state.get("substatus", "")),
        etag=str(state.get("etag", "")),
        operation_id=str(answer.get("operationId", "")),
        payload=state.get("payload"),
        registration_state=dict(state),
    )
