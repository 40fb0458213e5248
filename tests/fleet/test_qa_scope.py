"""The QA view's fleet scope: one search shows a board from every station (real ledger)."""

from __future__ import annotations

from station.gui.qa_view import QaView
from tests.support.gui import WAIT_MS


def test_qa_searches_the_whole_fleet(qtbot, fleet_of, make_manifest) -> None:
    a, b = fleet_of("line-a"), fleet_of("line-b")
    a.record(make_manifest, "SN0042", registration_id="dev-a42")
    b.record(make_manifest, "SN0042", registration_id="dev-b42", operator="bob")
    for station in (a, b):
        assert station.station.fleet_replicator().sync().error == ""
    view = QaView(a.station)
    qtbot.addWidget(view)

    assert not view.scope.isHidden()  # shown because this station has a ledger
    view.scope.setCurrentIndex(1)
    view.search.setText("SN0042")
    view.refresh()
    qtbot.waitUntil(lambda: "across the fleet" in view.title.text(), timeout=WAIT_MS)

    text = view.manifest.toPlainText()
    assert not view.manifest.isHidden()
    assert "line-a: dev-a42" in text and "line-b: dev-b42" in text
    assert "duplicate serial SN0042" in text and "bob" in text


def test_the_scope_is_hidden_without_a_ledger(qtbot, station) -> None:
    view = QaView(station)
    qtbot.addWidget(view)
    assert view.scope.isHidden()
