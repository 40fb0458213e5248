"""The api-versions the stand-in serves, and which define the certificate-management fields.

Sources: Azure/azure-rest-api-specs,
``specification/deviceprovisioningservices/data-plane/DeviceProvisioningServices`` (the table in
docs/lab-dps.md, "api-versions").

DPS behaves by api-version: a field a version does not define is unknown under it, and DPS
drops unknown fields. So ``credentialPolicyName`` written under 2021-10-01 is not stored, and an
enrollment read under 2021-10-01 does not show it; a register body's ``csr`` under 2019-03-31 or
2021-10-01 is ignored.
"""

from __future__ import annotations

from typing import Final

#: The last stable api-version before certificate management (what the SDKs of 2023 send).
SERVICE_API_VERSION: Final = "2021-10-01"
#: The preview that introduced certificate management (device ``csr``, ``credentialPolicyName``).
PREVIEW_API_VERSION: Final = "2025-07-01-preview"
#: The first stable api-version with certificate management and ``credentialPolicyName``. The
#: later 2026-07-01-preview and 2026-11-01 name the policy differently and are not served.
STABLE_API_VERSION: Final = "2026-04-01"
#: Service api-versions whose enrollments and groups define ``credentialPolicyName``.
CREDENTIAL_POLICY_API_VERSIONS: Final = frozenset({PREVIEW_API_VERSION, STABLE_API_VERSION})
#: Device api-versions under which a register body's ``csr`` counts.
CSR_API_VERSIONS: Final = frozenset({PREVIEW_API_VERSION, STABLE_API_VERSION})
#: Every api-version served (``DpsOptions.api_versions``); any other gets 400.
DEFAULT_API_VERSIONS: Final = (
    "2018-04-01",
    "2019-03-31",
    SERVICE_API_VERSION,
    PREVIEW_API_VERSION,
    STABLE_API_VERSION,
)
