"""Provisioning states and the transitions between them.

Two state machines matter to the store:

* :class:`JobState`: one provisioning attempt on one slot. It is persisted before each side effect
  so that a crash can be resumed or voided.
* :class:`DeviceStatus`: the life of a recorded identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from station.domain.errors import TransitionError


class JobState(StrEnum):
    """One provisioning attempt."""

    CREATED = "created"
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # crash, unplug or cancel mid-step: resume or void
    FAILED = "failed"  # a step failed with a reason; retry or void
    PASSED = "passed"
    VOIDED = "voided"

    @property
    def is_final(self) -> bool:
        """Whether no further transition is possible."""
        return self in _FINAL_JOB


class DeviceStatus(StrEnum):
    """A recorded identity."""

    PROVISIONING = "provisioning"  # identity reserved, steps still running
    PROVISIONED = "provisioned"
    VOIDED = "voided"  # superseded by rework or abandoned; kept for the record


_FINAL_JOB = frozenset({JobState.PASSED, JobState.VOIDED})

_JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.CREATED: frozenset({JobState.RUNNING, JobState.VOIDED}),
    JobState.RUNNING: frozenset(
        {JobState.RUNNING, JobState.INTERRUPTED, JobState.FAILED, JobState.PASSED}
    ),
    JobState.INTERRUPTED: frozenset({JobState.RUNNING, JobState.VOIDED}),
    JobState.FAILED: frozenset({JobState.RUNNING, JobState.VOIDED}),
    JobState.PASSED: frozenset(),
    JobState.VOIDED: frozenset(),
}

_DEVICE_TRANSITIONS: dict[DeviceStatus, frozenset[DeviceStatus]] = {
    DeviceStatus.PROVISIONING: frozenset({DeviceStatus.PROVISIONED, DeviceStatus.VOIDED}),
    DeviceStatus.PROVISIONED: frozenset({DeviceStatus.VOIDED}),
    DeviceStatus.VOIDED: frozenset(),
}


def check_job_transition(current: JobState, target: JobState) -> JobState:
    """Return ``target`` if a job may move there from ``current``.

    ``RUNNING -> RUNNING`` is allowed: it records progress to the next step.

    Raises:
        TransitionError: the move is not allowed.
    """
    return _check("job", _JOB_TRANSITIONS, current, target)


def check_device_transition(current: DeviceStatus, target: DeviceStatus) -> DeviceStatus:
    """Return ``target`` if a device may move there from ``current``.

    Raises:
        TransitionError: the move is not allowed.
    """
    return _check("device", _DEVICE_TRANSITIONS, current, target)


class BatchStatus(StrEnum):
    """A batch (work order) from opening to reconciliation with DPS."""

    OPEN = "open"  # devices are being provisioned into it
    SEALED = "sealed"  # no more devices; manifest frozen and hashed
    EXPORTED = "exported"  # handed to the cloud operator as files
    PUSHED = "pushed"  # every enrollment is in DPS
    RECONCILED = "reconciled"  # DPS checked against the records


_BATCH_TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    BatchStatus.OPEN: frozenset({BatchStatus.SEALED}),
    BatchStatus.SEALED: frozenset({BatchStatus.EXPORTED, BatchStatus.PUSHED}),
    BatchStatus.EXPORTED: frozenset({BatchStatus.EXPORTED, BatchStatus.PUSHED}),
    BatchStatus.PUSHED: frozenset({BatchStatus.RECONCILED, BatchStatus.EXPORTED}),
    BatchStatus.RECONCILED: frozenset({BatchStatus.PUSHED, BatchStatus.RECONCILED}),
}


def check_batch_transition(current: BatchStatus, target: BatchStatus) -> BatchStatus:
    """Return ``target`` if a batch may move there from ``current``.

    Raises:
        TransitionError: the move is not allowed (e.g. reopening a sealed batch).
    """
    return _check("batch", _BATCH_TRANSITIONS, current, target)


_S = TypeVar("_S", bound=StrEnum)


def _check(kind: str, table: Mapping[_S, frozenset[_S]], current: _S, target: _S) -> _S:
    if target not in table[current]:
        raise TransitionError(
            f"a {kind} cannot go from {current} to {target}",
            kind=kind,
            current=str(current),
            target=str(target),
        )
    return target
