"""The :class:`~station.ports.EnrollmentService` over ``azure-iot-deviceprovisioning``.

Credentials come from a connection-string file (0600, named by ``[dps] connection_string_file``
or ``$STATION_DPS_CONNECTION_FILE``) or from Entra ID (``azure-identity``'s default credential
for ``[dps] endpoint``). The connection string is read when the service opens and kept only inside
the client: it never reaches the database, a log line or an error message.

The SDK's own retry policy is switched off: the push service decides about retries, so it can
count operations, honour ``Retry-After`` and stay under the client-side rate limit.

**api-versions.** Everything is sent under :data:`SERVICE_API_VERSION`, the version the official
client was generated for, except what carries a DPS credential policy: ``credentialPolicyName``
exists only from 2025-07-01-preview on, and DPS may drop a field its api-version does not define
(the specs do not say; the lab DPS models it so), so an enrollment or group naming a policy is
written, and read back, under :data:`CREDENTIAL_POLICY_API_VERSION` (docs/lab-dps.md,
"api-versions"). The official client accepts no other api-version, so that second client pins
its own on every request (:class:`PinnedApiVersion`).
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.enrollments import names_credential_policy
from station.domain.errors import (
    DpsCredentialsError,
    DpsThrottledError,
    DpsTransientError,
    EnrollmentServiceError,
)
from station.domain.pushes import BulkItemError

log = logging.getLogger(__name__)
MAX_BULK = 10
#: The service api-version of every request that carries no credential policy: the one the
#: official client (azure-iot-deviceprovisioning 1.0.0b1) was generated for.
SERVICE_API_VERSION: Final = "2021-10-01"
#: The newest stable service api-version that defines ``credentialPolicyName`` on enrollments
#: and groups (Azure/azure-rest-api-specs, stable/2026-04-01/service.json). 2026-11-01 replaces
#: the field by namespaceName/certificateAuthorityName/certificatePolicyName, so it is not used.
CREDENTIAL_POLICY_API_VERSION: Final = "2026-04-01"


def read_connection_string(path: Path) -> str:
    """Read a DPS connection string from ``path`` (refusing files others can read).

    Raises:
        DpsCredentialsError: missing, unreadable, world/group-readable or malformed file.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise DpsCredentialsError(
            f"cannot read the DPS connection-string file {path}: {exc.strerror}",
            remedy="Set [dps] connection_string_file (or $STATION_DPS_CONNECTION_FILE) to the "
            "file holding the service connection string.",
            path=str(path),
        ) from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DpsCredentialsError(
            f"the DPS connection-string file {path} is readable by other users",
            remedy=f"Run 'chmod 600 {path}'.",
            path=str(path),
        )
    parts = dict(item.split("=", 1) for item in text.split(";") if "=" in item)
    if not {"HostName", "SharedAccessKeyName", "SharedAccessKey"} <= parts.keys():
        raise DpsCredentialsError(
            f"{path} does not hold a DPS service connection string",
            remedy="Copy the connection string of a shared access policy with EnrollmentWrite "
            "from the DPS instance (HostName=...;SharedAccessKeyName=...;SharedAccessKey=...).",
            path=str(path),
        )
    return text


