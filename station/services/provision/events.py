"""The journal of one run: each step's start and end, persisted in the job row and emitted.

A step's start is written to the job row *before* its side effect and its outcome after
(:mod:`station.services.provision_jobs`), and every change is emitted as a frozen event for the
CLI and the GUI. A failure becomes a :class:`Failed` event and a failed outcome with a reason and
a remedy a technician can act on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

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

    @property
    def emit(self) -> Callable[[ProvisionEvent], None]:
        """Where the run's events go."""
        return self._run.emit

    def begin(self, step: Step) -> None:
        """Persist and report the start of ``step`` (before its side effect)."""
        run = self._run
        run.step = step
        if run.job is not None:
            run.job = self._jobs.advance(run.job, step=step, phase="started")
        run.emit(StepStarted(run.request.slot, step, run.job.id if run.job else None))

    def passed(self, step: Step, detail: str) -> None:
        """Persist and report that ``step`` finished well."""
        run = self._run
        if run.job is not None:
            run.job = self._jobs.advance(run.job, phase="passed")
        self.reported(step, detail)

    def reported(self, step: Step, detail: str) -> None:
        """Report that ``step`` finished well (its outcome is already in the job row)."""
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
