"""The station's error hierarchy.

Every error the station raises on purpose is a :class:`StationError`. It carries:

* ``code``: a stable, dotted, machine-readable identifier (``"store.schema_too_new"``), used by the
  CLI's ``--json`` output, the GUI and the tests;
* ``message``: what happened, in one sentence a technician can read;
* ``remedy``: what to do about it, in plain words (may be empty when there is nothing to do);
* ``details``: structured context (file, key, row, port, ...) for logs and "technical detail".

Adapters translate library exceptions into these classes (``raise ... from exc``) so that the CLI
and the GUI translate exactly one family of errors at their boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class StationError(Exception):
    """Base class of every deliberate station error."""

    code: ClassVar[str] = "station.error"

    def __init__(self, message: str, *, remedy: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy
        self.details: Mapping[str, Any] = dict(details)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly form (code, message, remedy, details)."""
        return {
            "code": self.code,
            "message": self.message,
            "remedy": self.remedy,
            "details": {key: _jsonable(value) for key, value in self.details.items()},
        }


def describe(error: StationError) -> str:
    """One line for a message bar: what happened, then what to do."""
    return error.message + (f" — {error.remedy}" if error.remedy else "")


def error_class(code: str) -> type[StationError] | None:
    """The error class whose stable ``code`` is ``code`` (codes stored in job rows and details)."""
    pending: list[type[StationError]] = [StationError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


# --------------------------------------------------------------------------- configuration
class ConfigError(StationError):
    """The configuration file is missing, unreadable or invalid."""

    code = "config.invalid"


# --------------------------------------------------------------------------- domain rules
class ValidationError(StationError):
    """A value breaks a domain rule (registration ID, manifest field, template)."""

    code = "domain.invalid"


class InvalidRegistrationIdError(ValidationError):
    """A registration ID breaks the DPS rules."""

    code = "domain.invalid_registration_id"


class TransitionError(StationError):
    """A state change that the state machine does not allow."""

    code = "domain.invalid_transition"


class NotFoundError(StationError):
    """A record (device, batch, operator, ...) does not exist."""

    code = "station.not_found"


class DuplicateIdentityError(StationError):
    """A board presents an identity (serial, EK, registration ID, key) that is already recorded."""

    code = "identity.duplicate"


class PermissionDeniedError(StationError):
    """The operator's role does not allow the action."""

    code = "auth.permission_denied"


# --------------------------------------------------------------------------- storage
class StoreError(StationError):
    """The identity store cannot do what was asked."""

    code = "store.error"


class SchemaTooNewError(StoreError):
    """The database was written by a newer station version."""

    code = "store.schema_too_new"


class StoreBusyError(StoreError):
    """Another process held the database lock for longer than the busy timeout."""

    code = "store.busy"


class IntegrityError(StoreError):
    """The audit chain or a cross-reference is inconsistent."""

    code = "store.integrity"


# --------------------------------------------------------------------------- board link
class BoardError(StationError):
    """Something went wrong talking to a board."""

    code = "board.error"


class BoardTimeoutError(BoardError):
    """The board did not answer within the timeout, after every retry."""

    code = "board.timeout"


class BoardDisconnectedError(BoardError):
    """The board's port went away (unplugged, powered off) or cannot be opened."""

    code = "board.disconnected"


class BoardProtocolError(BoardError):
    """The board answered something that is not a valid protocol message, after every retry."""

    code = "board.protocol"


class BoardReportedError(BoardError):
    """The board understood the request and refused it; ``details['status']`` is its code."""

    code = "board.reported"


class BoardNotFoundError(BoardError):
    """No board matches (slot, port or USB location), or more than one does."""

    code = "board.not_found"


class LabBoardError(BoardError):
    """A virtual lab board could not be started or managed."""

    code = "board.lab"


# --------------------------------------------------------------------------- TPM
class TpmError(StationError):
    """The TPM answered with an error or could not be reached."""

    code = "tpm.error"


class TpmUnreachableError(TpmError):
    """The TPM command did not get through the board link (timeout, unplug, refused)."""

    code = "tpm.unreachable"


class TpmMalformedResponseError(TpmError):
    """The TPM (or the board relaying it) sent a response that cannot be decoded."""

    code = "tpm.malformed_response"


class TpmNonsenseError(TpmError):
    """The TPM answered what no working TPM answers, or took longer than any TPM should.

    A loop over its answers that would not end, a read that returns nothing, a size past every
    bound: the read stops there instead of keeping the slot busy.
    """

    code = "tpm.nonsense"


class TpmFailureModeError(TpmError):
    """The TPM is in failure mode (TPM_RC_FAILURE): it cannot be used until repaired."""

    code = "tpm.failure_mode"


class TpmLockoutError(TpmError):
    """The TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT)."""

    code = "tpm.lockout"


class TpmEkAbsentError(TpmError):
    """No EK is persisted at 0x81010001 and the product does not allow creating one."""

    code = "tpm.ek_absent"


class TpmResidencyError(TpmError):
    """The board's TPM could not activate a credential made for the EK it presented."""

    code = "tpm.not_resident"


class EkCertificateRejectedError(TpmError):
    """The EK certificate result is one the product blocks (``details["status"]``)."""

    code = "tpm.ek_certificate_rejected"


# --------------------------------------------------------------------------- CA and keys
class CaError(StationError):
    """The certificate authority refused or failed an operation."""

    code = "ca.error"


class KeyCustodyError(StationError):
    """The HSM, TPM or key file holding a station key cannot be used."""

    code = "hsm.error"


class OwnRootRefusedError(CaError):
    """Bring your own root: the root or the issuing-CA CSR breaks the service's rules.

    ``details["reason"]`` says which (DPS certificate management, Azure Device Registry).
    """

    code = "ca.own_root_refused"


class CsrRejectedError(CaError):
    """A certificate signing request breaks the issuance policy (``details["reason"]`` says how)."""

    code = "ca.csr_rejected"


class QuotaExceededError(CaError):
    """The batch has used its certificate quota (batch size plus the configured spare)."""

    code = "ca.quota_exceeded"


class ProfileError(CaError):
    """A certificate profile is missing or invalid."""

    code = "ca.profile_invalid"


class ChainRejectedError(CaError):
    """An intermediate certificate cannot be used (``details["reason"]`` says why)."""

    code = "ca.chain_rejected"


class CaNotReadyError(CaError):
    """The CA has no key or no imported certificate yet."""

    code = "ca.not_ready"


class KeyPinError(KeyCustodyError):
    """The token refused the PIN, locked it, or no PIN could be obtained."""

    code = "hsm.pin"


class KeyTokenMissingError(KeyCustodyError):
    """No token, TPM or key file matches the key URI."""

    code = "hsm.token_missing"


class KeyTokenRemovedError(KeyCustodyError):
    """The token went away while the station was using it."""

    code = "hsm.token_removed"


class KeyMissingError(KeyCustodyError):
    """The token holds no key matching the key URI."""

    code = "hsm.key_missing"


class KeyExistsError(KeyCustodyError):
    """A new key would duplicate or overwrite an existing one."""

    code = "hsm.key_exists"


# --------------------------------------------------------------------------- cloud
class EnrollmentServiceError(StationError):
    """The DPS enrollment service refused or failed an operation."""

    code = "dps.error"


class DpsThrottledError(EnrollmentServiceError):
    """DPS answered 429; ``details["retry_after_s"]`` says when to try again."""

    code = "dps.throttled"


class DpsTransientError(EnrollmentServiceError):
    """DPS answered 5xx, or the connection failed; the call may be retried."""

    code = "dps.transient"


class DpsCredentialsError(EnrollmentServiceError):
    """No usable DPS credentials (missing file, malformed connection string, 401)."""

    code = "dps.credentials"


class UnresolvedJobsError(TransitionError):
    """A batch cannot be sealed while provisioning jobs are still open (``details["jobs"]``)."""

    code = "batch.unresolved_jobs"


class ExportError(StationError):
    """An export file could not be written."""

    code = "export.write"


class ManifestError(StationError):
    """A signed batch manifest cannot be written or does not verify."""

    code = "manifest.invalid"


# --------------------------------------------------------------------------- provisioning
class ProvisionError(StationError):
    """A provisioning step could not be completed for a reason the station checked itself."""

    code = "provision.error"


class ProofOfPossessionError(ProvisionError):
    """The board's signature over the station nonce does not verify against its certificate."""

    code = "provision.proof_failed"


class OperationalKeyError(ProvisionError):
    """The board cannot make the operational key or CSR that DPS certificate management needs.

    ``details["reason"]``: ``curve_unsupported``, ``bad_signature``, ``key_type`` or
    ``cn_mismatch``.
    """

    code = "provision.operational_key"


class CredentialPolicyUnknownError(ProvisionError):
    """A product names a DPS credential policy the station does not know."""

    code = "provision.credential_policy_unknown"


class ReadbackMismatchError(ProvisionError):
    """An object read back from the board differs from what the station wrote."""

    code = "provision.readback_mismatch"


class WrongProductError(ProvisionError):
    """The board's model or capabilities do not fit the batch's product recipe."""

    code = "provision.wrong_product"


class BoardLockedError(ProvisionError):
    """The board left manufacturing mode and holds no identity this station can resume."""

    code = "provision.board_locked"


class BoardAlreadyPassedError(ProvisionError):
    """The board in the slot is the one that just passed there: it was not swapped yet.

    Not a fault of the board: its identity is recorded and on it. The technician swaps it for
    the next one.
    """

    code = "provision.already_passed"


class BatchFullError(ProvisionError):
    """The batch is not open, or every device of it is provisioned or in progress."""

    code = "provision.batch_full"


class SerialNeededError(ProvisionError):
    """The board reports no serial number and none was scanned for it."""

    code = "provision.serial_needed"


class SerialMismatchError(ProvisionError):
    """The serial scanned for a board differs from the one the board reports."""

    code = "provision.serial_mismatch"


class PromptDeclinedError(ProvisionError):
    """Nobody answered an operator prompt (no terminal, input closed, board pulled out)."""

    code = "provision.prompt_declined"


class ProvisionInternalError(ProvisionError):
    """Something unexpected failed inside the station (a bug); the message names it."""

    code = "provision.internal"


class ProvisionCancelledError(ProvisionError):
    """The operator stopped the slot; the job stays open and resumes on the next run."""

    code = "provision.cancelled"


# --------------------------------------------------------------------------- labels
class LabelError(StationError):
    """A label could not be laid out, printed, reprinted or verified."""

    code = "label.error"


class LabelTemplateError(LabelError):
    """A label template is malformed or cannot hold the data it is bound to."""

    code = "label.template"


class LabelAlreadyPrintedError(LabelError):
    """A device already has a printed label; another copy is a reprint (QA, with a reason)."""

    code = "label.already_printed"


class ReprintReasonMissingError(LabelError):
    """A reprint was asked for without a reason."""

    code = "label.reprint_reason_missing"


class ScanMismatchError(LabelError):
    """A scanned label does not belong to the expected device (or to any recorded device)."""

    code = "label.scan_mismatch"


class PrinterError(LabelError):
    """The printer refused or failed a job; nothing was counted as printed."""

    code = "printer.error"


class PrinterOfflineError(PrinterError):
    """The printer cannot be reached or is not accepting jobs."""

    code = "printer.offline"


class PrinterOutOfMediaError(PrinterError):
    """The printer reports that it is out of labels (or paper)."""

    code = "printer.out_of_media"


class UnknownPrinterError(PrinterError):
    """No printer by that name exists."""

    code = "printer.unknown"


# --------------------------------------------------------------------------- lab
class LabDpsError(StationError):
    """The local DPS stand-in cannot start or was given bad options."""

    code = "lab.dps"


class DeviceRegistrationError(LabDpsError):
    """DPS refused a device's registration, or the device could not complete it (lab firmware)."""

    code = "lab.dps.registration"


class OutputRefusedError(StationError):
    """An output would overwrite a file the station owns, or an existing file without --force."""

    code = "output.refused"
