"""The actions that need a role. Who holds which is the services' table (station/services/authz.py).

The enum is a domain value so that the window can name the action it enables a button for; it
asks the operator service which roles hold it (``OperatorService.permissions_of``).
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    """An action that needs a role; the value is how messages and the admin guide name it."""

    PROVISION = "provision boards"
    VOID_JOB = "void a provisioning job"
    REWORK = "rework a board"
    PRINT_LABEL = "print a label"
    VERIFY_LABEL = "verify a scanned label"
    REPRINT_LABEL = "reprint a label"
    OPEN_BATCH = "open a batch"
    SEAL_BATCH = "seal a batch"
    EXPORT_BATCH = "export a batch"
    PUSH_GROUPS = "push enrollment groups"
    PUSH_BATCH = "push a batch"
    RECONCILE_BATCH = "reconcile a batch"
    READ_DPS_GROUP_KEY = "read a group key from DPS"
    CA_INIT = "generate the CA key"
    CA_IMPORT = "import the CA chain"
    CA_LAB_ROOT = "sign the CA with a lab root"
    IMPORT_GROUP_KEY = "import a group key"
    ISSUE_CERTIFICATE = "issue a certificate by hand (station ca issue)"
    CERTIFY_MANIFEST_KEY = "certify the manifest signing key"
    SIGN_ISSUING_CSR = "sign an issuing-CA CSR"
    SIGN_VERIFICATION = "sign a verification certificate"
    TRUST_EK_ISSUERS = "import TPM trust anchors"
    MANAGE_OPERATORS = "manage operators"
    SET_FLEET_QUOTA = "set a fleet quota"
