"""The line view on lab boards: keyboard start, PASS, FAIL with its reason; then QA reprints."""

from __future__ import annotations

from PySide6.QtCore import Qt

from station.domain.errors import PermissionDeniedError
from station_lab.boards.faults import Faults
from tests.support.gui import WAIT_MS, log_in
from tests.support.rig import Rig


def test_line_provisions_lab_boards_to_pass_and_a_faulty_board_fails_with_its_reason(
    qtbot, rig: Rig, lab_station, window_of
):
    good = rig.lab.start(2, "se")
    (bad,) = rig.lab.start(1, "se", Faults(unplug_at="csr"))
    for slot, board in zip(("slot-1", "slot-2", "slot-3"), (*good, bad), strict=True):
        lab_station.discovery().bind_plugged(slot, board.location)
    window = window_of(lab_station)
    log_in(qtbot, window, "terry")
    line = window.line

    # a keyboard-wedge scan of the work order selects the batch
    qtbot.keyClicks(line.scan, "WO-X509")
    qtbot.keyClick(line.scan, "\r")
    qtbot.waitUntil(lambda: line.batch == "WO-X509", timeout=WAIT_MS)

    # keyboard only: focus each tile and press Enter
    for tile in line.tiles.values():
        tile.setFocus()
        qtbot.keyClick(tile, Qt.Key.Key_Return)
    tiles = line.tiles
    qtbot.waitUntil(
        lambda: all(t.result in ("PASS", "FAIL", "needs QA") for t in tiles.values()),
        timeout=300_000,
    )
    assert tiles["slot-1"].result == "PASS" and tiles["slot-2"].result == "PASS"
    assert good[0].serial in tiles["slot-1"].board_label.text()
    assert tiles["slot-1"].progress.value() == tiles["slot-1"].progress.maximum()
    failed = tiles["slot-3"]
    assert failed.result == "FAIL"
    assert "unplugged or lost power" in failed.reason_label.text()
    assert failed.remedy_label.text().startswith("What to do: Reseat the board")
    assert not failed.detail_label.isVisible()
    qtbot.keyClick(failed, Qt.Key.Key_D)  # technical detail on demand
    assert "board.disconnected" in failed.detail_label.text()
    assert line.passed == 2 and line.failed == 1
    assert "Passed 2" in line.counters.text() and "Failed 1" in line.counters.text()
    assert line.batch_progress.value() == 2

    # the technician cannot reprint: the button is off and the service refuses too
    rid = f"lab-{good[0].serial.lower()}"
    assert window.view_titles() == ["Line"]
    assert not window.qa.reprint_button.isEnabled()
    try:
        lab_station.labels().reprint(rid, reason="smudged", operator="terry")
    except PermissionDeniedError as exc:
        assert "terry is technician" in exc.message
    else:
        raise AssertionError("a technician reprinted a label")

    # QA: find the device, reprint without a reason is refused, with a reason it is recorded
    window.lock()
    log_in(qtbot, window, "quentin")
    window.show_view("QA")
    qa = window.qa
    qa.search.setText(good[0].serial)
    qa.search_button.click()
    qtbot.waitUntil(lambda: qa.current is not None, timeout=WAIT_MS)
    assert qa.current.registration_id == rid
    qtbot.waitUntil(
        lambda: qa.preview.pixmap() is not None and not qa.preview.pixmap().isNull(),
        timeout=WAIT_MS,
    )
    qa.print_button.click()  # the first label (the lab products do not print at pass)
    qtbot.waitUntil(lambda: "print sent" in qa.message.text(), timeout=WAIT_MS)
    labels_before = len(lab_station.store().labels.for_device(rid))
    assert labels_before == 1
    qa.reprint_button.click()
    assert "needs a reason" in qa.message.text()
    assert len(lab_station.store().labels.for_device(rid)) == labels_before
    qa.reason.setText("label torn at packing")
    qa.reprint_button.click()
    qtbot.waitUntil(lambda: "reprint sent" in qa.message.text(), timeout=WAIT_MS)
    history = lab_station.store().labels.for_device(rid)
    assert [label.kind for label in history] == ["print", "reprint"]
    assert history[-1].reason == "label torn at packing" and history[-1].operator == "quentin"

    # QA rework arms the line: the next board started there is voided and provisioned anew
    # (a locked board is factory-reset first: here, a fresh board state with the same serial)
    rig.lab.unplug(good[0].index)
    for child in good[0].state_dir.iterdir():
        if child.name != "board.log" and child.is_file():
            child.unlink()
    rig.lab.replug(good[0].index)
    qa.reason.setText("customer return, re-key")
    qa.rework_button.click()
    assert window.tabs.currentWidget() is line
    line.tiles["slot-1"].setFocus()
    qtbot.keyClick(line.tiles["slot-1"], Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tiles["slot-1"].result == "running", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tiles["slot-1"].result != "running", timeout=300_000)
    assert tiles["slot-1"].result == "PASS", tiles["slot-1"].reason_label.text()
    statuses = sorted(c.status for c in lab_station.store().certificates.for_device(rid))
    assert statuses == ["installed", "voided"]
    voided = [e for e in lab_station.store().audit.events_for(rid) if e.kind == "device.voided"]
    assert voided[-1].operator == "quentin"
    assert voided[-1].payload["reason"] == "rework: customer return, re-key"
    rig.verify()
