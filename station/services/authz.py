"""Role gates: who may issue, reprint, void, push or administer.

:data:`PERMISSIONS` is the one table of who may do what; every acting service method asks it
through :func:`require` before it touches anything. docs/admin-guide.md shows the same table
(tests/integration/services/test_permissions.py keeps the two equal, and checks every service method
that takes ``operator=`` against it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from station.domain.errors import PermissionDeniedError

# Permission lives in the domain so that the window can name one (it may not import this
# module); the services keep naming it from here.
from station.domain.permissions import Permission as Permission
from station.domain.records import OperatorRecord, Role
from station.ports import UnitOfWork

EVERYONE = frozenset(Role)
QA_OR_ADMIN = frozenset({Role.QA, Role.ADMIN})
ADMIN_ONLY = frozenset({Role.ADMIN})

#: Who may do what. A new acting service method adds its row here (and to the admin guide).
PERMISSIONS: Mapping[Permission, frozenset[Role]] = MappingProxyType(
    {
        Permission.PROVISION: EVERYONE,
        Permission.VOID_JOB: EVERYONE,
        Permission.REWORK: QA_OR_ADMIN,
        Permission.PRINT_LABEL: EVERYONE,
        Permission.VERIFY_LABEL: EVERYONE,
        Permission.REPRINT_LABEL: QA_OR_ADMIN,
        Permission.OPEN_BATCH: QA_OR_ADMIN,
        Permission.SEAL_BATCH: QA_OR_ADMIN,
        Permission.EXPORT_BATCH: QA_OR_ADMIN,
        Permission.PUSH_GROUPS: QA_OR_ADMIN,
        Permission.PUSH_BATCH: QA_OR_ADMIN,
        Permission.RECONCILE_BATCH: QA_OR_ADMIN,
        Permission.READ_DPS_GROUP_KEY: ADMIN_ONLY,
        Permission.CA_INIT: ADMIN_ONLY,
        Permission.CA_IMPORT: ADMIN_ONLY,
        Permission.CA_LAB_ROOT: ADMIN_ONLY,
        Permission.IMPORT_GROUP_KEY: ADMIN_ONLY,
        Permission.ISSUE_CERTIFICATE: ADMIN_ONLY,
        Permission.CERTIFY_MANIFEST_KEY: ADMIN_ONLY,
        Permission.SIGN_ISSUING_CSR: ADMIN_ONLY,
        Permission.SIGN_VERIFICATION: ADMIN_ONLY,
        Permission.TRUST_EK_ISSUERS: ADMIN_ONLY,
        Permission.MANAGE_OPERATORS: ADMIN_ONLY,
        Permission.SET_FLEET_QUOTA: ADMIN_ONLY,
    }
)


def roles_for(permission: Permission) -> frozenset[Role]:
    """The roles that hold ``permission``."""
    return PERMISSIONS[permission]


def permissions_of(role: Role) -> frozenset[Permission]:
    """Everything ``role`` may do, by the same table."""
    return frozenset(p for p, roles in PERMISSIONS.items() if role in roles)


def require(
    store: UnitOfWork, operator: str, permission: Permission, *, action: str = ""
) -> OperatorRecord:
    """Return the operator if they may do ``permission`` (see :func:`require_role`).

    Args:
        store: where operators are recorded.
        operator: who acts.
        permission: what they are about to do.
        action: a more precise wording for the message ("set PINs"); default: the permission's.

    Raises:
        PermissionDeniedError: unknown, disabled or insufficient role.
    """
    return require_role(store, operator, PERMISSIONS[permission], action=action or permission)


def require_role(
    store: UnitOfWork, operator: str, allowed: Iterable[Role], *, action: str
) -> OperatorRecord:
    """Return the operator if they exist, are enabled and hold one of ``allowed`` roles.

    Services ask :func:`require` (the :data:`PERMISSIONS` table) instead; this is its check.

    Args:
        store: where operators are recorded.
        operator: the operator's name (from login, ``--operator`` or ``$STATION_OPERATOR``).
        allowed: roles that may perform ``action``.
        action: what is being attempted, for the message ("reprint a label").

    Raises:
        PermissionDeniedError: unknown, disabled or insufficient role.
    """
    roles = frozenset(allowed)
    names = " or ".join(sorted(str(role) for role in roles))
    if not operator:
        raise PermissionDeniedError(
            f"nobody is logged in; to {action} you must be {names}",
            remedy="Log in (or pass --operator NAME) as an operator with that role.",
            action=action,
        )
    record = store.operators.get(operator)
    if record is None:
        raise PermissionDeniedError(
            f"unknown operator {operator!r}",
            remedy="Ask the station admin to add you with 'station operator add'.",
            operator=operator,
            action=action,
        )
    if not record.enabled:
        raise PermissionDeniedError(
            f"operator {operator!r} is disabled",
            remedy="Ask the station admin to re-enable your account.",
            operator=operator,
            action=action,
        )
    if record.role not in roles:
        raise PermissionDeniedError(
            f"{operator} is {record.role}; to {action} you must be {names}",
            remedy=f"Ask someone with the {names} role.",
            operator=operator,
            role=str(record.role),
            action=action,
        )
    return record
