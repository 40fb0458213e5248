"""The hsm tests use the shared key stores (tests/support/keystores.py) and the token's PIN."""

from __future__ import annotations

import pytest

from hsm import PinSource
from hsm.softhsm import SoftHsmToken


@pytest.fixture
def pins(softhsm: SoftHsmToken) -> PinSource:
    """The token's PIN, as the station would get it from $STATION_PKCS11_PIN."""
    return PinSource(env={"STATION_PKCS11_PIN": softhsm.pin})