class AzureEnrollmentService:
    """DPS enrollments through the official client; one thread, one HTTP session per api-version.

    Args:
        open_client: opens the official client for an api-version (the policy client only when
            a credential policy is first written or read).
        credential_policy_api_version: the api-version for policy-bearing requests
            (:data:`CREDENTIAL_POLICY_API_VERSION`; a station from before it sent
            :data:`SERVICE_API_VERSION`, which the tests reproduce).
    """

    def __init__(
        self,
        open_client: Callable[[str], DeviceProvisioningClient],
        *,
        credential_policy_api_version: str = CREDENTIAL_POLICY_API_VERSION,
    ) -> None:
        self._open_client = open_client
        self._policy_version = credential_policy_api_version
        self._clients: dict[str, DeviceProvisioningClient] = {}
        self._operations = 0
        self._client()  # the connection settings are checked now, not at the first call

    @classmethod
    def from_connection_file(
        cls,
        path: Path,
        *,
        ca_bundle: Path | None = None,
        timeout_s: float = 30.0,
        credential_policy_api_version: str = CREDENTIAL_POLICY_API_VERSION,
    ) -> AzureEnrollmentService:
        """Open the service with the connection string in ``path``."""
        text = read_connection_string(path)

        def open_client(api_version: str) -> DeviceProvisioningClient:
            options = _transport_options(ca_bundle, timeout_s)
            return open_service_client(text, api_version=api_version, **options)

        try:
            return cls(open_client, credential_policy_api_version=credential_policy_api_version)
        except ValueError as exc:
            raise DpsCredentialsError(
                f"the connection string in {path} is malformed", path=str(path)
            ) from exc

    @classmethod
    def from_entra_id(
        cls,
        endpoint: str,
        *,
        credential: TokenCredential | None = None,
        ca_bundle: Path | None = None,
        timeout_s: float = 30.0,
    ) -> AzureEnrollmentService:
        """Open the service with Entra ID.

        Args:
            endpoint: ``https://NAME.azure-devices-provisioning.net``.
            credential: the token source; default ``DefaultAzureCredential`` (managed identity,
                workload identity, environment, Azure CLI login: whatever the workstation has),
                so no secret is stored by the station at all.
            ca_bundle: extra TLS trust (lab only).
            timeout_s: connect and read timeout.
        """
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        token_source = credential

        def open_client(api_version: str) -> DeviceProvisioningClient:
            options = _pinned(_transport_options(ca_bundle, timeout_s), api_version)
            return DeviceProvisioningClient(endpoint, token_source, **options)

        return cls(open_client)

    def _client(self, *, policy: bool = False) -> DeviceProvisioningClient:
        """The client for plain requests, or (``policy``) for policy-bearing ones."""
        version = self._policy_version if policy else SERVICE_API_VERSION
        client = self._clients.get(version)
        if client is None:
            client = self._clients[version] = self._open_client(version)
        return client

    @property
    def operations(self) -> int:
        """Billable operations made so far (throttled calls do not count, as in DPS)."""
        return self._operations

    def bulk_create(self, enrollments: Sequence[Mapping[str, Any]]) -> list[BulkItemError]:
        """Create up to 10 enrollments in one bulk call; return the refused items."""
        if not 1 <= len(enrollments) <= MAX_BULK:
            raise EnrollmentServiceError(
                f"a bulk call takes 1 to {MAX_BULK} enrollments, not {len(enrollments)}"
            )
        body = {"mode": "create", "enrollments": [dict(e) for e in enrollments]}
        client = self._client(policy=any(names_credential_policy(e) for e in enrollments))
        result = self._call(client.enrollment.run_bulk_operation, body)
        return [
            BulkItemError(
                registration_id=str(item.get("registrationId", "")),
                code=int(item.get("errorCode", 0)),
                status=str(item.get("errorStatus", "")),
            )
            for item in (result or {}).get("errors") or []
        ]

    def get(
        self, registration_id: str, *, credential_policy: bool = False
    ) -> dict[str, Any] | None:
        """DPS's enrollment, or ``None`` (404); ``credential_policy``: read so it shows one."""
        client = self._client(policy=credential_policy)
        try:
            return dict(self._call(client.enrollment.get, registration_id))
        except ResourceNotFoundError:
            return None

    def attestation_mechanism(self, registration_id: str) -> dict[str, Any] | None:
        """DPS's attestation for ``registration_id`` with its keys, or ``None`` (404)."""
        try:
            return dict(
                self._call(self._client().enrollment.get_attestation_mechanism, registration_id)
            )
        except ResourceNotFoundError:
            return None

    def query_page(
        self, continuation: str | None = None, *, credential_policy: bool = False
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page (up to 1,000) of every individual enrollment and the next continuation.

        ``credential_policy``: read under the api-version that shows ``credentialPolicyName``.
        """
        client = self._client(policy=credential_policy)
        pages = client.enrollment.query({"query": "SELECT *"}, top=1000).by_page(
            continuation_token=continuation
        )
        page = self._call(lambda: [dict(item) for item in next(pages)])
        following = getattr(pages, "continuation_token", None)  # azure-core's PageIterator
        return page, str(following) if following else None

    def get_group(self, group_id: str, *, credential_policy: bool = False) -> dict[str, Any] | None:
        """DPS's enrollment group, or ``None`` (404); ``credential_policy``: so it shows one."""
        client = self._client(policy=credential_policy)
        try:
            return dict(self._call(client.enrollment_group.get, group_id))
        except ResourceNotFoundError:
            return None

    def group_attestation_mechanism(self, group_id: str) -> dict[str, Any] | None:
        """DPS's attestation for enrollment group ``group_id`` with its keys, or ``None`` (404)."""
        try:
            return dict(
                self._call(self._client().enrollment_group.get_attestation_mechanism, group_id)
            )
        except ResourceNotFoundError:
            return None

    def create_group(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """Create an enrollment group (DPS answers 409 when it exists: no If-Match is sent)."""
        group_id = str(group["enrollmentGroupId"])
        client = self._client(policy=names_credential_policy(group))
        return dict(
            self._call(
                client.enrollment_group.create_or_update,
                id=group_id,
                enrollment_group=dict(group),
            )
        )

    def close(self) -> None:
        """Close the HTTP sessions."""
        for client in self._clients.values():
            client.close()

    def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = func(*args, **kwargs)
        except StopIteration:
            self._operations += 1
            raise
        except ResourceNotFoundError:
            self._operations += 1
            raise
        except ClientAuthenticationError as exc:
            raise DpsCredentialsError(
                "DPS refused the station's credentials",
                remedy="Check that the shared access policy exists, has EnrollmentWrite and "
                "that its key was not regenerated.",
                status=exc.status_code,
            ) from exc
        except HttpResponseError as exc:
            raise _translate(exc) from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise DpsTransientError(
                f"the DPS connection failed: {type(exc).__name__}",
                remedy="Check the network; the push resumes where it stopped.",
            ) from exc
        self._operations += 1
        return result


def open_service_client(
    connection_string: str, *, api_version: str = SERVICE_API_VERSION, **options: Any
) -> DeviceProvisioningClient:
    """The official client for ``connection_string``, sending ``api_version`` on every request.

    The client's own ``api_version`` takes only the version it was generated for (2021-10-01);
    any other is pinned by a pipeline policy. ``options`` go to the client (transport settings).
    """
    return DeviceProvisioningClient.from_connection_string(
        connection_string, **_pinned(options, api_version)
    )


def _pinned(options: dict[str, Any], api_version: str) -> dict[str, Any]:
    if api_version == SERVICE_API_VERSION:
        return options
    return {**options, "_additional_pipeline_policies": PinnedApiVersion(api_version)}


def _transport_options(ca_bundle: Path | None, timeout_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "retry_total": 0,  # the push service retries, with its own budget and rate limit
        "connection_timeout": timeout_s,
        "read_timeout": timeout_s,
    }
    if ca_bundle is not None:
        options["connection_verify"] = str(ca_bundle)
    return options


class PinnedApiVersion(SansIOHTTPPolicy[HttpRequest, Any]):
    """Sends every request of its client under one api-version (the query's ``api-version``)."""

    def __init__(self, api_version: str) -> None:
        self.api_version = api_version

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        """Replace the request's ``api-version`` query parameter."""
        http = request.http_request
        parts = urlsplit(http.url)
        query = [
            (k, self.api_version if k == "api-version" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
        http.url = urlunsplit(parts._replace(query=urlencode(query)))


def _translate(exc: HttpResponseError) -> EnrollmentServiceError:
    status = exc.status_code or 0
    headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
    code = headers.get("x-ms-error-code", "")
    if status == 429:
        return DpsThrottledError(
            "DPS throttled the station (429)",
            remedy="The push waits and resumes by itself; lower [dps] rate_limit_per_minute if "
            "this keeps happening.",
            retry_after_s=_retry_after(headers),
        )
    if status >= 500 or status == 0:
        return DpsTransientError(
            f"DPS answered {status} (error {code or 'unknown'})", status=status
        )
    return EnrollmentServiceError(
        f"DPS refused the request: {status} (error {code or 'unknown'})",
        status=status,
        error_code=code,
    )


def _retry_after(headers: Mapping[str, str]) -> float:
    millis = headers.get("x-ms-retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    try:
        return max(float(headers.get("Retry-After", "1")), 0.0)
    except ValueError:
        return 1.0
