"""Fonts and colours shared by the views: sizes relative to the system font, never pixels."""

from __future__ import annotations

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QWidget

#: result -> (background, text) colours of a slot tile; readable from across the room
RESULT_COLOURS: dict[str, tuple[str, str]] = {
    "idle": ("#d0d4d8", "#202428"),
    "running": ("#1f6fd1", "#ffffff"),
    "PASS": ("#1a8f3c", "#ffffff"),
    "FAIL": ("#c62828", "#ffffff"),
    "needs QA": ("#f2a900", "#202428"),
    "SCAN SERIAL": ("#6a1b9a", "#ffffff"),  # the technician acts: scan the board's sticker
    "WAITING": ("#455a64", "#ffffff"),  # a board arrived while locked: it starts at the login
    "SWAP BOARD": ("#00695c", "#ffffff"),  # the passed board is still in: swap in the next one
}


def scaled_font(widget: QWidget, factor: float, *, bold: bool = False) -> QFont:
    """The widget's font scaled by ``factor`` in points (follows the system font size)."""
    font = QFont(widget.font())
    size = font.pointSizeF()
    if size > 0:
        font.setPointSizeF(size * factor)
    font.setBold(bold)
    return font
