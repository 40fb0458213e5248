"""DPS-shaped HTTP errors of the stand-in.

Every refusal the stand-in sends is an :class:`ApiError`: an HTTP status plus the DPS ``errorCode``
(HTTP status x 1000 + detail, dps-api.md §4) and a one-sentence message. The server turns it into
the body ``{errorCode, trackingId, message, timestampUtc}`` and the ``x-ms-error-code`` header.

Codes seen in real DPS traffic are used as they are (400004, 401002, 404201, 409201, 409202). Where
no source pins the detail number down, the stand-in picks one and lists it in docs/lab-dps.md.
"""

from __future__ import annotations

from typing import Final

# Codes confirmed by real traffic (dps-api.md §4).
INVALID_ENDORSEMENT_KEY: Final = 400004
UNAUTHORIZED: Final = 401002
ENROLLMENT_NOT_FOUND: Final = 404201
GROUP_NOT_FOUND: Final = 404202
ENROLLMENT_EXISTS: Final = 409201
GROUP_EXISTS: Final = 409202

# Codes the stand-in chose (documented in docs/lab-dps.md).
MALFORMED_BODY: Final = 400001
INVALID_FIELD: Final = 400002
BAD_API_VERSION: Final = 400003
TOO_MANY_BULK_ITEMS: Final = 400005
INVALID_CERTIFICATE: Final = 400006
INVALID_SYMMETRIC_KEY: Final = 400007
INVALID_QUERY: Final = 400008
INVALID_REGISTRATION_ID: Final = 400009
INVALID_DEVICE_REQUEST: Final = 400010
# Certificate management (api-version 2025-07-01-preview): the service's codes are not published.
CSR_MALFORMED: Final = 400011
CSR_SIGNATURE: Final = 400012
CSR_SUBJECT: Final = 400013
CSR_KEY: Final = 400014
CSR_NOT_ALLOWED: Final = 400015  # a csr for an enrollment that names no credential policy
FORBIDDEN_QUOTA: Final = 403002
ROUTE_NOT_FOUND: Final = 404001
REGISTRATION_NOT_FOUND: Final = 404203
OPERATION_NOT_FOUND: Final = 404204
UNKNOWN_ID_SCOPE: Final = 404205
METHOD_NOT_ALLOWED: Final = 405001
REQUEST_TIMEOUT: Final = 408001
PRECONDITION_FAILED: Final = 412001
MESSAGE_TOO_LARGE: Final = 413001
UNSUPPORTED_MEDIA_TYPE: Final = 415001
THROTTLED: Final = 429001
INTERNAL: Final = 500001
# Reported in a failed registration's registrationState (not as an HTTP status).
ENROLLMENT_DISABLED: Final = 401003
CUSTOM_ALLOCATION_FAILED: Final = 500002
CREDENTIAL_POLICY_UNAVAILABLE: Final = 400016  # the policy was revoked or deleted


class ApiError(Exception):
    """A request the stand-in refuses, answered with a DPS error body.

    Args:
        error_code: the DPS ``errorCode``; the HTTP status is its first three digits.
        message: one sentence saying what was wrong with the request.
        headers: extra response headers (``Retry-After`` on 429).
    """

    def __init__(
        self, error_code: int, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        """The HTTP status that goes with :attr:`error_code`."""
        return self.error_code // 1000
