"""Provisioning steps, the events a slot reports while it runs them, and technician wording.

Pure values: the provisioning service emits these events, the CLI prints them as one live line
per slot and the GUI turns them into colours. Every failure carries a reason and a remedy a line
technician can act on, with the technical detail (error code and message) alongside.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from station.domain.errors import (
    BatchFullError,
    BoardAlreadyPassedError,
    BoardDisconnectedError,
    BoardError,
    BoardLockedError,
    BoardProtocolError,
    BoardReportedError,
    BoardTimeoutError,
    CsrRejectedError,
    DuplicateIdentityError,
    EkCertificateRejectedError,
    PermissionDeniedError,
    ProofOfPossessionError,
    ProvisionCancelledError,
    QuotaExceededError,
    ReadbackMismatchError,
    SerialMismatchError,
    SerialNeededError,
    StationError,
    TpmResidencyError,
    WrongProductError,
    error_class,
)
from station.domain.products import ProductAttestation


class Step(StrEnum):
    """One step of the provisioning machine (persisted in the job row as its ``step``)."""

    CONNECT = "connect"
    DUPLICATES = "duplicate-check"
    TPM_EK = "tpm-ek"
    TPM_EK_CERT = "tpm-ek-certificate"
    TPM_RESIDENCY = "tpm-residency"
    TPM_SRK = "tpm-srk"
    KEYGEN = "keygen"
    CSR = "csr"
    ISSUE = "issue"
    WRITE_KEY = "write-key"
    WRITE_CHAIN = "write-chain"
    PROOF = "proof-of-possession"
    WRITE_SYMKEY = "write-symkey"
    OPERATIONAL_KEY = "operational-key"
    WRITE_DPS = "write-dps"
    LOCK = "lock"
    RECORD = "record"
    LABEL = "label"


_ATTESTATION_STEPS: dict[ProductAttestation, tuple[Step, ...]] = {
    ProductAttestation.TPM: (Step.TPM_EK, Step.TPM_EK_CERT, Step.TPM_SRK, Step.TPM_RESIDENCY),
    ProductAttestation.X509: (Step.KEYGEN, Step.CSR, Step.ISSUE, Step.WRITE_CHAIN, Step.PROOF),
    ProductAttestation.X509_INJECTED: (
        Step.CSR,
        Step.ISSUE,
        Step.WRITE_KEY,
        Step.WRITE_CHAIN,
        Step.PROOF,
    ),
    ProductAttestation.SYMMETRIC_KEY: (Step.WRITE_SYMKEY,),
}


#: Every board starts with these: the board answers, then the duplicate checks (or the resume).
ADMISSION_STEPS = (Step.CONNECT, Step.DUPLICATES)


def flow_steps(
    attestation: ProductAttestation, *, lock: bool, operational: bool = False
) -> tuple[Step, ...]:
    """The steps of one attestation flow, between admission and recording, in order.

    The attestation's own steps (the onboarding credential) first, then the operational key
    when DPS issues the product's operational certificates, then the DPS connection info and
    the lock (only if the recipe says so): every check happens before the board is locked.
    """
    middle = (Step.OPERATIONAL_KEY,) if operational else ()
    tail = (Step.WRITE_DPS, Step.LOCK) if lock else (Step.WRITE_DPS,)
    return (*_ATTESTATION_STEPS[attestation], *middle, *tail)


def steps_for(
    attestation: ProductAttestation, *, lock: bool, operational: bool = False
) -> tuple[Step, ...]:
    """The steps a board of a product with ``attestation`` goes through, in order.

    Connect and the duplicate checks come first (:data:`ADMISSION_STEPS`), then the flow's own
    steps (:func:`flow_steps`), and recording the manifest last.
    """
    flow = flow_steps(attestation, lock=lock, operational=operational)
    return (*ADMISSION_STEPS, *flow, Step.RECORD)


@dataclass(frozen=True)
class StepStarted:
    """A step began (its start is already persisted)."""

    slot: str
    step: Step
    job_id: int | None = None


@dataclass(frozen=True)
class StepPassed:
    """A step finished well; ``detail`` is a short note ("EK 3f2a...", "kept: already on board")."""

    slot: str
    step: Step
    detail: str = ""
    job_id: int | None = None


@dataclass(frozen=True)
class StepFailed:
    """A step failed: ``reason`` and ``remedy`` for the technician, ``detail`` for engineers."""

    slot: str
    step: Step
    reason: str
    remedy: str
    code: str
    detail: str = ""
    job_id: int | None = None


@dataclass(frozen=True)
class Resumed:
    """An interrupted job of this board was picked up again; ``detail`` says what was kept."""

    slot: str
    job_id: int
    from_step: str
    detail: str = ""


@dataclass(frozen=True)
class Passed:
    """The board is provisioned: its identity is recorded."""

    slot: str
    registration_id: str
    serial: str
    batch: str
    job_id: int | None = None


class Disposition(StrEnum):
    """Where a board that failed goes next (from the error's type: :func:`disposition_of`)."""

    RETRY = "retry"  # the technician fixes it at the bench (reseat, cable, batch) and starts again
    QA = "qa"  # set aside for QA: a clone, a locked or lying board, a refused request
    OTHER_BOARD = "other-board"  # not the board the slot expected (scanned or armed serial)
    SWAP = "swap"  # the board already passed in this slot and was not swapped: swap it


#: Failures a technician cannot fix at the bench: the board goes to QA.
_FOR_QA: tuple[type[StationError], ...] = (
    DuplicateIdentityError,
    BoardLockedError,
    ProofOfPossessionError,
    CsrRejectedError,
    BoardReportedError,
)


def disposition_of(kind: type[StationError]) -> Disposition:
    """Where a board goes after a failure of type ``kind`` (:func:`failure_kind`), never by code."""
    if issubclass(kind, _FOR_QA):
        return Disposition.QA
    if issubclass(kind, SerialMismatchError):
        return Disposition.OTHER_BOARD
    if issubclass(kind, BoardAlreadyPassedError):
        return Disposition.SWAP
    return Disposition.RETRY


@dataclass(frozen=True)
class Failed:
    """The board was not provisioned; the job stays open (resume) unless it never started.

    ``disposition`` says where the board goes next (bench, QA, or it was not the expected board).
    """

    slot: str
    step: Step
    reason: str
    remedy: str
    code: str
    detail: str = ""
    serial: str = ""
    job_id: int | None = None
    disposition: Disposition = Disposition.RETRY


ProvisionEvent = StepStarted | StepPassed | StepFailed | Resumed | Passed | Failed


@dataclass(frozen=True)
class Explanation:
    """What failed and what to do, in a technician's words."""

    reason: str
    remedy: str


_REMEDIES: dict[type[StationError], str] = {
    BoardDisconnectedError: "Reseat the board (or its cable) in the same slot: the station "
    "resumes where it stopped.",
    BoardTimeoutError: "Reseat the board; if it happens again, swap the cable, then set the "
    "board aside for QA.",
    BoardProtocolError: "Swap the cable; if it happens again, set the board aside for QA "
    "(firmware or line noise).",
    BoardReportedError: "Set the board aside for QA with this message.",
    DuplicateIdentityError: "Set the board aside for QA: it is a re-run, a rework or a clone.",
    EkCertificateRejectedError: "Set the board aside for QA: its TPM cannot be trusted as "
    "delivered.",
    TpmResidencyError: "Set the board aside for QA as suspect: its TPM does not hold the "
    "endorsement key it reports.",
    PermissionDeniedError: "Log in as an operator allowed to do this.",
    QuotaExceededError: "Stop the line and call QA: the batch used all its certificates.",
    CsrRejectedError: "Set the board aside for QA: its secure element answered an invalid request.",
    ProofOfPossessionError: "Set the board aside for QA: it does not hold the key of its "
    "certificate.",
    ReadbackMismatchError: "Reseat the board and try again; if it happens again, set "
    "it aside for QA.",
    WrongProductError: "Check that the board belongs to this batch's product.",
    BoardLockedError: "Set the board aside for QA: it left manufacturing mode and "
    "cannot be provisioned here.",
    BoardAlreadyPassedError: "Swap it for the next board, then press Next board.",
    BatchFullError: "Ask QA to open the next batch.",
    ProvisionCancelledError: "Start the slot again to resume this board.",
    SerialNeededError: "Scan the serial number printed on the board when the slot asks for "
    "it (start the slot again).",
    SerialMismatchError: "Scan the serial printed on the board in this slot (or start "
    "the slot again without a scan if the board reports its own serial).",
}

#: Errors whose own message is the reason a technician reads (it names the board or batch).
_OWN_WORDS: tuple[type[StationError], ...] = (
    DuplicateIdentityError,
    BoardAlreadyPassedError,
    BoardLockedError,
    WrongProductError,
    SerialNeededError,
    SerialMismatchError,
)

#: Failures that interrupt a run (its job stays resumable) rather than fail it.
INTERRUPTIONS: tuple[type[StationError], ...] = (
    BoardDisconnectedError,
    BoardTimeoutError,
    ProvisionCancelledError,
)

_WHAT_BY_STEP: dict[Step, str] = {
    Step.CONNECT: "the board did not identify itself",
    Step.DUPLICATES: "the board is already known to the station",
    Step.TPM_EK: "the TPM endorsement key could not be read",
    Step.TPM_EK_CERT: "the TPM endorsement-key certificate was refused",
    Step.TPM_RESIDENCY: "the TPM could not prove it holds its endorsement key",
    Step.TPM_SRK: "the TPM storage root key could not be made",
    Step.KEYGEN: "the board could not generate its key",
    Step.CSR: "the board's certificate request failed",
    Step.ISSUE: "the station could not issue the certificate",
    Step.WRITE_KEY: "the device key could not be written to the board",
    Step.WRITE_CHAIN: "the certificate could not be written to the board",
    Step.PROOF: "the board could not prove it holds its key",
    Step.WRITE_SYMKEY: "the symmetric key could not be written to the board",
    Step.OPERATIONAL_KEY: "the board's operational key for DPS certificates was refused",
    Step.WRITE_DPS: "the DPS connection info could not be written to the board",
    Step.LOCK: "the board could not be locked",
    Step.RECORD: "the identity could not be recorded",
    Step.LABEL: "the label could not be printed",
}


def failure_kind(error: StationError) -> type[StationError]:
    """The type a failure is judged by: the error's own, or the board error under a TPM error.

    A TPM command lost on the board link is an unplug or a timeout underneath; the TPM reader
    names that board error in ``details["cause"]``.
    """
    underlying = error_class(str(error.details.get("cause", "")))
    if underlying is not None and issubclass(underlying, BoardError):
        return underlying
    return type(error)


def explain(step: Step, error: StationError) -> Explanation:
    """Turn ``error`` at ``step`` into a reason and a remedy for the technician.

    Errors are matched by type (:func:`failure_kind`). The error's own remedy wins for errors
    that know better (duplicates name the batch and date in their message; custody errors name
    the token).
    """
    kind = failure_kind(error)
    what = _WHAT_BY_STEP[step]
    message = error.message
    if issubclass(kind, BoardDisconnectedError):
        reason = f"The board was unplugged or lost power during {step}."
    elif issubclass(kind, _OWN_WORDS):
        reason = message[:1].upper() + message[1:] + "."
    else:
        reason = f"{what[:1].upper()}{what[1:]} ({message})."
    known = next((_REMEDIES[cls] for cls in kind.__mro__ if cls in _REMEDIES), "")
    advice = known or error.remedy or "Set the board aside for QA with this message."
    if issubclass(kind, DuplicateIdentityError | SerialNeededError) and error.remedy:
        advice = error.remedy
    return Explanation(reason=reason, remedy=advice)
