"""Admission: the board answers, fits the batch's product, and is new (or its job is resumed).

These are the first two steps of every flow (:data:`~station.domain.provision_events.
ADMISSION_STEPS`). The duplicate check either creates the board's job row or picks up its open
job: a certificate issued by that job that is on the board (its chain's leaf) is kept, one that
never reached the board is voided, and the flow's steps run again (board writes are idempotent).
"""

from __future__ import annotations

import dataclasses
import logging

import cbor2

from station.domain.boards import printed_serial, slot_phrase
from station.domain.errors import (
    BatchFullError,
    BoardAlreadyPassedError,
    BoardLockedError,
    DuplicateIdentityError,
    PromptDeclinedError,
    SerialMismatchError,
    SerialNeededError,
    StationError,
    ValidationError,
    WrongProductError,
)
from station.domain.products import ProductAttestation, ProductRecipe
from station.domain.prompts import serial_question
from station.domain.provision_events import Resumed, Step
from station.domain.records import CertificateStatus, DeviceQuery, DeviceRecord
from station.domain.states import BatchStatus, DeviceStatus, JobState
from station.ports import BoardLink, Clock, UnitOfWork
from station.protocol.ops import BoardInfo as HelloInfo
from station.protocol.ops import Capability
from station.services.identities import void_identity
from station.services.provision.context import (
    Board,
    ProvisionPorts,
    read_optional,
)
from station.services.provision.events import Journal
from station.services.provision.model import Run
from station.services.provision_jobs import JobLedger

log = logging.getLogger(__name__)

_CAPABILITY = {
    ProductAttestation.TPM: Capability.TPM,
    ProductAttestation.X509: Capability.SECURE_ELEMENT,
    ProductAttestation.X509_INJECTED: Capability.INJECTED_KEY,
    ProductAttestation.SYMMETRIC_KEY: Capability.SYMMETRIC_KEY,
}
#: each capability as a technician would say it (the protocol's names are for firmware)
_SAID = {
    Capability.TPM: "TPM",
    Capability.SECURE_ELEMENT: "secure element",
    Capability.INJECTED_KEY: "storage for an injected device key",
    Capability.SYMMETRIC_KEY: "storage for a symmetric key",
}
#: how often a board without a serial asks for a scan before the run stops
MAX_SERIAL_ASKS = 3


def recipe_for(store: UnitOfWork, ports: ProvisionPorts, batch: str) -> ProductRecipe:
    """The product recipe of ``batch``, which must be open.

    Raises:
        BatchFullError: the batch is unknown or not open.
    """
    record = store.batches.get(batch)
    if record is None:
        raise BatchFullError(
            f"there is no batch called {batch!r}",
            remedy="Ask QA to open the batch (station batch open).",
            batch=batch,
        )
    if record.status != str(BatchStatus.OPEN):
        raise BatchFullError(
            f"batch {batch} is {record.status}, not open",
            remedy="A sealed batch takes no more boards: scan the work order of an open batch, "
            "or ask QA to open a new one.",
            batch=batch,
            status=record.status,
        )
    return ports.products.product(record.product)


def check_registration_id(
    store: UnitOfWork, jobs: JobLedger, registration_id: str, serial: str
) -> None:
    """Refuse a registration ID that is recorded, or being formed by another board right now.

    Raises:
        DuplicateIdentityError: a re-run, a relabelled board or a clone.
    """
    device = store.devices.get(registration_id)
    if device is not None and device.status != DeviceStatus.VOIDED:
        raise DuplicateIdentityError(
            f"registration ID {registration_id} is already provisioned on "
            f"{device.created_at[:10]} in batch {device.batch} (board {device.serial})",
            remedy="Set the board aside for QA: it may be a clone or a relabelled board.",
            registration_id=registration_id,
            batch=device.batch,
            serial=serial,
        )
    for job in jobs.open_for_registration(registration_id):
        if job.board_serial != serial:
            raise DuplicateIdentityError(
                f"registration ID {registration_id} is being provisioned right now by board "
                f"{job.board_serial} in {slot_phrase(job.slot)}",
                remedy="Set the board aside for QA: it is probably a clone.",
                registration_id=registration_id,
                serial=serial,
            )


