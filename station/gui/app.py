"""``station gui``: start the Qt application on a built station."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from station.bootstrap import Station
from station.gui.main_window import MainWindow


def run(station: Station) -> int:
    """Show the main window and run the event loop until it closes."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(station)
    if station.config.gui.hotplug:
        window.start_hotplug()
    window.show()
    return int(app.exec())
