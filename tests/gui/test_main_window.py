from station.gui.main_window import MainWindow
from station.services.identities import record_identity


def test_window_lists_devices_and_searches_in_the_background(qtbot, station, make_manifest) -> None:
    for i in range(3):
        record_identity(
            station.store(), make_manifest(f"SN{i}"), clock=station.clock, station="s", operator="o"
        )

    window = MainWindow(station)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=10_000)
    assert "3 device(s)" in window.status.text()
    assert (
        window.model.headerData(0, __import__("PySide6.QtCore").QtCore.Qt.Orientation.Horizontal)
        == "Registration ID"
    )

    window.search.setText("SN1")
    window.search_button.click()
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=10_000)
    assert window.model.row(0).registration_id == "dev-sn1"

    window.search.setText("no-such-device")
    window.search_button.click()
    qtbot.waitUntil(lambda: window.status.text() == "No devices match.", timeout=10_000)
    assert window.model.rowCount() == 0
