"""Provisioning: the per-slot step machine that turns a plugged board into a recorded identity.

``ProvisionService.run(link, request, emit=...)`` drives one board through the steps of its
product (:func:`station.domain.provision_events.steps_for`), synchronously, on the calling thread
(one worker thread per slot). It emits frozen events for the CLI and the GUI, and it is
cancellable between steps.

Crash safety: every step's start is persisted in the job row before its side effect, and its
outcome after (:mod:`station.services.provision_jobs`). When a board comes back (replug, restart
after ``kill -9``), its open job is found by serial number and resumed: a certificate issued by the
job that is on the board (its chain's leaf) is kept and the flow continues from the proof of
possession; one that never reached the board is voided and the board is provisioned anew. Board
writes are idempotent (objects are replaced; the DPS info and the symmetric key are read back
first), so redoing a step is always safe.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import cbor2

from station.domain.audit import format_time
from station.domain.boards import printed_serial
from station.domain.certificates import SubjectContext
from station.domain.errors import (
    BatchFullError,
    BoardDisconnectedError,
    BoardLockedError,
    BoardReportedError,
    BoardTimeoutError,
    DuplicateIdentityError,
    NotFoundError,
    ProofOfPossessionError,
    ProvisionCancelledError,
    ReadbackMismatchError,
    SerialMismatchError,
    SerialNeededError,
    StationError,
    ValidationError,
    WrongProductError,
)
from station.domain.manifest import (
    Attestation,
    BoardInfo,
    DpsTarget,
    IdentityManifest,
    SymmetricKeyIdentity,
    TpmIdentity,
    X509Identity,
)
from station.domain.products import ProductAttestation, ProductRecipe
from station.domain.provision_events import (
    Failed,
    Passed,
    ProvisionEvent,
    Resumed,
    Step,
    StepFailed,
    StepPassed,
    StepStarted,
    explain,
    steps_for,
)
from station.domain.records import (
    CertificateRecord,
    CertificateStatus,
    DeviceQuery,
    JobRecord,
    Role,
)
from station.domain.registration import tpm_registration_id
from station.domain.states import BatchStatus, DeviceStatus, JobState
from station.ports import (
    BoardLink,
    Clock,
    DeviceCrypto,
    GroupKeys,
    IdentityStore,
    InjectedKey,
    ProductCatalog,
    TpmIdentityReader,
)
from station.protocol.ops import BoardInfo as HelloInfo
from station.protocol.ops import Capability
from station.services.authz import require_role
from station.services.ca import CaService
from station.services.identities import record_identity, void_identity
from station.services.provision_jobs import JobLedger
from station.services.tpm_identity import TpmIdentityService

log = logging.getLogger(__name__)

#: Who may provision; rework (voiding a recorded identity) is QA's or the admin's call.
PROVISIONERS = frozenset({Role.TECHNICIAN, Role.QA, Role.ADMIN})
REWORKERS = frozenset({Role.QA, Role.ADMIN})
#: Settings key prefix indexing device public keys (SHA-256 of the SPKI, public, never secret).
DEVICE_KEY_PREFIX = "provision.device_key."
_NONCE_BYTES = 32
_CAPABILITY = {
    ProductAttestation.TPM: Capability.TPM,
    ProductAttestation.X509: Capability.SECURE_ELEMENT,
    ProductAttestation.X509_INJECTED: Capability.INJECTED_KEY,
    ProductAttestation.SYMMETRIC_KEY: Capability.SYMMETRIC_KEY,
}
_INTERRUPTING = ("board.disconnected", "board.timeout", "provision.cancelled")


class Cancellation(Protocol):
    """Anything with ``is_set()`` (a :class:`threading.Event`): set it to stop between steps."""

    def is_set(self) -> bool:
        """Whether the slot was asked to stop."""
        ...


class LabelPrinting(Protocol):
    """What provisioning needs from the label service: print a PASSed device's label."""

    def print_at_pass(self, registration_id: str) -> object:
        """Print the label of a freshly provisioned device."""
        ...


