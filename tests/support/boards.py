"""Virtual boards for tests: a lab runner per test and session openers, all stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
def connect() -> Iterator[Callable[..., BoardSession]]:
    """Open sessions to board ports; all are closed at teardown."""
    sessions: list[BoardSession] = []

    def _open(
        port: str, *, timeout_s: float = 2.0, slow_timeout_s: float = 10.0, retries: int = 3
    ) -> BoardSession:
        session = open_session(
            port, timeout_s=timeout_s, slow_timeout_s=slow_timeout_s, retries=int(retries)
        )
        sessions.append(session)
        return session

    yield _open
    for session in sessions:
        session.close()
