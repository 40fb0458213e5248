"""Label use cases against the in-memory fake and the real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.domain.audit import verify_chain
from station.domain.errors import (
    LabelAlreadyPrintedError,
    LabelError,
    NotFoundError,
    PermissionDeniedError,
    PrinterOfflineError,
    ReprintReasonMissingError,
    ScanMismatchError,
)
from station.domain.labels.model import LabelData
from station.domain.labels.payloads import compact_payload
from station.domain.records import JobRecord, OperatorRecord, Role
from station.domain.states import DeviceStatus, JobState
from tests.support.label_records import device_record, tpm_manifest
from tests.support.labels import decode_page, seed


def kinds(store) -> list[tuple[str, str]]:
    return [(e.kind, e.subject) for e in store.audit.events()]


def test_print_is_counted_and_audited_once(store, make_service, tmp_path: Path) -> None:
    rid = seed(store)[0]
    service = make_service()
    outcome = service.print_device(rid.upper(), operator="tina")  # any case finds the device
    assert outcome.kind == "print" and outcome.registration_ids == (rid,)
    saved = tmp_path / "out" / "label.pdf"
    assert outcome.receipt.job == str(saved)
    assert decode_page(saved.read_bytes()) == [rid]
    [record] = store.labels.for_device(rid)
    assert (record.kind, record.template, record.operator) == ("print", "device-50x25", "tina")
    assert ("label.printed", rid) in kinds(store)
    with pytest.raises(LabelAlreadyPrintedError, match="already has a printed label") as caught:
        service.print_device(rid, operator="tina")
    assert "reprint" in caught.value.remedy
    assert len(store.labels.for_device(rid)) == 1


def test_print_finds_a_device_by_serial(store, make_service) -> None:
    seed(store)
    outcome = make_service().print_device("SN-2026-000123", operator="tina")
    assert outcome.registration_ids == (tpm_manifest().registration_id,)
    with pytest.raises(NotFoundError):
        make_service().print_device("no-such-device", operator="tina")


def test_failed_print_is_not_counted_but_is_audited(store, make_service) -> None:
    rid = seed(store)[0]
    with pytest.raises(PrinterOfflineError):
        make_service().print_device(rid, printer="broken", operator="tina")
    assert store.labels.for_device(rid) == []
    [failed] = [e for e in store.audit.events() if e.kind == "label.print_failed"]
    assert failed.subject == rid and failed.payload["error"] == "printer.offline"
    make_service().print_device(rid, operator="tina")  # the first successful print is still a print
    assert [r.kind for r in store.labels.for_device(rid)] == ["print"]


def test_reprint_needs_qa_role_and_a_reason(store, make_service) -> None:
    rid = seed(store)[0]
    make_service().print_device(rid, operator="tina")
    with pytest.raises(PermissionDeniedError, match="qa"):
        make_service().reprint(rid, reason="torn", operator="tina")
    with pytest.raises(PermissionDeniedError, match="nobody is logged in"):
        make_service().reprint(rid, reason="torn", operator="")
    with pytest.raises(ReprintReasonMissingError):
        make_service().reprint(rid, reason="   ", operator="quinn")
    assert [r.kind for r in store.labels.for_device(rid)] == ["print"]
    assert not any(kind == "label.reprinted" for kind, _ in kinds(store))

    first = make_service().reprint(rid, reason="torn at packing", operator="quinn")
    second = make_service().reprint(rid, reason="smudged", operator="quinn")
    assert (first.reprint_number, second.reprint_number) == (1, 2)
    log = store.labels.for_device(rid)
    assert [(r.kind, r.reason, r.operator) for r in log] == [
        ("print", "", "tina"),
        ("reprint", "torn at packing", "quinn"),
        ("reprint", "smudged", "quinn"),
    ]
    reprints = [e for e in store.audit.events() if e.kind == "label.reprinted"]
    assert [(e.payload["reason"], e.payload["reprint_number"]) for e in reprints] == [
        ("torn at packing", 1),
        ("smudged", 2),
    ]
    assert all(e.operator == "quinn" for e in reprints)
    assert (
        verify_chain(store.audit.events()) is None
    )  # the label events are part of the audit chain


def test_reprint_of_a_never_printed_label_is_refused(store, make_service) -> None:
    rid = seed(store)[0]
    with pytest.raises(LabelError, match="print it first"):
        make_service().reprint(rid, reason="lost", operator="quinn")


def test_disabled_qa_operator_cannot_reprint(store, make_service) -> None:
    rid = seed(store)[0]
    make_service().print_device(rid, operator="tina")
    store.operators.save(OperatorRecord("quinn", Role.QA, False, "2026-11-01T00:00:00Z"))
    with pytest.raises(PermissionDeniedError, match="disabled"):
        make_service().reprint(rid, reason="torn", operator="quinn")


def test_voided_devices_get_no_label(store, make_service) -> None:
    seed(store)
    voided = tpm_manifest("voided-device-1", serial="SN-V1", status=DeviceStatus.VOIDED)
    store.devices.save(device_record(voided, event_seq=9))
    with pytest.raises(LabelError, match="voided"):
        make_service().print_device("voided-device-1", operator="tina")


def test_batch_print_prints_unlabelled_devices_on_a_sheet(store, make_service, printers) -> None:
    ids = seed(store)
    service = make_service()
    service.print_device(ids[0], operator="tina")
    outcome = service.print_batch("WO-4711", operator="tina")
    assert set(outcome.registration_ids) == set(ids[1:]) and outcome.skipped == (ids[0],)
    assert outcome.template == "sheet-a4-3x8"
    assert printers.jobs[-1][1] and len(printers.jobs[-1][1]) == 2
    assert all(len(store.labels.for_device(rid)) == 1 for rid in ids)
    with pytest.raises(LabelAlreadyPrintedError):
        service.print_batch("WO-4711", operator="tina")
    with pytest.raises(NotFoundError):
        service.print_batch("WO-0000", operator="tina")


def test_print_at_pass_hook_prints_once(store, make_service) -> None:
    rid = seed(store)[0]
    service = make_service()
    assert service.print_at_pass(rid, operator="tina") is not None
    assert (
        service.print_at_pass(rid, operator="tina") is None
    )  # a re-run does not print or count again
    assert len(store.labels.for_device(rid)) == 1


def test_verify_against_the_store(store, make_service) -> None:
    ids = seed(store)
    service = make_service()
    ok = service.verify(ids[1] + "\r\n", operator="tina")
    assert (ok.registration_id, ok.serial, ok.form) == (ids[1], "X-000042", "registration_id")
    with pytest.raises(ScanMismatchError, match="never recorded"):
        service.verify("unknown-device-123", operator="tina")
    with pytest.raises(ScanMismatchError, match="not a station label"):
        service.verify("https://example.com", operator="tina")
    assert [k for k, _ in kinds(store) if k.startswith("label.verif")] == [
        "label.verified",
        "label.verify_failed",
        "label.verify_failed",
    ]


def test_verify_against_an_expected_device_and_a_slot(store, make_service) -> None:
    ids = seed(store)
    service = make_service()
    with pytest.raises(ScanMismatchError, match="wrong label"):
        service.verify(ids[0], expected=ids[1], operator="tina")
    data = LabelData.from_manifest(tpm_manifest())
    assert (
        service.verify(compact_payload(data), expected="SN-2026-000123", operator="tina").form
        == "compact"
    )
    store.jobs.save(
        JobRecord(
            slot="3",
            batch="WO-4711",
            state=JobState.RUNNING,
            step="label",
            created_at="2026-11-26T08:00:00Z",
            updated_at="2026-11-26T08:00:00Z",
            board_serial="X-000042",
            registration_id=ids[1],
        )
    )
    assert service.verify(ids[1], slot="3", operator="tina").slot == "3"
    with pytest.raises(ScanMismatchError, match="slot 3"):
        service.verify(ids[2], slot="3", operator="tina")
    with pytest.raises(NotFoundError, match="slot 9"):
        service.verify(ids[1], slot="9", operator="tina")
    failed = [e for e in store.audit.events() if e.kind == "label.verify_failed"]
    assert [e.subject for e in failed] == [ids[1], ids[1]]
    assert failed[-1].payload["slot"] == "3"


def test_batch_report_counts(store, make_service, clock) -> None:
    from station.domain.audit import EventDraft

    ids = seed(store)
    service = make_service()
    service.print_device(ids[0], operator="tina")
    store.operators.save(OperatorRecord("quinn", Role.QA, True, "2026-11-01T00:00:00Z"))
    make_service().reprint(ids[0], reason="torn", operator="quinn")
    for reason in ("tpm timeout", "tpm timeout", "bad csr"):
        store.audit.append(
            EventDraft("job.failed", "slot-1", {"batch": "WO-4711", "reason": reason})
        )
    store.audit.append(EventDraft("job.failed", "slot-1", {"batch": "OTHER", "reason": "x"}))
    report = service.batch_report("WO-4711")
    assert report.passed == 3 and report.attempts == 6
    assert report.failure_reasons == (("tpm timeout", 2), ("bad csr", 1))
    assert dict(report.by_attestation) == {"symmetricKey": 1, "tpm": 1, "x509": 1}
    assert (report.labels_printed, report.labels_reprinted) == (1, 1)
    assert {d.registration_id for d in report.devices} == set(ids)
    assert report.product == "edgesense" and report.station == "station-07"
    assert service.batch_report_pdf("WO-4711").startswith(b"%PDF")
    with pytest.raises(NotFoundError):
        service.batch_report("WO-0000")


def test_default_folder_printer_names_files_by_job(store, make_service, tmp_path) -> None:
    ids = seed(store)
    folder = tmp_path / "saved"
    service = make_service(printer=f"file:{folder}/")
    first = service.print_at_pass(ids[0], operator="tina")
    assert first is not None and first.receipt.printer == f"file:{folder}/"
    assert first.receipt.job == str(folder / f"{ids[0]}.pdf")
    again = make_service(printer=f"file:{folder}/").reprint(ids[0], reason="x", operator="quinn")
    assert again.receipt.job == str(folder / f"{ids[0]}-reprint-1.pdf")
    assert sorted(p.name for p in folder.iterdir()) == [f"{ids[0]}-reprint-1.pdf", f"{ids[0]}.pdf"]


def test_station_wiring_saves_labels_in_the_output_folder(config, clock) -> None:
    from station.bootstrap import build_station

    station = build_station(config, clock=clock)
    try:
        rid = seed(station.store())[0]
        outcome = station.labels().print_at_pass(rid, operator="tina")
        assert outcome is not None
        assert outcome.receipt.job == str(config.labels_output_dir / f"{rid}.pdf")
        assert [r.kind for r in station.store().labels.for_device(rid)] == ["print"]
    finally:
        station.close()
