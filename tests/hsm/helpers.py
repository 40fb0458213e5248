"""Real key stores for tests: SoftHSM2 tokens and swtpm processes (shared by tests/hsm, tests/ca)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hsm.softhsm import SoftHsmToken, activate, create_token
from station_lab.swtpm import SocketSwtpm


def fresh_token(directory: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsmToken:
    """A new token in ``directory`` (its own token dir); this process switches to it."""
    token = create_token(directory, f"t-{uuid.uuid4().hex[:8]}", pin="1234")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    activate(token.conf)
    return token


@contextmanager
def swtpm_process() -> Iterator[str]:
    """Run swtpm on a unix socket; yield its TCTI string; always stop it."""
    with SocketSwtpm() as tpm:
        yield f"swtpm:{tpm.tcti_conf}"
