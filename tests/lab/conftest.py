"""Lab tests use the board-link fixtures: a lab of real virtual boards and session openers."""

from tests.board.conftest import connect, lab

__all__ = ["connect", "lab"]  # pytest finds fixtures by name in a conftest