class Admission:
    """The connect and duplicate-check steps of one run."""

    def __init__(
        self,
        ports: ProvisionPorts,
        jobs: JobLedger,
        journal: Journal,
        *,
        clock: Clock,
        station: str,
        operator: str,
    ) -> None:
        self._p = ports
        self._store = ports.store
        self._jobs = jobs
        self._journal = journal
        self._clock = clock
        self._station = station
        self._operator = operator

    def connect(self, run: Run) -> Board:
        """The connect step: the board answers and fits the batch's product.

        The run's operator was checked before (``ProvisionService.run``): a run without one
        that may provision (a window locked while a board arrived) never gets here.
        """
        self._journal.begin(Step.CONNECT)
        hello = run.link.hello()
        recipe = recipe_for(self._store, self._p, run.request.batch)  # before asking anyone
        hello = _named(run, hello)
        run.serial = hello.serial
        _check_board(hello, recipe)
        self._journal.passed(Step.CONNECT, f"{hello.serial} ({hello.model})")
        return Board(hello, recipe)

    def duplicates(self, run: Run, board: Board) -> None:
        """The duplicate-check step: a new board gets a job row; a known one resumes its job."""
        hello, recipe, request = board.hello, board.recipe, run.request
        self._journal.begin(Step.DUPLICATES)
        if not self._resume(run, board):
            self._check_passed_here(run, board)
            self._check_recorded_serial(run, hello.serial)
            self._check_room(request.batch, hello.serial)
            if recipe.attestation is not ProductAttestation.TPM:
                run.registration_id = recipe.registration_id_for(
                    serial=hello.serial, model=hello.model
                )
                check_registration_id(self._store, self._jobs, run.registration_id, hello.serial)
            if hello.locked:
                raise self._locked_without_record(run, hello)
            run.job = self._jobs.create(
                slot=request.slot,
                batch=request.batch,
                serial=hello.serial,
                step=Step.DUPLICATES,
                registration_id=run.registration_id,
            )
        self._journal.passed(Step.DUPLICATES, "new board" if run.kept is None else "resumed")

    def _resume(self, run: Run, board: Board) -> bool:
        """Pick up this board's open job, if any; void issued certificates not on the board."""
        jobs = self._jobs.open_for(board.hello.serial)
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
        run.resumed = True
        detail = self._reconcile_certificates(run)
        run.emit(Resumed(run.request.slot, job.id or 0, job.step, detail))
        recipe = board.recipe
        if not run.registration_id and recipe.attestation is not ProductAttestation.TPM:
            run.registration_id = recipe.registration_id_for(
                serial=board.hello.serial, model=board.hello.model
            )
            run.job = self._jobs.advance(run.job, registration_id=run.registration_id)
        return True

    def _check_passed_here(self, run: Run, board: Board) -> None:
        """Stop the board that just passed in this slot when it is started again unswapped.

        Without hot-plug the station cannot see a swap: "Next board" pressed with the passed
        board still in the fixture would run it into the duplicate check (QA). When the board
        is the one the slot passed last (same serial) and still holds exactly the identity
        recorded for it (its DPS registration ID and, for a certificate, the recorded
        certificate and the key to it), it is that board: the technician only has to swap it.
        Anything less goes on to the duplicate check.

        Raises:
            BoardAlreadyPassedError: it is the board that passed; swap it for the next one.
        """
        request, hello = run.request, board.hello
        if not request.passed_serial or request.rework_reason:
            return
        if hello.serial != request.passed_serial:
            return  # a new board: it goes on
        recorded = [
            d
            for d in self._store.devices.find(DeviceQuery(serial=hello.serial, limit=10))
            if d.status == DeviceStatus.PROVISIONED
        ]
        if not recorded or not self._holds_identity(run.link, recorded[0]):
            return
        device = recorded[0]
        raise BoardAlreadyPassedError(
            f"board {hello.serial} already passed (batch {device.batch}, registration ID "
            f"{device.registration_id}): it is still in the slot",
            remedy="Swap it for the next board, then press Next board.",
            serial=hello.serial,
            registration_id=device.registration_id,
            batch=device.batch,
        )

    def _holds_identity(self, link: BoardLink, device: DeviceRecord) -> bool:
        """Whether the board holds ``device``'s recorded identity (not just its serial)."""
        if board_registration_id(link) != device.registration_id:
            return False
        installed = [
            c
            for c in self._store.certificates.for_device(device.registration_id)
            if c.status == CertificateStatus.INSTALLED
        ]
        if not installed:
            return True  # a TPM or symmetric-key identity: the registration ID is the identity
        pem = installed[-1].certificate_pem
        crypto = self._p.crypto
        if not board_chain(link).startswith(crypto.chain_der(pem)):
            return False
        nonce = self._p.random_bytes(32)  # a copied certificate without its key fails here
        return crypto.verify_possession(pem, nonce, link.sign(nonce))

    def _locked_without_record(self, run: Run, hello: HelloInfo) -> BoardLockedError:
        """The error for a locked board with no open job and no record under its serial.

        Says what the station does know about the board (the registration ID written on it,
        a device recorded under it, earlier jobs of its serial in any state), on the tile and
        in the log, so the cause can be found from one occurrence.
        """
        facts: dict[str, str] = {"serial": hello.serial, "slot": run.request.slot}
        try:
            on_board = board_registration_id(run.link)
        except StationError as exc:  # diagnostics must not hide the refusal itself
            on_board = ""
            facts["board_read"] = exc.code
        facts["board_registration_id"] = on_board or "none"
        recorded = self._store.devices.get(on_board) if on_board else None
        jobs = [
            f"{job.id}:{job.state}@{job.step} batch {job.batch} {slot_phrase(job.slot)}"
            for job in self._store.jobs.iter_all()
            if job.board_serial == hello.serial or (on_board and job.registration_id == on_board)
        ]
        facts["jobs"] = "; ".join(jobs) or "none"
        if recorded is not None:
            facts.update(recorded_serial=recorded.serial, recorded_status=str(recorded.status))
            message = (
                f"board {hello.serial} is locked and carries registration ID {on_board}, "
                f"which is recorded for board {recorded.serial} ({recorded.status}, batch "
                f"{recorded.batch})"
            )
        else:
            message = f"board {hello.serial} is locked but the station has no record of it"
            if jobs:
                message += f" (earlier jobs of this board: {facts['jobs']})"
        log.warning("locked board without a record: %s", facts)
        return BoardLockedError(message, **facts)

    def _reconcile_certificates(self, run: Run) -> str:
        assert run.job is not None  # _resume set it just before
        issued = self._jobs.issued_certificates(run.job)
        if not issued:
            return "nothing issued yet"
        on_board = board_chain(run.link)
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

    def _check_recorded_serial(self, run: Run, serial: str) -> None:
        live = [
            d
            for d in self._store.devices.find(DeviceQuery(serial=serial, limit=10))
            if d.status != DeviceStatus.VOIDED
        ]
        if not live:
            return
        device = live[0]
        if run.request.rework_reason:  # the run checked that its operator may rework
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
        with self._store:
            for cert in self._store.certificates.for_device(registration_id):
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

    def _check_room(self, batch: str, serial: str) -> None:
        record = self._store.batches.get(batch)
        assert record is not None  # connect checked the batch is open
        done = self._store.batches.counts(batch).provisioned
        running = [j for j in self._store.jobs.open() if j.batch == batch]
        if done + len(running) >= record.size:
            raise BatchFullError(
                f"batch {batch} is full ({done} provisioned, {len(running)} in progress, "
                f"size {record.size})",
                batch=batch,
                serial=serial,
            )


