"""QA's device panel on a provisioned lab board, buttons that follow the data, and voiding a
cut-off board's job from the window when sealing its batch is refused."""

from __future__ import annotations

import json

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication, QTreeWidget, QTreeWidgetItem

from station.domain.states import JobState
from station_lab.boards.faults import Faults
from tests.support.gui import WAIT_MS, log_in
from tests.support.rig import BATCHES, Rig


def _rows(tree: QTreeWidget) -> list[str]:
    return [tree.topLevelItem(i).text(2) for i in range(tree.topLevelItemCount())]


def _path(item: QTreeWidgetItem | None) -> list[QTreeWidgetItem]:
    found = []
    while item is not None:
        found.append(item)
        item = item.child(0) if item.childCount() else None
    return found


def _status(batches, name: str) -> str:
    for row in range(batches.table.rowCount()):
        if batches.table.item(row, 0).text() == name:
            return batches.table.item(row, 2).text()
    return ""


def _actions(qa) -> dict[str, bool]:
    return {
        "print": qa.print_button.isEnabled(),
        "reprint": qa.reprint_button.isEnabled(),
        "rework": qa.rework_button.isEnabled(),
        "void": qa.void_button.isEnabled(),
    }


def test_qa_reads_the_device_panel_and_voids_a_cut_off_job_to_seal(
    qtbot, rig: Rig, lab_station, window_of
):
    good, cut = rig.lab.start(1, "se")[0], rig.lab.start(1, "se", Faults(unplug_at="csr"))[0]
    assert rig.run(good.port, "WO-X509", operator="terry").passed
    assert not rig.run(cut.port, "WO-X509", operator="terry", slot="s2").passed
    rid = f"lab-{good.serial.lower()}"
    window = window_of(lab_station)
    log_in(qtbot, window, "quentin")
    window.show_view("QA")
    qa = window.qa
    assert _actions(qa) == {"print": False, "reprint": False, "rework": False, "void": True}

    qa.search.setText(good.serial)
    qa.search_button.click()
    qtbot.waitUntil(lambda: qa.current is not None, timeout=WAIT_MS)
    identity = {field: label.text() for field, label in qa.identity_labels.items()}
    assert identity["serial"] == good.serial
    assert identity["product"] == "lab-x509 / WO-X509"
    assert identity["provisioned"].endswith("by terry at station " + rig.config.station.id)
    assert identity["fingerprint"].startswith("certificate SHA-256 ")
    # the chain as a tree: the lab root, the station's intermediate, the device certificate
    root, intermediate, device = _path(qa.chain.topLevelItem(0))
    assert "NOT FOR PRODUCTION" in root.text(0) and root.text(0).endswith("(root)")
    assert intermediate.text(0) == "O=ACME,CN=Line 1 CA (intermediate)"
    assert device.text(0) == f"CN={rid} (device)"
    assert device.toolTip(0).startswith("serial number ")
    assert device.text(3) == "installed"
    assert root.text(1) <= intermediate.text(1) <= device.text(1) < device.text(2)
    assert [qa.label_history.topLevelItem(0).text(0)] == ["none printed yet"]
    assert "device.recorded" in _rows(qa.timeline)
    assert not qa.manifest.isVisibleTo(qa) and qa.json_button.text() == "Show JSON"
    qa.json_button.click()
    assert qa.manifest.isVisibleTo(qa) and qa.json_button.text() == "Hide JSON"
    assert json.loads(qa.manifest.toPlainText())["registration_id"] == rid
    # a first print, then only reprints
    assert _actions(qa) == {"print": True, "reprint": False, "rework": True, "void": True}
    qa.print_button.click()
    qtbot.waitUntil(lambda: qa.reprint_button.isEnabled(), timeout=WAIT_MS)
    assert not qa.print_button.isEnabled()
    assert qa.label_history.topLevelItem(0).text(1) == "print"
    assert qa.label_history.topLevelItem(0).text(2) == "quentin"

    # a search that finds nothing: no device selected, no device action possible
    qa.search.setText("nothing-like-this")
    qa.search_button.click()
    qtbot.waitUntil(lambda: qa.status.text() == "No devices match.", timeout=WAIT_MS)
    assert qa.current is None and not qa.table.selectionModel().hasSelection()
    assert qa.title.text() == "Select a device"
    assert _actions(qa) == {"print": False, "reprint": False, "rework": False, "void": True}
    # a detail that arrives after the choice changed is dropped, not shown
    qa.show_device(rid)
    qa.clear_device()
    QThreadPool.globalInstance().waitForDone(WAIT_MS)
    QApplication.processEvents()  # the answer's queued signal is delivered now
    assert qa.current is None and qa.title.text() == "Select a device"

    # Batches: an open batch cannot be exported or pushed; sealing waits for the cut-off job
    window.show_view("Batches")
    batches = window.batches
    qtbot.waitUntil(lambda: batches.table.rowCount() == len(BATCHES), timeout=WAIT_MS)
    batches.select("WO-X509")
    assert batches.seal_button.isEnabled() and batches.void_button.isEnabled()
    assert not batches.export_button.isEnabled() and not batches.push_button.isEnabled()
    assert batches.export_button.toolTip() == "Seal the batch first."
    batches.seal_button.click()
    qtbot.waitUntil(lambda: "unresolved job" in batches.message.text(), timeout=WAIT_MS)
    assert "Void open jobs…" in batches.message.text()
    assert "station " not in batches.message.text()  # said for the window, not the CLI
    assert "Press Void open jobs…" in batches.results.toPlainText()
    batches.void_button.click()
    dialog = batches.void_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=WAIT_MS)
    (job,) = lab_station.provisioning().open_jobs("WO-X509")
    assert dialog.table.item(0, 3).text() == cut.serial
    dialog.check(job.id)
    assert not dialog.void_button.isEnabled()  # no reason yet
    dialog.reason.setText("board dropped, scrapped")
    dialog.void_button.click()
    qtbot.waitUntil(lambda: "0 open job(s) left" in dialog.message.text(), timeout=WAIT_MS)
    voided = lab_station.store().jobs.get(job.id)
    assert voided is not None and voided.state is JobState.VOIDED
    (event,) = [
        e for e in lab_station.store().audit.events_for(cut.serial) if e.kind == "job.voided"
    ]
    assert event.operator == "quentin" and event.payload["reason"] == "board dropped, scrapped"
    dialog.accept()

    batches.select("WO-X509")
    batches.seal_button.click()
    qtbot.waitUntil(lambda: "sealed: 1 device(s)" in batches.message.text(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: _status(batches, "WO-X509") == "sealed", timeout=WAIT_MS)
    batches.select("WO-X509")
    assert batches.export_button.isEnabled() and not batches.seal_button.isEnabled()
    assert not batches.void_button.isEnabled()
    rig.verify()