@dataclass(frozen=True)
class ProvisionRequest:
    """What to do with the board on one slot.

    Args:
        slot: the slot name (or the port, for one-off runs).
        batch: the open batch the board goes into.
        rework_reason: QA only: void the board's recorded identity with this reason and
            provision it anew (instead of stopping with "already provisioned").
        serial: the serial scanned from the board's sticker, for boards that report none
            (checked against the board's own serial when it reports one).
    """

    slot: str
    batch: str
    rework_reason: str = ""
    serial: str = ""


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
class _Run:
    """Mutable state of one run (lives only while the worker drives the board)."""

    link: BoardLink
    request: ProvisionRequest
    emit: Callable[[ProvisionEvent], None]
    cancel: Cancellation | None
    recipe: ProductRecipe | None = None
    hello: HelloInfo | None = None
    job: JobRecord | None = None
    registration_id: str = ""
    step: Step = Step.CONNECT
    kept: CertificateRecord | None = None  # a certificate of this job found on the board
    csr: bytes = b""
    certificate: CertificateRecord | None = None
    chain_pem: str = ""
    injected: InjectedKey | None = None  # injected-key flow: wiped once written
    tpm_reader: TpmIdentityReader | None = None
    tpm: TpmIdentity | None = None
    symmetric: SymmetricKeyIdentity | None = None
    notes: dict[str, str] = field(default_factory=dict)


@dataclass
class ProvisionPorts:
    """What the provisioning service talks to (opened lazily by the composition root)."""

    store: IdentityStore
    products: ProductCatalog
    ca: Callable[[], CaService]
    group_keys: Callable[[], GroupKeys]
    crypto: DeviceCrypto
    random_bytes: Callable[[int], bytes]
    tpm_reader: Callable[[BoardLink], TpmIdentityReader] | None = None
    tpm_identity: Callable[[], TpmIdentityService] | None = None
    labels: Callable[[], LabelPrinting] | None = None


