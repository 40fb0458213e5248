"""Real key stores for the hsm tests: a SoftHSM2 token per test, a swtpm process per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hsm import PinSource
from hsm.softhsm import SoftHsmToken
from tests.hsm.helpers import fresh_token, swtpm_process


@pytest.fixture(autouse=True)
def _quiet_tss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSS2_LOG", "all+none")


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsmToken:
    """A fresh SoftHSM2 token in this test's own token directory."""
    return fresh_token(tmp_path / "softhsm", monkeypatch)


@pytest.fixture
def pins(softhsm: SoftHsmToken) -> PinSource:
    """The token's PIN, as the station would get it from $STATION_PKCS11_PIN."""
    return PinSource(env={"STATION_PKCS11_PIN": softhsm.pin})


@pytest.fixture
def swtpm() -> Iterator[str]:
    """A swtpm process for this test; yields its TCTI string."""
    with swtpm_process() as tcti:
        yield tcti
