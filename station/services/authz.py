"""Role gates: who may issue, reprint, void or push."""

from __future__ import annotations

from collections.abc import Iterable

from station.domain.errors import PermissionDeniedError
from station.domain.records import OperatorRecord, Role
from station.ports import UnitOfWork


def require_role(
    store: UnitOfWork, operator: str, allowed: Iterable[Role], *, action: str
) -> OperatorRecord:
    """Return the operator if they exist, are enabled and hold one of ``allowed`` roles.

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