class ProvisionService:
    """Provision boards into batches, one board per call, on the calling thread."""

    def __init__(self, ports: ProvisionPorts, *, clock: Clock, station_id: str, operator: str):
        self._p = ports
        self._store = ports.store
        self._clock = clock
        self._station = station_id
        self._operator = operator
        self._jobs = JobLedger(ports.store, clock=clock, station_id=station_id, operator=operator)

    # ------------------------------------------------------------------ public API
    def check_operator(self, *, rework: bool = False) -> None:
        """Fail early if the operator may not provision (or rework).

        Raises:
            PermissionDeniedError: unknown, disabled or insufficient role.
        """
        require_role(
            self._store,
            self._operator,
            REWORKERS if rework else PROVISIONERS,
            action="rework a board" if rework else "provision boards",
        )

    def prepare(self, batch: str) -> ProductRecipe:
        """Get ready for the boards of ``batch`` before the first one arrives.

        Checks that the batch is open, loads its product recipe and, for certificate flows,
        opens the CA key in the HSM, so problems show before a board is plugged and the first
        board does not pay for the set-up.

        Raises:
            BatchFullError: the batch is unknown or not open.
            CaNotReadyError, KeyCustodyError: the CA key cannot be opened.
        """
        recipe = self._recipe_for(batch)
        if recipe.attestation in (ProductAttestation.X509, ProductAttestation.X509_INJECTED):
            self._p.ca().open()
        return recipe

    def open_jobs(self, batch: str = "") -> list[JobRecord]:
        """Open provisioning jobs (all, or of one batch), oldest first."""
        return [job for job in self._store.open_jobs() if not batch or job.batch == batch]

    def void_job(self, job_id: int, reason: str) -> JobRecord:
        """Abandon an open job (board lost or scrapped): its unused certificates are voided.

        Raises:
            ValidationError: no reason given.
            NotFoundError: no such job.
            TransitionError: the job already passed or was voided.
        """
        if not reason.strip():
            raise ValidationError("voiding a job needs a reason", remedy="Pass --reason TEXT.")
        self.check_operator()
        job = self._store.job(job_id)
        if job is None:
            raise NotFoundError(f"no provisioning job {job_id}", job=job_id)
        return self._jobs.void(job, reason)

    def run(
        self,
        link: BoardLink,
        request: ProvisionRequest,
        *,
        emit: Callable[[ProvisionEvent], None] = lambda event: None,
        cancel: Cancellation | None = None,
    ) -> ProvisionOutcome:
        """Provision the board behind ``link`` into ``request.batch``.

        Never raises for a board or policy problem: the outcome (and a :class:`Failed` event)
        says what failed and what to do. The job row stays open (interrupted or failed) so the
        next plug of the same board resumes it.
        """
        run = _Run(link=link, request=request, emit=emit, cancel=cancel)
        try:
            self._drive(run)
        except StationError as exc:
            return self._fail(run, exc.code, exc.message, exc.remedy, exc)
        except Exception as exc:  # a bug must not kill the slot's worker; it is reported
            log.exception("provisioning failed unexpectedly on slot %s", request.slot)
            return self._fail(run, "provision.internal", f"{type(exc).__name__}: {exc}", "", exc)
        finally:
            if run.tpm_reader is not None:
                run.tpm_reader.close()
        assert run.job is not None and run.hello is not None
        return ProvisionOutcome(
            passed=True,
            slot=request.slot,
            serial=run.hello.serial,
            registration_id=run.registration_id,
            job_id=run.job.id,
            step=Step.RECORD,
        )

    # ------------------------------------------------------------------ the machine
    def _drive(self, run: _Run) -> None:
        self._begin(run, Step.CONNECT)
        hello = self._with_serial(run.link.hello(), run.request.serial)
        run.hello = hello
        recipe = self._recipe_for(run.request.batch)
        run.recipe = recipe
        self._check_board(hello, recipe)
        self._pass(run, Step.CONNECT, f"{hello.serial} ({hello.model})")

        self._duplicates(run)
        for step in steps_for(recipe.attestation, lock=recipe.lock)[2:]:
            self._check_cancel(run)
            getattr(self, "_step_" + step.value.replace("-", "_"))(run)
        slot = run.request.slot
        assert run.job is not None
        run.emit(
            Passed(slot, run.registration_id, hello.serial, run.request.batch, job_id=run.job.id)
        )
        if recipe.auto_print_label and self._p.labels is not None:
            self._print_label(run)

    def _recipe_for(self, batch: str) -> ProductRecipe:
        record = self._store.batch(batch)
        if record is None:
            raise BatchFullError(
                f"there is no batch called {batch!r}",
                remedy="Ask QA to open the batch (station batch open).",
                batch=batch,
            )
        if record.status != str(BatchStatus.OPEN):
            raise BatchFullError(
                f"batch {batch} is {record.status}, not open", batch=batch, status=record.status
            )
        return self._p.products.product(record.product)

    @staticmethod
    def _with_serial(hello: HelloInfo, scanned: str) -> HelloInfo:
        """The board's own serial, or the scanned one for a board that reports none."""
        if scanned:
            scanned = printed_serial(scanned)
        if not hello.serial:
            if not scanned:
                raise SerialNeededError(
                    f"the board ({hello.model}) reports no serial number",
                    model=hello.model,
                )
            return dataclasses.replace(hello, serial=scanned)
        if scanned and scanned != hello.serial:
            raise SerialMismatchError(
                f"the board reports serial {hello.serial}, but {scanned} was scanned for it",
                serial=hello.serial,
                scanned=scanned,
            )
        return hello

    @staticmethod
    def _check_board(hello: HelloInfo, recipe: ProductRecipe) -> None:
        needed = _CAPABILITY[recipe.attestation]
        if not hello.has(needed):
            raise WrongProductError(
                f"board {hello.serial} ({hello.model}) has no {needed.value} capability, which "
                f"product {recipe.name} needs",
                serial=hello.serial,
                capabilities=list(hello.capabilities),
            )
        if recipe.model and not hello.model.lower().startswith(recipe.model.lower()):
            raise WrongProductError(
                f"board {hello.serial} is a {hello.model}, not a {recipe.model} "
                f"(product {recipe.name})",
                serial=hello.serial,
                model=hello.model,
            )

    # ------------------------------------------------------------------ duplicates and resume
    def _duplicates(self, run: _Run) -> None:
        assert run.hello is not None and run.recipe is not None
        hello, recipe, request = run.hello, run.recipe, run.request
        run.emit(StepStarted(request.slot, Step.DUPLICATES))
        run.step = Step.DUPLICATES
        if not self._resume(run):
            self._check_recorded_serial(run)
            self._check_room(request.batch, hello.serial)
            if recipe.attestation is not ProductAttestation.TPM:
                run.registration_id = recipe.registration_id_for(
                    serial=hello.serial, model=hello.model
                )
                self._check_registration_id(run.registration_id, hello.serial)
            if hello.locked:
                raise BoardLockedError(
                    f"board {hello.serial} is locked but the station has no record of it",
                    serial=hello.serial,
                )
            run.job = self._jobs.create(
                slot=request.slot,
                batch=request.batch,
                serial=hello.serial,
                step=Step.DUPLICATES,
            )
            if run.registration_id:
                run.job = self._jobs.advance(run.job, registration_id=run.registration_id)
        self._pass(run, Step.DUPLICATES, "new board" if run.kept is None else "resumed")

    def _resume(self, run: _Run) -> bool:
        """Pick up this board's open job, if any; void issued certificates not on the board."""
        assert run.hello is not None
        jobs = self._jobs.open_for(run.hello.serial)
        if not jobs:
            return False
        *stale, job = jobs
        for old in stale:  # only one job per board can be resumed; older ones are abandoned
            self._jobs.void(old, "superseded by a newer job of the same board")
        if job.batch != run.request.batch:
            self._jobs.void(job, f"board moved to batch {run.request.batch}")
            return False
        if job.state is JobState.RUNNING:  # the process that ran it died (kill -9, power cut)
            job = self._jobs.advance(job, state=JobState.INTERRUPTED)
        run.job = self._jobs.advance(
            job, state=JobState.RUNNING, step=Step.DUPLICATES, slot=run.request.slot
        )
        run.registration_id = job.registration_id
        detail = self._reconcile_certificates(run)
        run.emit(Resumed(run.request.slot, job.id or 0, job.step, detail))
        recipe = run.recipe
        if not run.registration_id and recipe and recipe.attestation != ProductAttestation.TPM:
            run.registration_id = recipe.registration_id_for(
                serial=run.hello.serial, model=run.hello.model
            )
            run.job = self._jobs.advance(run.job, registration_id=run.registration_id)
        return True

    def _reconcile_certificates(self, run: _Run) -> str:
        assert run.job is not None
        issued = self._jobs.issued_certificates(run.job)
        if not issued:
            return "nothing issued yet"
        on_board = self._board_chain(run.link)
        kept = None
        for cert in issued:
            leaf = self._p.crypto.chain_der(cert.certificate_pem)
            if kept is None and on_board and on_board.startswith(leaf):
                kept = cert
            else:
                self._jobs.void_certificate(cert, "issued but never installed on the board")
        run.kept = kept
        voided = len(issued) - (1 if kept else 0)
        if kept is None:
            return f"voided {voided} certificate(s) that never reached the board"
        return f"kept certificate {kept.serial_number} (on the board); voided {voided}"

    @staticmethod
    def _board_chain(link: BoardLink) -> bytes:
        try:
            return link.read("cert_chain").data or b""
        except BoardReportedError as exc:
            if exc.details.get("status") in ("not_found", 6):
                return b""
            raise

    def _check_recorded_serial(self, run: _Run) -> None:
        assert run.hello is not None
        serial = run.hello.serial
        live = [
            d
            for d in self._store.devices(DeviceQuery(serial=serial, limit=10))
            if d.status != DeviceStatus.VOIDED
        ]
        if not live:
            return
        device = live[0]
        if run.request.rework_reason:
            self.check_operator(rework=True)
            self._rework(device.registration_id, run.request.rework_reason)
            return
        raise DuplicateIdentityError(
            f"board {serial} is already provisioned on {device.created_at[:10]} in batch "
            f"{device.batch} (registration ID {device.registration_id})",
            remedy="Set the board aside for QA: QA can rework it (void the old identity and "
            "provision it anew) or scrap it.",
            serial=serial,
            batch=device.batch,
            registration_id=device.registration_id,
            recorded=device.created_at,
        )

    def _rework(self, registration_id: str, reason: str) -> None:
        with self._store.atomic():
            for cert in self._store.certificates_for(registration_id):
                if cert.status != CertificateStatus.VOIDED:
                    self._jobs.void_certificate(cert, f"rework: {reason}")
            void_identity(
                self._store,
                registration_id,
                reason=f"rework: {reason}",
                clock=self._clock,
                station=self._station,
                operator=self._operator,
            )

    def _check_registration_id(self, registration_id: str, serial: str) -> None:
        device = self._store.device(registration_id)
        if device is not None and device.status != DeviceStatus.VOIDED:
            raise DuplicateIdentityError(
                f"registration ID {registration_id} is already provisioned on "
                f"{device.created_at[:10]} in batch {device.batch} (board {device.serial})",
                remedy="Set the board aside for QA: it may be a clone or a relabelled board.",
                registration_id=registration_id,
                batch=device.batch,
                serial=serial,
            )
        for job in self._jobs.open_for_registration(registration_id):
            if job.board_serial != serial:
                raise DuplicateIdentityError(
                    f"registration ID {registration_id} is being provisioned right now by board "
                    f"{job.board_serial} in slot {job.slot}",
                    remedy="Set the board aside for QA: it is probably a clone.",
                    registration_id=registration_id,
                    serial=serial,
                )

    def _check_room(self, batch: str, serial: str) -> None:
        record = self._store.batch(batch)
        assert record is not None
        done = self._store.count_devices(
            DeviceQuery(batch=batch, status=str(DeviceStatus.PROVISIONED))
        )
        running = [j for j in self._store.open_jobs() if j.batch == batch]
        if done + len(running) >= record.size:
            raise BatchFullError(
                f"batch {batch} is full ({done} provisioned, {len(running)} in progress, "
                f"size {record.size})",
                batch=batch,
                serial=serial,
            )

    # ------------------------------------------------------------------ TPM steps
    def _tpm(self, run: _Run) -> TpmIdentityReader:
        if run.tpm_reader is None:
            if self._p.tpm_reader is None:
                raise WrongProductError("this station has no TPM support configured")
            run.tpm_reader = self._p.tpm_reader(run.link)
        return run.tpm_reader

    def _step_tpm_ek(self, run: _Run) -> None:
        assert run.recipe is not None and run.hello is not None and run.job is not None
        self._begin(run, Step.TPM_EK)
        key = self._tpm(run).read_endorsement_key(
            template=run.recipe.ek_template, create_if_absent=run.recipe.create_ek_if_absent
        )
        ek_sha = hashlib.sha256(key.public).hexdigest()
        registration_id = tpm_registration_id(key.public)
        clones = [
            d
            for d in self._store.devices(DeviceQuery(ek_sha256=ek_sha, limit=5))
            if d.status != DeviceStatus.VOIDED and d.serial != run.hello.serial
        ]
        if clones:
            other = clones[0]
            raise DuplicateIdentityError(
                f"this board's TPM endorsement key is already provisioned on "
                f"{other.created_at[:10]} in batch {other.batch} for board {other.serial}: "
                "a cloned TPM",
                remedy="Set the board aside for QA: two boards must never share a TPM.",
                serial=run.hello.serial,
                other_serial=other.serial,
                batch=other.batch,
            )
        self._check_registration_id(registration_id, run.hello.serial)
        run.registration_id = registration_id
        run.tpm = TpmIdentity(
            endorsement_key=base64.b64encode(key.public).decode("ascii"),
            ek_sha256=ek_sha,
            ek_origin=str(key.origin),
        )
        run.job = self._jobs.advance(run.job, registration_id=registration_id, ek_sha256=ek_sha)
        self._pass(run, Step.TPM_EK, f"EK {ek_sha[:12]} ({key.origin})")

    def _step_tpm_ek_certificate(self, run: _Run) -> None:
        assert run.recipe is not None and run.tpm is not None
        self._begin(run, Step.TPM_EK_CERT)
        identity = self._tpm_identity()
        check = identity.best_certificate(
            self._tpm(run),
            run.recipe.ek_template,
            base64.b64decode(run.tpm.endorsement_key),
            evidence=run.recipe.evidence_eks,
        )
        identity.admit_certificate(check, run.recipe, registration_id=run.registration_id)
        run.tpm = replace(
            run.tpm, ek_certificate_status=str(check.status), ek_certificate_vendor=check.vendor
        )
        self._pass(run, Step.TPM_EK_CERT, check.summary())

    def _step_tpm_residency(self, run: _Run) -> None:
        assert run.tpm is not None
        self._begin(run, Step.TPM_RESIDENCY)
        self._tpm_identity().require_residency(
            self._tpm(run),
            base64.b64decode(run.tpm.endorsement_key),
            registration_id=run.registration_id,
        )
        self._pass(run, Step.TPM_RESIDENCY, "credential activated")

    def _tpm_identity(self) -> TpmIdentityService:
        if self._p.tpm_identity is None:
            raise WrongProductError("this station has no EK-certificate trust anchors configured")
        return self._p.tpm_identity()

    def _step_tpm_srk(self, run: _Run) -> None:
        assert run.tpm is not None
        self._begin(run, Step.TPM_SRK)
        srk = self._tpm(run).ensure_storage_root_key()
        run.tpm = replace(run.tpm, storage_root_key=base64.b64encode(srk).decode("ascii"))
        self._pass(run, Step.TPM_SRK, "SRK at 0x81000001")

    # ------------------------------------------------------------------ X.509 steps
    def _step_keygen(self, run: _Run) -> None:
        self._begin(run, Step.KEYGEN)
        if run.kept is not None:
            self._pass(run, Step.KEYGEN, "kept: the certificate is already on the board")
            return
        # a fresh key for every new attempt: a key from an abandoned attempt is never reused
        public = run.link.keygen(replace=True)
        self._check_device_key(run, hashlib.sha256(public).hexdigest())
        self._pass(run, Step.KEYGEN, "P-256 key made in the secure element")

    def _check_device_key(self, run: _Run, spki_sha256: str) -> None:
        owner = self._store.setting(DEVICE_KEY_PREFIX + spki_sha256)
        if owner and owner != run.registration_id:
            raise DuplicateIdentityError(
                f"this board's device key is already recorded for {owner}: a cloned secure element",
                remedy="Set the board aside for QA.",
                registration_id=run.registration_id,
                other=owner,
            )

    def _step_csr(self, run: _Run) -> None:
        assert run.recipe is not None
        self._begin(run, Step.CSR)
        if run.kept is not None:
            self._pass(run, Step.CSR, "kept")
            return
        if run.recipe.attestation is ProductAttestation.X509_INJECTED:
            run.injected = self._p.crypto.new_injected_key()
            run.csr = run.injected.csr_der(run.registration_id)
            self._pass(run, Step.CSR, "key made in station memory")
        else:
            run.csr = run.link.csr(run.registration_id)
            self._pass(run, Step.CSR, f"{len(run.csr)} bytes")

    def _step_issue(self, run: _Run) -> None:
        assert run.recipe is not None and run.job is not None
        self._begin(run, Step.ISSUE)
        if run.kept is not None:
            run.certificate = run.kept
            self._pass(run, Step.ISSUE, f"kept {run.kept.serial_number}")
            return
        issued = self._p.ca().issue(
            run.csr,
            run.registration_id,
            profile=run.recipe.certificate_profile,
            batch=run.request.batch,
            job_id=run.job.id,
            context=SubjectContext(product=run.recipe.name, batch=run.request.batch),
        )
        serial = issued.certificate.serial_hex
        record = self._store.certificate(serial)
        assert record is not None  # the CA logged it before returning
        run.certificate = record
        run.chain_pem = issued.chain_pem
        run.job = self._jobs.advance(run.job, certificate=serial)
        self._pass(run, Step.ISSUE, f"certificate {serial}")

    def _step_write_key(self, run: _Run) -> None:
        self._begin(run, Step.WRITE_KEY)
        if run.kept is not None:
            self._pass(run, Step.WRITE_KEY, "kept")
            return
        assert run.injected is not None
        generation = run.link.write("privkey", run.injected.private_key_der())
        self._pass(run, Step.WRITE_KEY, f"generation {generation}")

    def _step_write_chain(self, run: _Run) -> None:
        assert run.certificate is not None
        self._begin(run, Step.WRITE_CHAIN)
        try:
            if run.kept is not None:
                self._pass(run, Step.WRITE_CHAIN, "kept: already on the board")
                return
            wanted = self._p.crypto.chain_der(run.certificate.certificate_pem + run.chain_pem)
            run.link.write("cert_chain", wanted)
            back = run.link.read("cert_chain").data or b""
            if back != wanted:
                raise ReadbackMismatchError(
                    "the certificate chain read back from the board differs from what was written",
                    written=len(wanted),
                    read=len(back),
                )
            self._pass(run, Step.WRITE_CHAIN, f"{len(wanted)} bytes, read back")
        finally:
            if run.injected is not None:
                run.injected.wipe()  # written or not, the station keeps no copy of a device key
                run.injected = None

    def _step_proof_of_possession(self, run: _Run) -> None:
        assert run.certificate is not None
        self._begin(run, Step.PROOF)
        nonce = self._p.random_bytes(_NONCE_BYTES)
        signature = run.link.sign(nonce)
        if not self._p.crypto.verify_possession(run.certificate.certificate_pem, nonce, signature):
            raise ProofOfPossessionError(
                "the board's signature over the station nonce does not verify with its certificate",
                certificate=run.certificate.serial_number,
            )
        spki = self._p.crypto.public_key_sha256(run.certificate.certificate_pem)
        self._check_device_key(run, spki)
        run.notes["spki"] = spki
        self._pass(run, Step.PROOF, "signature verified")

    # ------------------------------------------------------------------ symmetric key
    def _step_write_symkey(self, run: _Run) -> None:
        assert run.recipe is not None
        self._begin(run, Step.WRITE_SYMKEY)
        key = self._p.group_keys().derive(run.recipe.group_key, run.registration_id)
        digest = hashlib.sha256(key).digest()
        current = self._read_secret_digest(run.link, "symkey")
        if current != digest:
            run.link.write("symkey", key)
            current = self._read_secret_digest(run.link, "symkey")
        del key  # derived again whenever needed; never stored
        if current != digest:
            raise ReadbackMismatchError(
                "the symmetric key on the board does not match the derived key"
            )
        run.symmetric = SymmetricKeyIdentity(group_key=run.recipe.group_key)
        self._pass(run, Step.WRITE_SYMKEY, "derived in the HSM, written, checked")

    @staticmethod
    def _read_secret_digest(link: BoardLink, name: str) -> bytes | None:
        try:
            return link.read(name).sha256
        except BoardReportedError as exc:
            if exc.details.get("status") in ("not_found", 6):
                return None
            raise

    # ------------------------------------------------------------------ common tail
    def _step_write_dps(self, run: _Run) -> None:
        assert run.recipe is not None
        self._begin(run, Step.WRITE_DPS)
        wanted = {
            "endpoint": run.recipe.dps.global_endpoint,
            "scope": run.recipe.dps.id_scope,
            "rid": run.registration_id,
        }
        current = self._read_dps(run.link)
        if current != wanted:
            run.link.write("dps", cbor2.dumps(wanted, canonical=True))
            current = self._read_dps(run.link)
        if current != wanted:
            raise ReadbackMismatchError(
                "the DPS connection info read back from the board differs from what was written",
                wanted=wanted,
                read=current,
            )
        self._pass(run, Step.WRITE_DPS, f"{wanted['endpoint']} {wanted['scope']}, read back")

    @staticmethod
    def _read_dps(link: BoardLink) -> object:
        try:
            data = link.read("dps").data
        except BoardReportedError as exc:
            if exc.details.get("status") in ("not_found", 6):
                return None
            raise
        try:
            return cbor2.loads(data or b"")
        except (ValueError, cbor2.CBORDecodeError):
            return None

    def _step_lock(self, run: _Run) -> None:
        self._begin(run, Step.LOCK)
        run.link.lock()
        self._pass(run, Step.LOCK, "left manufacturing mode")

    def _step_record(self, run: _Run) -> None:
        assert run.recipe is not None and run.hello is not None and run.job is not None
        self._begin(run, Step.RECORD)
        manifest = self._manifest(run)
        with self._store.atomic():
            record_identity(
                self._store,
                manifest,
                clock=self._clock,
                station=self._station,
                operator=self._operator,
            )
            if run.certificate is not None:
                current = self._store.certificate(run.certificate.serial_number)
                assert current is not None
                self._store.save_certificate(replace(current, status=CertificateStatus.INSTALLED))
            if "spki" in run.notes:
                self._store.save_setting(DEVICE_KEY_PREFIX + run.notes["spki"], run.registration_id)
            run.job = self._jobs.advance(
                run.job, step=Step.RECORD, state=JobState.PASSED, phase="passed"
            )
        self._emit_passed(run, Step.RECORD, manifest.digest()[:12])

    def _manifest(self, run: _Run) -> IdentityManifest:
        assert run.recipe is not None and run.hello is not None
        recipe, hello = run.recipe, run.hello
        x509 = None
        if run.certificate is not None:
            pem = run.certificate.certificate_pem
            x509 = X509Identity(
                certificate_pem=pem,
                thumbprint_sha256=run.certificate.thumbprint_sha256.lower(),
                serial_number=run.certificate.serial_number,
                not_before=run.certificate.not_before,
                not_after=run.certificate.not_after,
                issuer=self._p.crypto.issuer(pem),
                key_origin=(
                    "injected"
                    if recipe.attestation is ProductAttestation.X509_INJECTED
                    else "secure-element"
                ),
            )
        attestation = {
            ProductAttestation.TPM: Attestation.TPM,
            ProductAttestation.X509: Attestation.X509,
            ProductAttestation.X509_INJECTED: Attestation.X509,
            ProductAttestation.SYMMETRIC_KEY: Attestation.SYMMETRIC_KEY,
        }[recipe.attestation]
        return IdentityManifest(
            registration_id=run.registration_id,
            device_id=recipe.device_id_for(
                registration_id=run.registration_id, serial=hello.serial, model=hello.model
            ),
            attestation=attestation,
            board=BoardInfo(
                serial=hello.serial,
                model=hello.model,
                hardware_revision=hello.hardware,
                firmware_version=hello.firmware,
            ),
            product=recipe.name,
            batch=run.request.batch,
            dps=DpsTarget(global_endpoint=recipe.dps.global_endpoint, id_scope=recipe.dps.id_scope),
            station=self._station,
            operator=self._operator,
            provisioned_at=format_time(self._clock.now()),
            tpm=run.tpm,
            x509=x509,
            symmetric_key=run.symmetric,
        )

    def _print_label(self, run: _Run) -> None:
        assert self._p.labels is not None
        slot = run.request.slot
        run.emit(StepStarted(slot, Step.LABEL, run.job.id if run.job else None))
        try:
            self._p.labels().print_at_pass(run.registration_id)
        except StationError as exc:
            why = explain(Step.LABEL, exc.code, exc.message, exc.remedy)
            run.emit(StepFailed(slot, Step.LABEL, why.reason, why.remedy, exc.code, exc.message))
            return
        run.emit(StepPassed(slot, Step.LABEL, "printed"))

    # ------------------------------------------------------------------ bookkeeping
    def _check_cancel(self, run: _Run) -> None:
        if run.cancel is not None and run.cancel.is_set():
            raise ProvisionCancelledError(
                f"slot {run.request.slot} was stopped before {run.step} finished"
            )

    def _begin(self, run: _Run, step: Step) -> None:
        run.step = step
        if run.job is not None:
            run.job = self._jobs.advance(run.job, step=step, phase="started")
        run.emit(StepStarted(run.request.slot, step, run.job.id if run.job else None))

    def _pass(self, run: _Run, step: Step, detail: str) -> None:
        if run.job is not None:
            run.job = self._jobs.advance(run.job, phase="passed")
        run.emit(StepPassed(run.request.slot, step, detail, run.job.id if run.job else None))

    def _emit_passed(self, run: _Run, step: Step, detail: str) -> None:
        run.emit(StepPassed(run.request.slot, step, detail, run.job.id if run.job else None))

    def _fail(
        self, run: _Run, code: str, message: str, remedy: str, exc: BaseException
    ) -> ProvisionOutcome:
        if run.injected is not None:
            run.injected.wipe()
            run.injected = None
        # a TPM command lost on the link is an unplug or a timeout underneath: say so
        cause = code
        if isinstance(exc, StationError) and str(exc.details.get("cause", "")).startswith("board."):
            cause = str(exc.details["cause"])
        why = explain(run.step, cause, message, remedy)
        serial = run.hello.serial if run.hello else ""
        detail = f"{code}: {message}"
        if isinstance(exc, StationError) and exc.details:
            detail += " " + ", ".join(f"{k}={v}" for k, v in exc.details.items())
        slot = run.request.slot
        try:
            run.job = self._jobs.failed(
                run.job,
                batch=run.request.batch,
                serial=serial,
                reason=why.reason,
                code=code,
                interrupted=cause in _INTERRUPTING
                or isinstance(exc, BoardDisconnectedError | BoardTimeoutError),
            )
        except StationError as store_exc:  # the store itself failed: still tell the operator
            detail += f" (job not updated: {store_exc.message})"
        job_id = run.job.id if run.job else None
        run.emit(StepFailed(slot, run.step, why.reason, why.remedy, code, detail, job_id))
        run.emit(Failed(slot, run.step, why.reason, why.remedy, code, detail, serial, job_id))
        return ProvisionOutcome(
            passed=False,
            slot=slot,
            serial=serial,
            registration_id=run.registration_id,
            job_id=job_id,
            step=run.step,
            reason=why.reason,
            remedy=why.remedy,
            code=code,
            detail=detail,
        )
