"""The DPS push outbox and what push and reconcile report (values only, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from station.domain.enrollments import CREDENTIAL_POLICY_FIELD


class PushState(StrEnum):
    """One device's way into DPS."""

    PENDING = "pending"  # not sent yet (or sent and the answer lost: resent, 409 resolves it)
    SENDING = "sending"  # in a bulk call whose answer has not been recorded yet
    PUSHED = "pushed"  # DPS holds exactly our enrollment
    CONFLICT = "conflict"  # DPS holds a different enrollment under this ID: a human decides
    FAILED = "failed"  # DPS refused the item (reason in last_error); retried by the next push


#: States a push run picks up again.
RETRYABLE = (PushState.SENDING, PushState.PENDING, PushState.FAILED)


@dataclass(frozen=True)
class OutboxEntry:
    """One row of the outbox."""

    batch: str
    registration_id: str
    state: PushState
    attempts: int = 0
    last_error: str = ""
    remote: str = ""  # DPS's version (comparable JSON) when in conflict
    id: int | None = None


@dataclass(frozen=True)
class BulkItemError:
    """One item DPS refused inside a bulk call answered 200."""

    registration_id: str
    code: int
    status: str


@dataclass(frozen=True)
class Conflict:
    """An enrollment DPS already holds with different content."""

    registration_id: str
    ours: Mapping[str, Any]
    theirs: Mapping[str, Any]

    def differences(self) -> list[str]:
        """The top-level fields that differ."""
        keys = sorted(set(self.ours) | set(self.theirs))
        return [key for key in keys if self.ours.get(key) != self.theirs.get(key)]


@dataclass(frozen=True)
class PushSummary:
    """The outcome of ``station batch push``."""

    batch: str
    total: int
    pushed: int
    conflicts: tuple[Conflict, ...]
    failed: dict[str, str]
    billable_operations: int
    calls: int
    throttled: int
    retried: int

    @property
    def complete(self) -> bool:
        """Every device is in DPS, as recorded."""
        return self.pushed == self.total


class ReconcileStatus(StrEnum):
    """One device compared with DPS."""

    EQUAL = "equal"
    MISSING = "missing"
    DIFFERENT = "different"
    EXTRA = "extra"  # in DPS, tagged with this batch, not recorded by the station


class ReconcileSubject(StrEnum):
    """What a line of a reconciliation is about."""

    ENROLLMENT = "enrollment"  # a device's individual enrollment (the ID is its registration ID)
    GROUP = "group"  # the product's enrollment group (checked when it names a credential policy)


@dataclass(frozen=True)
class ReconcileItem:
    """One line of a reconciliation."""

    registration_id: str  # the enrollment group's ID for a GROUP line
    status: ReconcileStatus
    differences: tuple[str, ...] = ()
    subject: ReconcileSubject = ReconcileSubject.ENROLLMENT


@dataclass(frozen=True)
class ReconcileReport:
    """The outcome of ``station batch reconcile``."""

    batch: str
    items: tuple[ReconcileItem, ...]
    repushed: int = 0
    billable_operations: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    credential_policy: str = ""  # the DPS credential policy the batch's product requires

    @property
    def clean(self) -> bool:
        """Every recorded device is in DPS, equal, and nothing else claims the batch."""
        return all(item.status is ReconcileStatus.EQUAL for item in self.items)

    @property
    def without_policy(self) -> tuple[str, ...]:
        """The enrollments (registration IDs) and groups (IDs) in DPS without the product's policy.

        ``credentialPolicyName`` written under an api-version that does not define it may be
        dropped (an older client's enrollments), and such a device registers without ever
        getting an operational certificate.
        """
        return tuple(
            item.registration_id
            for item in self.items
            if item.status is ReconcileStatus.DIFFERENT
            and CREDENTIAL_POLICY_FIELD in item.differences
        )

    @property
    def policy_advice(self) -> str:
        """What the cloud operator should do about :attr:`without_policy` ("" when nothing)."""
        count = len(self.without_policy)
        if not count:
            return ""
        policy = self.credential_policy or "the product's credential policy"
        return (
            f"{count} enrollment(s) or enrollment group(s) in DPS do not carry the credential "
            f"policy {policy}: their devices would register but never get an operational "
            "certificate. Delete them in DPS, then re-push the missing enrollments and push the "
            "product's enrollment groups again (the station writes them with the policy), or set "
            "the policy on each of them in DPS."
        )
