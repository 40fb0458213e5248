"""The job ledger of one provisioning attempt: every step's start and outcome, persisted.

A job row is written *before* each step's side effect (state ``running``, ``step`` = the step,
``data["phase"] = "started"``); the same commit records that the step before it passed
(:class:`~station.services.provision.events.Journal`). A crash, an unplug or a kill therefore
always leaves a row that says which step was under way (or had just finished); the provisioning
service reads it back on the next plug of the same board (matched by serial number) and resumes
or voids.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from station.domain.audit import EventDraft, format_time
from station.domain.records import CertificateRecord, CertificateStatus, JobRecord
from station.domain.states import JobState, check_job_transition
from station.ports import Clock, UnitOfWork

#: Audit event kind for a failed attempt; the batch report counts these.
JOB_FAILED = "job.failed"
#: Audit event kind for a certificate the station voided (never reached a board, or rework).
CERTIFICATE_VOIDED = "ca.certificate_voided"


class JobLedger:
    """Creates and advances job rows for one slot's worker.

    Args:
        store: the identity store (the worker's own connection).
        clock: the station clock.
        station_id: written into audit events.
        operator: the operator running the slot.
    """

    def __init__(self, store: UnitOfWork, *, clock: Clock, station_id: str, operator: str):
        self._store = store
        self._clock = clock
        self._station = station_id
        self._operator = operator

    def create(
        self, *, slot: str, batch: str, serial: str, step: str, registration_id: str = ""
    ) -> JobRecord:
        """Insert a new running job for board ``serial`` at ``step`` (one commit)."""
        now = format_time(self._clock.now())
        return self._store.jobs.save(
            JobRecord(
                slot=slot,
                batch=batch,
                state=JobState.RUNNING,
                step=step,
                created_at=now,
                updated_at=now,
                board_serial=serial,
                registration_id=registration_id,
                data={"phase": "started", "operator": self._operator},
            )
        )

    def open_for(self, serial: str) -> list[JobRecord]:
        """Open jobs (not passed, not voided) of the board with this serial, oldest first."""
        return [job for job in self._store.jobs.open() if job.board_serial == serial]

    def open_for_registration(self, registration_id: str) -> list[JobRecord]:
        """Open jobs that already formed this registration ID."""
        return [j for j in self._store.jobs.open() if j.registration_id == registration_id]

    def advance(
        self,
        job: JobRecord,
        *,
        step: str | None = None,
        state: JobState = JobState.RUNNING,
        registration_id: str | None = None,
        slot: str | None = None,
        **data: Any,
    ) -> JobRecord:
        """Persist the job's new step, state and data (merged into the existing data)."""
        check_job_transition(job.state, state)
        merged = {**job.data, **data}
        return self._store.jobs.save(
            replace(
                job,
                state=state,
                step=job.step if step is None else step,
                slot=job.slot if slot is None else slot,
                registration_id=(
                    job.registration_id if registration_id is None else registration_id
                ),
                data=merged,
                updated_at=format_time(self._clock.now()),
            )
        )

    def failed(
        self,
        job: JobRecord | None,
        *,
        batch: str,
        serial: str,
        reason: str,
        code: str,
        interrupted: bool,
        **changes: Any,
    ) -> JobRecord | None:
        """Record a failed attempt: the job goes ``interrupted`` (resume) or ``failed``.

        ``changes`` (what the run learnt and had not committed yet) go into the same update. The
        ``job.failed`` audit event (payload: batch, reason, code) is what the batch report
        counts, so it is written for every failed attempt, with or without a job row.
        """
        with self._store:
            if job is not None and not job.state.is_final:
                target = JobState.INTERRUPTED if interrupted else JobState.FAILED
                job = self.advance(
                    job, state=target, phase="failed", reason=reason, code=code, **changes
                )
            self._store.audit.append(
                EventDraft(
                    kind=JOB_FAILED,
                    subject=serial or (job.board_serial if job else "") or "unknown-board",
                    payload={"batch": batch, "reason": reason, "code": code},
                    operator=self._operator,
                    station=self._station,
                )
            )
        return job

    def issued_certificates(self, job: JobRecord) -> list[CertificateRecord]:
        """Certificates issued for this job that are still only ``issued`` (not on a device)."""
        if not job.registration_id or job.id is None:
            return []
        return [
            cert
            for cert in self._store.certificates.for_device(job.registration_id)
            if cert.job_id == job.id and cert.status == CertificateStatus.ISSUED
        ]

    def void_certificate(self, cert: CertificateRecord, reason: str) -> None:
        """Mark an issuance-log entry voided, with an audit event naming the reason."""
        with self._store:
            self._store.certificates.save(
                replace(cert, status=CertificateStatus.VOIDED, void_reason=reason)
            )
            self._store.audit.append(
                EventDraft(
                    kind=CERTIFICATE_VOIDED,
                    subject=cert.registration_id,
                    payload={"serial": cert.serial_number, "reason": reason},
                    operator=self._operator,
                    station=self._station,
                )
            )

    def void(self, job: JobRecord, reason: str) -> JobRecord:
        """Void a job that will not be resumed, voiding every certificate it left ``issued``."""
        with self._store:
            for cert in self.issued_certificates(job):
                self.void_certificate(cert, reason)
            if job.state is JobState.RUNNING:
                job = self.advance(job, state=JobState.INTERRUPTED)
            job = self.advance(job, state=JobState.VOIDED, phase="voided", void_reason=reason)
            self._store.audit.append(
                EventDraft(
                    kind="job.voided",
                    subject=job.board_serial or f"job-{job.id}",
                    payload={"job": job.id, "batch": job.batch, "reason": reason},
                    operator=self._operator,
                    station=self._station,
                )
            )
        return job
