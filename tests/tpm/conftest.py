"""TPM identity tests: readers over board sessions (boards and sessions: tests/support)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from station.adapters.board.session import BoardSession
from station.adapters.tpm.identity import BoardTpmIdentityReader


@pytest.fixture
def readers() -> Iterator[Callable[[BoardSession], BoardTpmIdentityReader]]:
    """Build TPM readers over sessions; all are closed at teardown."""
    made: list[BoardTpmIdentityReader] = []

    def _make(session: BoardSession) -> BoardTpmIdentityReader:
        reader = BoardTpmIdentityReader(session, port=session.port)
        made.append(reader)
        return reader

    yield _make
    for reader in made:
        reader.close()
