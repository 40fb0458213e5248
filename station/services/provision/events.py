"""The journal of one run: each step's start and end, persisted in the job row and emitted.

A step's start is written to the job row *before* its side effect, in one commit together with
the outcome of the step before it: a row at step X, phase ``started``, says that every earlier
step of the flow passed and X is under way (:mod:`station.services.provision_jobs`). What a step
learns for the row (the registration ID, the certificate serial) is noted and goes into that same
commit, or into the failure's. One commit per step instead of two: a crash after a step's side
effect and before the next step's start leaves the row at that step, and the resume walks the
flow's table again, which is what it does anyway (every handler is idempotent or keeps what is
on the board).

Every change is emitted as a frozen event for the CLI and the GUI. A failure becomes a
:class:`Failed` event and a failed outcome with a reason and a remedy a technician can act on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from station.domain.errors import StationError
from station.domain.provision_events import (
    INTERRUPTIONS,
    Failed,
    ProvisionEvent,
    Step,
    StepFailed,
    StepPassed,
    StepStarted,
    disposition_of,
    explain,
    failure_kind,
)
from station.services.provision.model import ProvisionOutcome, Run
from station.services.provision_jobs import JobLedger


class Journal:
    """Persists and emits the steps of one run."""

    def __init__(self, jobs: JobLedger, run: Run) -> None:
        self._jobs = jobs
        self._run = run
        self._noted: dict[str, Any] = {}  # job-row changes waiting for the next commit

    @property
    def emit(self) -> Callable[[ProvisionEvent], None]:
        """Where the run's events go."""
        return self._run.emit

    def begin(self, step: Step, *, persist: bool = True) -> None:
        """Persist and report the start of ``step`` (before its side effect).

        The one commit also carries the previous step's outcome and what was noted since.
        ``persist=False`` is for a step that commits its own outcome atomically (the record):
        its start would add a commit that no resume reads.
        """
        run = self._run
        run.step = step
        if run.job is not None and persist:
            run.job = self._jobs.advance(run.job, step=step, phase="started", **self.take_noted())
        run.emit(StepStarted(run.request.slot, step, run.job.id if run.job else None))

    def note(self, **changes: Any) -> None:
        """Keep ``changes`` for the job row; they are committed with the next step's start."""
        self._noted.update(changes)

    def take_noted(self) -> dict[str, Any]:
        """The changes noted since the last commit (handed over once)."""
        noted, self._noted = self._noted, {}
        return noted

    def passed(self, step: Step, detail: str) -> None:
        """Report that ``step`` finished well.

        Its outcome is committed with the next step's start (or, for the record, in the record's
        own transaction), so a kill right after this event leaves the row at ``step`` and the
        resume redoes it.
        """
        run = self._run
        run.emit(StepPassed(run.request.slot, step, detail, run.job.id if run.job else None))

    def failed(self, error: StationError) -> ProvisionOutcome:
        """Record the failure in the job row, report it and say how the run ended."""
        run = self._run
        code = error.code
        why = explain(run.step, error)
        detail = f"{code}: {error.message}"
        if error.details:
            detail += " " + ", ".join(f"{k}={v}" for k, v in error.details.items())
        slot = run.request.slot
        try:
            run.job = self._jobs.failed(
                run.job,
                batch=run.request.batch,
                serial=run.serial,
                reason=why.reason,
                code=code,
                interrupted=issubclass(failure_kind(error), INTERRUPTIONS),
                step=run.step,  # the record does not commit its start: name it here
                **self.take_noted(),
            )
        except StationError as store_exc:  # the store itself failed: still tell the operator
            detail += f" (job not updated: {store_exc.message})"
        job_id = run.job.id if run.job else None
        run.emit(StepFailed(slot, run.step, why.reason, why.remedy, code, detail, job_id))
        failed = Failed(slot, run.step, why.reason, why.remedy, code, detail, run.serial, job_id)
        run.emit(dataclasses.replace(failed, disposition=disposition_of(failure_kind(error))))
        return ProvisionOutcome(
            passed=False,
            slot=slot,
            serial=run.serial,
            registration_id=run.registration_id,
            job_id=job_id,
            step=run.step,
            reason=why.reason,
            remedy=why.remedy,
            code=code,
            detail=detail,
        )
