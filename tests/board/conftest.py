"""Fixtures for board-link tests: a lab of real virtual boards (ptys, swtpm) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from station.adapters.board.session import BoardSession, open_session
from station_lab.boards.runner import LabBoards


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LabBoards]:
    """A lab runner (unpaced link, so tests are fast); every board stops at teardown.

    Python boards unless parametrized indirectly with ``c`` (the C agent's host port).
    """
    runner = LabBoards(tmp_path / "lab", baud=0, firmware=getattr(request, "param", "python"))
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def connect() -> Iterator[object]:
    """Open sessions to board ports; all are closed at teardown."""
    sessions: list[BoardSession] = []

    def _open(port: str, **options: float) -> BoardSession:
        session = open_session(
            port,
            timeout_s=options.get("timeout_s", 2.0),
            slow_timeout_s=options.get("slow_timeout_s", 10.0),
            retries=int(options.get("retries", 3)),
        )
        sessions.append(session)
        return session

    yield _open
    for session in sessions:
        session.close()
