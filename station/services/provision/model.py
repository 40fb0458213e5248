"""The values of one provisioning run: the request, how it ended, and what its steps share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from station.domain.manifest import OperationalCertificate, SymmetricKeyIdentity, TpmIdentity
from station.domain.provision_events import ProvisionEvent, Step
from station.domain.records import CertificateRecord, JobRecord
from station.ports import BoardLink, OperatorPrompt


class Cancellation(Protocol):
    """Anything with ``is_set()`` (a :class:`threading.Event`): set it to stop between steps."""

    def is_set(self) -> bool:
        """Whether the slot was asked to stop."""
        ...


@dataclass(frozen=True)
class ProvisionRequest:
    """What to do with the board on one slot.

    Args:
        slot: the slot name (or the port, for one-off runs).
        batch: the open batch the board goes into.
        operator: who provisions it (checked for the role; named in the job and the audit).
        rework_reason: QA only: void the board's recorded identity with this reason and
            provision it anew (instead of stopping with "already provisioned").
        serial: the serial scanned from the board's sticker, for boards that report none
            (checked against the board's own serial when it reports one).
        passed_serial: the board that last passed in this slot and, as far as the line can
            tell, was not swapped out (no hot-plug): that board started again is told to be
            swapped instead of going to the duplicate check.
    """

    slot: str
    batch: str
    operator: str
    rework_reason: str = ""
    serial: str = ""
    passed_serial: str = ""


@dataclass(frozen=True)
class ProvisionOutcome:
    """How a run ended."""

    passed: bool
    slot: str
    serial: str = ""
    registration_id: str = ""
    job_id: int | None = None
    step: Step = Step.CONNECT
    reason: str = ""
    remedy: str = ""
    code: str = ""
    detail: str = ""


@dataclass
class Run:
    """What every step of one run may change: where it is, its job row, the identity it forms.

    Lives only while the worker drives the board; the flow's own findings live in its typed
    state, not here.
    """

    link: BoardLink
    request: ProvisionRequest
    emit: Callable[[ProvisionEvent], None]
    step: Step = Step.CONNECT
    job: JobRecord | None = None  # none until the duplicate check creates or resumes one
    serial: str = ""
    registration_id: str = ""
    kept: CertificateRecord | None = None  # a certificate of this job found on the board
    resumed: bool = False  # an open job of this board was picked up (it may be locked already)
    operational: OperationalCertificate | None = None  # the board can renew (operational-key)
    prompt: OperatorPrompt | None = None  # who answers questions (none: a run nobody attends)


@dataclass(frozen=True)
class Evidence:
    """What a flow hands to the record step: the identity parts it established."""

    tpm: TpmIdentity | None = None
    certificate: CertificateRecord | None = None
    spki_sha256: str = ""  # the device key's index entry (X.509 flows)
    symmetric: SymmetricKeyIdentity | None = None