def _named(run: Run, hello: HelloInfo) -> HelloInfo:
    """The board with its serial: its own, the one scanned with the request, or the operator's."""
    if hello.serial or run.request.serial:
        return _with_serial(hello, run.request.serial)
    return dataclasses.replace(hello, serial=ask_serial(run, hello.model))


def ask_serial(run: Run, model: str) -> str:
    """Ask the run's operator prompt for the serial printed on a board that reports none.

    An answer that cannot be a serial is asked again, saying why, up to
    :data:`MAX_SERIAL_ASKS` times.

    Raises:
        SerialNeededError: nobody to ask, nobody answered, or no answer was a serial.
    """
    missing = f"the board ({model}) reports no serial number"
    if run.prompt is None:
        raise SerialNeededError(missing, model=model)
    problem = ""
    for _ in range(MAX_SERIAL_ASKS):
        question = serial_question(run.request.slot, model, problem=problem)
        try:
            answer = run.prompt.ask(question)
        except PromptDeclinedError as exc:
            raise SerialNeededError(
                f"{missing} and none was scanned: {exc.message}", remedy=exc.remedy, model=model
            ) from exc
        try:
            return printed_serial(answer)
        except ValidationError as exc:
            problem = exc.message
    raise SerialNeededError(
        f"{missing}, and {MAX_SERIAL_ASKS} scans were no serial number ({problem})", model=model
    )


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


def _check_board(hello: HelloInfo, recipe: ProductRecipe) -> None:
    needed = _CAPABILITY[recipe.attestation]
    if not hello.has(needed):
        raise WrongProductError(
            f"board {hello.serial} ({hello.model}) has no {_SAID[needed]}, which product "
            f"{recipe.name} needs",
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


def board_registration_id(link: BoardLink) -> str:
    """The registration ID in the DPS connection info on the board ("" when none is there)."""
    found = read_optional(link, "dps")
    try:
        written = cbor2.loads(found.data or b"") if found else None
    except (ValueError, cbor2.CBORDecodeError):
        return ""
    rid = written.get("rid") if isinstance(written, dict) else None
    return rid if isinstance(rid, str) else ""


def board_chain(link: BoardLink) -> bytes:
    """The certificate chain on the board (empty when it has none)."""
    found = read_optional(link, "cert_chain")
    return (found.data if found else None) or b""
