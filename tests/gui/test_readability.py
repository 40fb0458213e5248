"""The line view at the screens it runs on: 16 slots fit 1366x768 and 1080p, results stay
readable, and text follows the system font."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QApplication

from station.bootstrap import Station
from station.domain.products import ProductAttestation
from station.domain.provision_events import Failed, Step, steps_for
from station.gui.main_window import MainWindow
from station.services.line import BatchChoice
from tests.support.gui import gui_config, log_in

SIXTEEN = tuple(f"slot-{n}" for n in range(1, 17))
WORST = "SCAN SERIAL"  # the widest result text


def _fail_every_tile(window: MainWindow) -> None:
    steps = steps_for(ProductAttestation.X509, lock=True)
    line = window.line
    line.model.choose(BatchChoice("WO-1", "widget", 16, 0, steps))
    for slot in line.tiles:
        line.model.plugged(slot, "/dev/ttyACM0", operator="terry")
        line.model.apply(
            Failed(
                slot,
                Step.CSR,
                "The board was unplugged or lost power during csr.",
                "Reseat the board (or its cable) in the same slot: the station resumes where "
                "it stopped.",
                "board.disconnected",
                "detail",
            )
        )
    line.refresh()


def _open(qtbot, plain_station, size: tuple[int, int]) -> MainWindow:
    station = Station(
        config=gui_config(plain_station.config, slot_names=SIXTEEN), clock=plain_station.clock
    )
    window = MainWindow(station)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    log_in(qtbot, window, "terry")
    return window


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_sixteen_failing_slots_fit_the_screen_and_stay_readable(qtbot, plain_station, size):
    window = _open(qtbot, plain_station, size)
    _fail_every_tile(window)
    QApplication.processEvents()

    line = window.line
    assert window.width() <= size[0] and window.height() <= size[1]  # the window did not grow
    grid = line.tile_area.widget()
    # every tile, with its reason and remedy, is on screen: nothing scrolls, nothing is cut
    assert grid.minimumSizeHint().height() <= line.tile_area.viewport().height()
    for tile in line.tiles.values():
        assert tile.result == "FAIL" and tile.reason_label.isVisible()
        assert tile.height() >= tile.minimumSizeHint().height()
        width = QFontMetrics(tile.result_label.font()).horizontalAdvance(WORST)
        assert width <= tile.result_label.width()
    window.lock()


def test_text_follows_the_system_font_and_never_gets_cut(qtbot, plain_station):
    app = QApplication.instance()
    normal = QFont(app.font())
    window = _open(qtbot, plain_station, (1366, 768))
    base = window.line.tiles["slot-1"].result_label.font().pointSizeF()
    window.close()
    bigger = QFont(normal)
    bigger.setPointSizeF(normal.pointSizeF() * 1.5)
    app.setFont(bigger)
    try:
        window = _open(qtbot, plain_station, (1366, 768))
        _fail_every_tile(window)
        QApplication.processEvents()
        line = window.line
        tile = line.tiles["slot-1"]
        assert tile.result_label.font().pointSizeF() == pytest.approx(base * 1.5, rel=0.05)
        assert line.scan.font().pointSizeF() > normal.pointSizeF() * 1.5  # the scan bar too
        # with a large font the grid may scroll, but no text is cut off sideways
        assert window.width() <= 1366
        for tile in line.tiles.values():
            width = QFontMetrics(tile.result_label.font()).horizontalAdvance(WORST)
            assert width <= tile.result_label.width()
        window.lock()
    finally:
        app.setFont(normal)
