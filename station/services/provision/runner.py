"""The runner: drives one board through admission, its attestation flow's table and the record.

``ProvisionService.run(link, request, emit=...)`` runs synchronously on the calling thread (one
worker thread per slot). It emits frozen events for the CLI and the GUI, and it is cancellable
between steps.

Crash safety: every step's start is persisted in the job row before its side effect, in one
commit with the previous step's outcome (:mod:`station.services.provision.events`). When a board
comes back (replug, restart after ``kill -9``), its open job is found by serial number and
resumed (:mod:`station.services.provision.admission`), and the flow's table is walked again:
board writes are idempotent (objects are replaced; a resumed job reads the DPS info and the
symmetric key first, its board may be locked), so redoing a step is always safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from station.domain.boards import slot_phrase
from station.domain.errors import (
    NotFoundError,
    ProvisionCancelledError,
    ProvisionInternalError,
    StationError,
    ValidationError,
)
from station.domain.products import ProductAttestation, ProductRecipe
from station.domain.provision_events import (
    Passed,
    ProvisionEvent,
    Step,
    StepFailed,
    StepPassed,
    StepStarted,
    explain,
)
from station.domain.records import JobRecord
from station.ports import BoardLink, Clock, OperatorPrompt
from station.services.authz import Permission, require
from station.services.provision import steps_common
from station.services.provision.admission import Admission, recipe_for
from station.services.provision.context import LabelPrinting, ProvisionPorts, StepContext
from station.services.provision.events import Journal
from station.services.provision.flows import FLOWS
from station.services.provision.model import (
    Cancellation,
    ProvisionOutcome,
    ProvisionRequest,
    Run,
)
from station.services.provision_jobs import JobLedger

log = logging.getLogger(__name__)


class ProvisionService:
    """Provision boards into batches, one board per call, on the calling thread."""

    def __init__(self, ports: ProvisionPorts, *, clock: Clock, station_id: str):
        self._p = ports
        self._store = ports.store
        self._clock = clock
        self._station = station_id

    def _ledger(self, operator: str) -> JobLedger:
        return JobLedger(
            self._store, clock=self._clock, station_id=self._station, operator=operator
        )

    # ------------------------------------------------------------------ public API
    def check_operator(self, operator: str, *, rework: bool = False) -> None:
        """Fail early if ``operator`` may not provision (or rework).

        Raises:
            PermissionDeniedError: unknown, disabled or insufficient role.
        """
        require(self._store, operator, Permission.REWORK if rework else Permission.PROVISION)

    def prepare(self, batch: str) -> ProductRecipe:
        """Get ready for the boards of ``batch`` before the first one arrives.

        Checks that the batch is open, loads its product recipe and, for certificate flows,
        opens the CA key in the HSM, so problems show before a board is plugged and the first
        board does not pay for the set-up.

        Raises:
            BatchFullError: the batch is unknown or not open.
            CaNotReadyError, KeyCustodyError: the CA key cannot be opened.
        """
        recipe = recipe_for(self._store, self._p, batch)
        if recipe.attestation in (ProductAttestation.X509, ProductAttestation.X509_INJECTED):
            self._p.ca().open()
        return recipe

    def open_jobs(self, batch: str = "") -> list[JobRecord]:
        """Open provisioning jobs (all, or of one batch), oldest first."""
        return [job for job in self._store.jobs.open() if not batch or job.batch == batch]

    def void_job(self, job_id: int, reason: str, *, operator: str) -> JobRecord:
        """Abandon an open job as ``operator``: its unused certificates are voided.

        Raises:
            ValidationError: no reason given.
            NotFoundError: no such job.
            TransitionError: the job already passed or was voided.
        """
        require(self._store, operator, Permission.VOID_JOB)
        if not reason.strip():
            raise ValidationError("voiding a job needs a reason", remedy="Pass --reason TEXT.")
        job = self._store.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no provisioning job {job_id}", job=job_id)
        return self._ledger(operator).void(job, reason)

    def run(
        self,
        link: BoardLink,
        request: ProvisionRequest,
        *,
        emit: Callable[[ProvisionEvent], None] = lambda event: None,
        cancel: Cancellation | None = None,
        prompt: OperatorPrompt | None = None,
    ) -> ProvisionOutcome:
        """Provision the board behind ``link`` into ``request.batch``.

        Never raises for a board or policy problem: the outcome (and a :class:`Failed` event)
        says what failed and what to do. The job row stays open (interrupted or failed) so the
        next plug of the same board resumes it. ``prompt`` is asked for what only the operator
        knows (the serial printed on a board that reports none); without one such a board stops
        at connect.

        An operator who may not provision (or, with a rework reason, rework) is refused before
        the board is touched: the outcome says so, and only the refused attempt is recorded
        (``job.failed``, code ``auth.permission_denied``).
        """
        run = Run(link=link, request=request, emit=emit, prompt=prompt)
        jobs = self._ledger(request.operator)
        journal = Journal(jobs, run)
        try:
            self.check_operator(request.operator, rework=bool(request.rework_reason))
            ctx = self._drive(run, jobs, journal, cancel)
        except StationError as exc:
            return journal.failed(exc)
        except Exception as exc:  # a bug must not kill the slot's worker; it is reported
            log.exception("provisioning failed unexpectedly on slot %s", request.slot)
            return journal.failed(ProvisionInternalError(f"{type(exc).__name__}: {exc}"))
        return ProvisionOutcome(
            passed=True,
            slot=request.slot,
            serial=run.serial,
            registration_id=run.registration_id,
            job_id=ctx.job.id,
            step=Step.RECORD,
        )

    # ------------------------------------------------------------------ the machine
    def _drive(
        self, run: Run, jobs: JobLedger, journal: Journal, cancel: Cancellation | None
    ) -> StepContext:
        operator = run.request.operator
        admission = Admission(
            self._p, jobs, journal, clock=self._clock, station=self._station, operator=operator
        )
        board = admission.connect(run)
        admission.duplicates(run, board)
        ctx = StepContext(
            ports=self._p,
            jobs=jobs,
            journal=journal,
            clock=self._clock,
            station=self._station,
            operator=operator,
            run=run,
            board=board,
        )

        def before_step(step: Step) -> None:
            if cancel is not None and cancel.is_set():
                raise ProvisionCancelledError(
                    f"{slot_phrase(run.request.slot)} was stopped before {run.step} finished"
                )

        evidence = FLOWS[board.recipe.attestation].run(ctx, before_step)
        before_step(Step.RECORD)
        # the record commits its outcome (and the last step's) in one transaction of its own
        journal.begin(Step.RECORD, persist=False)
        journal.passed(Step.RECORD, steps_common.record(ctx, evidence))
        run.emit(
            Passed(run.request.slot, run.registration_id, run.serial, run.request.batch, ctx.job.id)
        )
        if board.recipe.auto_print_label and self._p.labels is not None:
            self._print_label(run, self._p.labels)
        return ctx

    @staticmethod
    def _print_label(run: Run, labels: Callable[[], LabelPrinting]) -> None:
        slot, job_id = run.request.slot, run.job.id if run.job else None
        run.emit(StepStarted(slot, Step.LABEL, job_id))
        try:
            labels().print_at_pass(run.registration_id, operator=run.request.operator)
        except StationError as exc:
            why = explain(Step.LABEL, exc)
            run.emit(StepFailed(slot, Step.LABEL, why.reason, why.remedy, exc.code, exc.message))
            return
        run.emit(StepPassed(slot, Step.LABEL, "printed"))
