"""Label use cases: print, reprint (QA, with a reason), scan-back verify, batch report.

Counting rule: a label is counted (a ``LabelRecord`` plus a ``label.printed`` or
``label.reprinted`` audit event, in one transaction) only after the printer returned a receipt. A
printer error is recorded as ``label.print_failed`` and re-raised; nothing is counted.

A device gets exactly one *print*; every further copy is a *reprint*, which needs the QA or admin
role and a reason, and is numbered in the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from station.domain.audit import EventDraft, format_time
from station.domain.boards import slot_phrase
from station.domain.errors import (
    LabelAlreadyPrintedError,
    LabelError,
    NotFoundError,
    PrinterError,
    ReprintReasonMissingError,
    ScanMismatchError,
)
from station.domain.labels.model import LabelData, LabelTemplate
from station.domain.labels.reports import BatchReport, PrintReceipt, ReportDevice, summarize_batch
from station.domain.labels.scans import ScannedIdentity, parse_scanned
from station.domain.records import DeviceQuery, DeviceRecord, LabelKind, LabelRecord
from station.domain.states import DeviceStatus
from station.ports import Clock, LabelPrinters, LabelRenderer, LabelTemplates, UnitOfWork
from station.services.authz import Permission, require

# Audit kinds other workflows write when a provisioning attempt fails; payload has "batch" and
# "reason" (or "code"). The batch report's failure pareto counts these.
FAILURE_EVENT_KINDS = frozenset({"job.failed", "provision.failed"})
PAGE = 500


def failure_label(payload: Mapping[str, object]) -> str:
    """What a failure counts as in the pareto: its error code in words, else its reason.

    The reason text names the board and the step ("board LB1-007 is already provisioned ..."),
    so grouping by it would give one bar per board; the code is the same for every board.
    """
    code = str(payload.get("code") or "")
    if code:
        return code.split(".", 1)[-1].replace("_", " ")
    return str(payload.get("reason") or "unknown")


@dataclass(frozen=True)
class PrintOutcome:
    """What was printed, where, and how it was recorded."""

    receipt: PrintReceipt
    template: str
    registration_ids: tuple[str, ...]
    kind: LabelKind
    skipped: tuple[str, ...] = ()  # batch prints: devices that already had a label
    reprint_number: int = 0


@dataclass(frozen=True)
class VerifyResult:
    """A scan-back that matched."""

    registration_id: str
    serial: str
    form: str
    slot: str = ""


@dataclass
class LabelService:
    """Print, reprint, verify and report, against the identity store and the printers."""

    store: UnitOfWork
    templates: LabelTemplates
    printers: LabelPrinters
    renderer: LabelRenderer
    clock: Clock
    station_id: str
    default_template: str = "device-50x25"
    batch_template: str = "sheet-a4-3x8"
    default_printer: str = ""

    # ------------------------------------------------------------------ lookups
    def find_device(self, ref: str) -> DeviceRecord:
        """Find a device by registration ID (any case) or board serial.

        Raises:
            NotFoundError: no such device.
        """
        record = self.store.devices.get(ref.strip().lower())
        if record is not None:
            return record
        matches = self.store.devices.find(DeviceQuery(serial=ref.strip(), limit=2))
        if len(matches) == 1:
            return matches[0]
        raise NotFoundError(
            f"no device with registration ID or serial {ref!r}",
            remedy="Check the ID on the board, or search with 'station devices show KEY'.",
            device=ref,
        )

    def template(self, name: str | None = None) -> LabelTemplate:
        """Return a template by name (default: the configured device label)."""
        return self.templates.get(name or self.default_template)

    # ------------------------------------------------------------------ printing
    def print_device(
        self,
        ref: str,
        *,
        template: str | None = None,
        printer: str | None = None,
        operator: str,
    ) -> PrintOutcome:
        """Print the first label of one device (``operator``: who prints).

        Raises:
            LabelAlreadyPrintedError: it already has one (a further copy is a reprint).
            PermissionDeniedError: nobody (or an unknown or disabled operator) is logged in.
            PrinterError: the printer failed; nothing is counted.
        """
        require(self.store, operator, Permission.PRINT_LABEL)
        device = self.find_device(ref)
        self._require_provisioned(device)
        if self.store.labels.for_device(device.registration_id):
            raise LabelAlreadyPrintedError(
                f"device {device.registration_id} already has a printed label",
                remedy='Ask QA to reprint it: station label reprint DEVICE --reason "..."',
                registration_id=device.registration_id,
            )
        return self._print(
            [device],
            template or self.default_template,
            printer,
            kind=LabelKind.PRINT,
            operator=operator,
        )

    def print_at_pass(self, registration_id: str, *, operator: str) -> PrintOutcome | None:
        """Hook for the provisioning workflow: print the device label when a board passes.

        ``operator`` is who provisioned the board.

        Returns ``None`` when the device already has a label (a re-run must not count twice).
        Printer errors propagate, so the slot can show them; nothing is counted then.
        """
        require(self.store, operator, Permission.PRINT_LABEL)
        device = self.find_device(registration_id)
        if self.store.labels.for_device(device.registration_id):
            return None
        return self._print(
            [device], self.default_template, None, kind=LabelKind.PRINT, operator=operator
        )

    def print_batch(
        self,
        batch: str,
        *,
        template: str | None = None,
        printer: str | None = None,
        operator: str,
    ) -> PrintOutcome:
        """Print labels for every provisioned device of a batch that has none yet (by ``operator``).

        Raises:
            NotFoundError: no such batch or no provisioned device in it.
            LabelAlreadyPrintedError: every device already has a label.
            PermissionDeniedError: nobody (or an unknown or disabled operator) is logged in.
        """
        require(self.store, operator, Permission.PRINT_LABEL)
        devices = list(self._batch_devices(batch, status=str(DeviceStatus.PROVISIONED)))
        if not devices:
            raise NotFoundError(
                f"batch {batch!r} has no provisioned devices",
                remedy="Check the batch name with 'station devices list --batch'.",
                batch=batch,
            )
        todo = [d for d in devices if not self.store.labels.for_device(d.registration_id)]
        skipped = tuple(d.registration_id for d in devices if d not in todo)
        if not todo:
            raise LabelAlreadyPrintedError(
                f"every device of batch {batch!r} already has a label",
                remedy="Reprint single labels with 'station label reprint' (QA).",
                batch=batch,
            )
        outcome = self._print(
            todo, template or self.batch_template, printer, kind=LabelKind.PRINT, operator=operator
        )
        return PrintOutcome(
            outcome.receipt, outcome.template, outcome.registration_ids, LabelKind.PRINT, skipped
        )

    def reprint(
        self,
        ref: str,
        *,
        reason: str,
        template: str | None = None,
        printer: str | None = None,
        operator: str,
    ) -> PrintOutcome:
        """Print another copy of a device's label (``operator``: QA or admin; a reason is required).

        Raises:
            PermissionDeniedError: the operator is not QA or admin.
            ReprintReasonMissingError: no reason given.
            LabelError: the device never had a label (print it first).
        """
        require(self.store, operator, Permission.REPRINT_LABEL)
        why = reason.strip()
        if not why:
            raise ReprintReasonMissingError(
                "a reprint needs a reason",
                remedy='Say why, e.g. --reason "label damaged at packing".',
            )
        device = self.find_device(ref)
        self._require_provisioned(device)
        history = self.store.labels.for_device(device.registration_id)
        if not history:
            raise LabelError(
                f"device {device.registration_id} has no label yet; print it first",
                remedy="Use 'station label print DEVICE'.",
                registration_id=device.registration_id,
            )
        number = 1 + sum(1 for label in history if label.kind == LabelKind.REPRINT)
        return self._print(
            [device],
            template or history[-1].template,
            printer,
            kind=LabelKind.REPRINT,
            reason=why,
            reprint_number=number,
            operator=operator,
        )

    def _print(
        self,
        devices: Sequence[DeviceRecord],
        template_name: str,
        printer_spec: str | None,
        *,
        kind: LabelKind,
        reason: str = "",
        reprint_number: int = 0,
        operator: str,
    ) -> PrintOutcome:
        template = self.templates.get(template_name)
        labels = [LabelData.from_manifest(d.manifest()) for d in devices]
        spec = printer_spec or self.default_printer
        if not spec:
            raise LabelError(
                "no printer chosen",
                remedy="Pass --printer NAME or --out FILE, or set [labels] printer in the config.",
            )
        printer = self.printers.printer(spec)
        title = devices[0].registration_id if len(devices) == 1 else f"batch-{devices[0].batch}"
        if kind is LabelKind.REPRINT:
            title += f"-reprint-{reprint_number}"
        try:
            receipt = printer.print_labels(template, labels, title=title)
        except PrinterError as exc:
            with self.store:
                for device in devices:
                    self._event(
                        "label.print_failed",
                        device,
                        {"kind": str(kind), "printer": printer.name, "template": template.name,
                         "error": exc.code, "message": exc.message},
                        operator,
                    )  # fmt: skip
            raise
        printed_at = format_time(self.clock.now())
        with self.store:
            for device in devices:
                self.store.labels.save(
                    LabelRecord(
                        registration_id=device.registration_id,
                        template=template.name,
                        printer=receipt.printer,
                        kind=str(kind),
                        operator=operator,
                        printed_at=printed_at,
                        reason=reason,
                    )
                )
                payload: dict[str, str | int] = {
                    "printer": receipt.printer,
                    "template": template.name,
                    "job": receipt.job,
                }
                if kind is LabelKind.REPRINT:
                    payload |= {"reason": reason, "reprint_number": reprint_number}
                self._event(f"label.{kind}ed", device, payload, operator)
        return PrintOutcome(
            receipt=receipt,
            template=template.name,
            registration_ids=tuple(d.registration_id for d in devices),
            kind=kind,
            reprint_number=reprint_number,
        )

    # ------------------------------------------------------------------ scan-back
    def verify(
        self, scanned: str, *, slot: str = "", expected: str = "", operator: str
    ) -> VerifyResult:
        """Check a scanned label against the device in ``slot``, ``expected``, or the store.

        ``operator`` (who scans) is named in the audit event.

        Raises:
            ScanMismatchError: unreadable code, unknown device, or another device's label.
            NotFoundError: no device is in ``slot``.
            PermissionDeniedError: nobody (or an unknown or disabled operator) is logged in.
        """
        require(self.store, operator, Permission.VERIFY_LABEL)
        try:
            identity = parse_scanned(scanned)
            want_rid, want_serial = self._expected(identity, slot=slot, expected=expected)
        except ScanMismatchError as exc:
            with self.store:
                self.store.audit.append(
                    EventDraft(
                        kind="label.verify_failed",
                        subject=expected or slot or "unknown",
                        payload={"slot": slot, "scanned": scanned[:200], "why": exc.message},
                        operator=operator,
                        station=self.station_id,
                    )
                )
            raise
        problem = ""
        if identity.registration_id != want_rid:
            problem = f"it carries {identity.registration_id}, expected {want_rid}"
        elif identity.serial and identity.serial != want_serial:
            problem = f"it carries serial {identity.serial}, expected {want_serial}"
        # a label for a finished device that never had one printed here was made elsewhere
        never_printed = not problem and not slot and not self.store.labels.for_device(want_rid)
        if never_printed:
            problem = "this station never printed a label for it"
        payload = {
            "slot": slot,
            "form": identity.form,
            "scanned_registration_id": identity.registration_id,
        }
        with self.store:
            self.store.audit.append(
                EventDraft(
                    kind="label.verify_failed" if problem else "label.verified",
                    subject=want_rid,
                    payload=payload | ({"why": problem} if problem else {}),
                    operator=operator,
                    station=self.station_id,
                )
            )
        if never_printed:
            raise ScanMismatchError(
                f"not a label this station printed: device {want_rid} never had a label printed",
                remedy="Take this label off and print the device's label "
                "('station label print DEVICE'), then scan that one.",
                expected=want_rid,
                scanned=identity.registration_id,
            )
        if problem:
            where = f"the board in {slot_phrase(slot)}" if slot else f"device {want_rid}"
            raise ScanMismatchError(
                f"wrong label: the scanned label does not belong to {where}; {problem}",
                remedy="Take this label off, find the right one (or reprint it) and scan again.",
                expected=want_rid,
                scanned=identity.registration_id,
                slot=slot,
            )
        return VerifyResult(identity.registration_id, want_serial, identity.form, slot)

    def _expected(self, identity: ScannedIdentity, *, slot: str, expected: str) -> tuple[str, str]:
        if slot:
            jobs = [job for job in self.store.jobs.open() if job.slot == slot]
            if not jobs:
                raise NotFoundError(
                    f"no board is being provisioned in {slot_phrase(slot)}",
                    remedy="Check the slot number, or verify against the device: --device ID.",
                    slot=slot,
                )
            job = jobs[-1]
            if job.registration_id:
                record = self.store.devices.get(job.registration_id)
                return job.registration_id, record.serial if record else job.board_serial
            matches = self.store.devices.find(DeviceQuery(serial=job.board_serial, limit=1))
            if matches:
                return matches[0].registration_id, matches[0].serial
            return "", job.board_serial
        if expected:
            record = self.find_device(expected)
            return record.registration_id, record.serial
        found = self.store.devices.get(identity.registration_id)
        if found is None:
            raise ScanMismatchError(
                f"the scanned label names {identity.registration_id}, which this station never "
                "recorded",
                remedy="This label belongs to another station or is forged: set the device aside.",
                scanned=identity.registration_id,
            )
        return found.registration_id, found.serial

    # ------------------------------------------------------------------ previews and reports
    def preview_png(self, ref: str, *, template: str | None = None, dpi: int = 200) -> bytes:
        """A PNG preview of a device's label (for the GUI)."""
        device = self.find_device(ref)
        label = LabelData.from_manifest(device.manifest())
        return self.renderer.label_png(self.template(template), label, dpi=dpi)

    def batch_report(self, batch: str) -> BatchReport:
        """Collect the numbers of a batch: counts, yield, failure pareto, units per hour.

        Raises:
            NotFoundError: the batch has no record and no devices.
        """
        record = self.store.batches.get(batch)
        devices = list(self._batch_devices(batch))
        if record is None and not devices:
            raise NotFoundError(
                f"no batch called {batch!r}",
                remedy="Check the batch name (station devices list --batch B).",
                batch=batch,
            )
        members = {d.registration_id for d in devices}
        failures: list[str] = []
        printed = reprinted = 0
        for event in self.store.audit.events():
            if event.kind in FAILURE_EVENT_KINDS:
                data = event.payload
                if data.get("batch") == batch:
                    failures.append(failure_label(data))
            elif event.kind in ("label.printed", "label.reprinted") and event.subject in members:
                if event.kind == "label.printed":
                    printed += 1
                else:
                    reprinted += 1
        rows = []
        for device in devices:
            manifest = device.manifest()
            rows.append(
                ReportDevice(
                    registration_id=device.registration_id,
                    serial=device.serial,
                    attestation=device.attestation,
                    status=str(device.status),
                    thumbprint=device.cert_thumbprint or device.ek_sha256,
                    provisioned_at=manifest.provisioned_at,
                )
            )
        return summarize_batch(
            batch=batch,
            product=record.product if record else (devices[0].product if devices else ""),
            station=self.station_id,
            generated_at=self.clock.now(),
            devices=rows,
            failures=failures,
            labels_printed=printed,
            labels_reprinted=reprinted,
        )

    def batch_report_pdf(self, batch: str) -> bytes:
        """The batch report as a PDF."""
        return self.renderer.report_pdf(self.batch_report(batch))

    # ------------------------------------------------------------------ helpers
    def _batch_devices(self, batch: str, *, status: str = "") -> Iterator[DeviceRecord]:
        offset = 0
        while True:
            page = self.store.devices.find(
                DeviceQuery(batch=batch, status=status, limit=PAGE, offset=offset)
            )
            yield from page
            if len(page) < PAGE:
                return
            offset += PAGE

    def _require_provisioned(self, device: DeviceRecord) -> None:
        if device.status is not DeviceStatus.PROVISIONED:
            raise LabelError(
                f"device {device.registration_id} is {device.status}; only provisioned devices "
                "get labels",
                remedy="Finish (or redo) provisioning before printing its label.",
                registration_id=device.registration_id,
                status=str(device.status),
            )

    def _event(
        self, kind: str, device: DeviceRecord, payload: dict[str, str | int], operator: str
    ) -> None:
        self.store.audit.append(
            EventDraft(
                kind=kind,
                subject=device.registration_id,
                payload={"batch": device.batch, "serial": device.serial, **payload},
                operator=operator,
                station=self.station_id,
            )
        )
