"""Values that carry a secret leave it out of their repr (logs, tracebacks, test output)."""

from __future__ import annotations

from hsm import PinSource
from station.domain.records import OperatorRecord, Role


def test_a_pin_source_repr_does_not_carry_the_pin() -> None:
    source = PinSource(env={"STATION_PKCS11_PIN": "918273"})
    assert source.resolve("the test token") == "918273"
    assert "918273" not in repr(source)


def test_an_operator_repr_leaves_out_the_pin_and_badge_hashes() -> None:
    record = OperatorRecord("tina", Role.TECHNICIAN, True, "2026", "scrypt$pinhash", "badgehash")
    assert "tina" in repr(record)
    assert "pinhash" not in repr(record) and "badgehash" not in repr(record)
