"""The :class:`~station.ports.EnrollmentService` over ``azure-iot-deviceprovisioning``.

Credentials come from a connection-string file (0600, named by ``[dps] connection_string_file``
or ``$STATION_DPS_CONNECTION_FILE``) or from Entra ID (``azure-identity``'s default credential
for ``[dps] endpoint``). The connection string is read when the service opens and kept only inside
the client: it never reaches the database, a log line or an error message.

The SDK's own retry policy is switched off: the push service decides about retries, so it can
count operations, honour ``Retry-After`` and stay under the client-side rate limit.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.iot.deviceprovisioning import DeviceProvisioningClient

from station.domain.errors import (
    DpsCredentialsError,
    DpsThrottledError,
    DpsTransientError,
    EnrollmentServiceError,
)
from station.domain.pushes import BulkItemError

log = logging.getLogger(__name__)
MAX_BULK = 10


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
    """DPS enrollments through the official client; one thread, one HTTP session."""

    def __init__(self, client: DeviceProvisioningClient) -> None:
        self._client = client
        self._operations = 0

    @classmethod
    def from_connection_file(
        cls, path: Path, *, ca_bundle: Path | None = None, timeout_s: float = 30.0
    ) -> AzureEnrollmentService:
        """Open the service with the connection string in ``path``."""
        kwargs = _transport_options(ca_bundle, timeout_s)
        try:
            client = DeviceProvisioningClient.from_connection_string(
                read_connection_string(path), **kwargs
            )
        except ValueError as exc:
            raise DpsCredentialsError(
                f"the connection string in {path} is malformed", path=str(path)
            ) from exc
        return cls(client)

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
        client = DeviceProvisioningClient(
            endpoint, credential, **_transport_options(ca_bundle, timeout_s)
        )
        return cls(client)

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
        result = self._call(self._client.enrollment.run_bulk_operation, body)
        return [
            BulkItemError(
                registration_id=str(item.get("registrationId", "")),
                code=int(item.get("errorCode", 0)),
                status=str(item.get("errorStatus", "")),
            )
            for item in (result or {}).get("errors") or []
        ]

    def get(self, registration_id: str) -> dict[str, Any] | None:
        """DPS's enrollment, or ``None`` (404)."""
        try:
            return dict(self._call(self._client.enrollment.get, registration_id))
        except ResourceNotFoundError:
            return None

    def attestation_mechanism(self, registration_id: str) -> dict[str, Any] | None:
        """DPS's attestation for ``registration_id`` with its keys, or ``None`` (404)."""
        try:
            return dict(
                self._call(self._client.enrollment.get_attestation_mechanism, registration_id)
            )
        except ResourceNotFoundError:
            return None

    def query_page(
        self, continuation: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page (up to 1,000) of every individual enrollment and the next continuation."""
        pages = self._client.enrollment.query({"query": "SELECT *"}, top=1000).by_page(
            continuation_token=continuation
        )
        page = self._call(lambda: [dict(item) for item in next(pages)])
        following = getattr(pages, "continuation_token", None)  # azure-core's PageIterator
        return page, str(following) if following else None

    def get_group(self, group_id: str) -> dict[str, Any] | None:
        """DPS's enrollment group, or ``None`` (404)."""
        try:
            return dict(self._call(self._client.enrollment_group.get, group_id))
        except ResourceNotFoundError:
            return None

    def group_attestation_mechanism(self, group_id: str) -> dict[str, Any] | None:
        """DPS's attestation for enrollment group ``group_id`` with its keys, or ``None`` (404)."""
        try:
            return dict(
                self._call(self._client.enrollment_group.get_attestation_mechanism, group_id)
            )
        except ResourceNotFoundError:
            return None

    def create_group(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """Create an enrollment group (DPS answers 409 when it exists: no If-Match is sent)."""
        group_id = str(group["enrollmentGroupId"])
        return dict(
            self._call(
                self._client.enrollment_group.create_or_update,
                id=group_id,
                enrollment_group=dict(group),
            )
        )

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close()

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


def _transport_options(ca_bundle: Path | None, timeout_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "retry_total": 0,  # the push service retries, with its own budget and rate limit
        "connection_timeout": timeout_s,
        "read_timeout": timeout_s,
    }
    if ca_bundle is not None:
        options["connection_verify"] = str(ca_bundle)
    return options


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
