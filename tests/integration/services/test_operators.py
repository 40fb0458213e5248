import sqlite3
from itertools import count

import pytest

from station.domain.errors import PermissionDeniedError, ValidationError
from station.domain.records import Role
from station.domain.secrets_hash import hash_secret, verify_secret
from station.services.authz import require_role
from station.services.integrity import verify_store
from station.services.operators import OperatorService


def service(station) -> OperatorService:
    counter = count()
    return OperatorService(
        station.store(),
        clock=station.clock,
        station_id="st",
        random_bytes=lambda n: bytes([next(counter) % 256]) * n,
    )


def test_secret_hash_round_trip_and_salt() -> None:
    one = hash_secret("1234", b"a" * 16)
    assert one.startswith("scrypt$") and "1234" not in one
    assert verify_secret("1234", one)
    assert not verify_secret("1235", one)
    assert hash_secret("1234", b"b" * 16) != one
    assert not verify_secret("1234", "garbage")


def test_admin_adds_operators_with_pin_and_badge_and_they_log_in(admin_station) -> None:
    ops = service(admin_station)
    tech = ops.add("tina", Role.TECHNICIAN, pin="246802", badge="BADGE-0042", operator="boss")
    assert tech.pin_hash and "246802" not in tech.pin_hash
    assert ops.authenticate_pin("tina", "246802").name == "tina"
    assert ops.authenticate_badge(" BADGE-0042 ").name == "tina"
    with pytest.raises(PermissionDeniedError, match="login refused"):
        ops.authenticate_pin("tina", "0000")
    with pytest.raises(PermissionDeniedError, match="login refused"):
        ops.authenticate_pin("nobody", "246802")
    with pytest.raises(PermissionDeniedError, match="badge not recognised"):
        ops.authenticate_badge("BADGE-9999")
    assert [r.name for r in ops.all()] == ["boss", "tina"]
    assert verify_store(admin_station.store()).ok


def test_disabled_operator_cannot_log_in_or_act(admin_station) -> None:
    ops = service(admin_station)
    ops.add("quinn", Role.QA, pin="135791", operator="boss")
    ops.set_enabled("quinn", False, operator="boss")
    with pytest.raises(PermissionDeniedError):
        ops.authenticate_pin("quinn", "135791")
    with pytest.raises(PermissionDeniedError, match="disabled"):
        require_role(admin_station.store(), "quinn", {Role.QA}, action="reprint a label")
    ops.set_enabled("quinn", True, operator="boss")
    assert require_role(admin_station.store(), "quinn", {Role.QA}, action="reprint").name == "quinn"


def test_only_admins_change_operators(admin_station) -> None:
    service(admin_station).add("tina", Role.TECHNICIAN, operator="boss")
    with pytest.raises(
        PermissionDeniedError, match="technician; to add operators you must be admin"
    ):
        service(admin_station).add("eve", Role.ADMIN, operator="tina")
    with pytest.raises(PermissionDeniedError, match="nobody is logged in"):
        service(admin_station).add("eve", Role.ADMIN, operator="")
    with pytest.raises(PermissionDeniedError, match="cannot disable yourself"):
        service(admin_station).set_enabled("boss", False, operator="boss")


def test_bad_names_pins_and_duplicates_are_refused(admin_station) -> None:
    ops = service(admin_station)
    with pytest.raises(ValidationError):
        ops.add("bad name", Role.QA, operator="boss")
    with pytest.raises(ValidationError, match="6 to 12 digits"):
        ops.add("ok", Role.QA, pin="12ab", operator="boss")
    with pytest.raises(ValidationError, match="6 to 12 digits"):
        ops.add(
            "ok", Role.QA, pin="1234", operator="boss"
        )  # 4 digits fall to an offline guess in minutes
    ops.add("ok", Role.QA, badge="B1", operator="boss")
    with pytest.raises(ValidationError, match="already exists"):
        ops.add("ok", Role.QA, operator="boss")
    with pytest.raises(ValidationError, match="badge already belongs"):
        ops.add("other", Role.QA, badge="B1", operator="boss")


def test_role_raised_with_plain_sql_is_caught_by_verify(admin_station, config) -> None:
    service(admin_station).add("tina", Role.TECHNICIAN, operator="boss")
    admin_station.close()
    conn = sqlite3.connect(config.database_path)
    conn.execute("UPDATE operators SET role = 'admin' WHERE name = 'tina'")
    conn.commit()
    conn.close()
    report = verify_store(admin_station.store())
    assert report.first is not None
    assert (report.first.table, report.first.row) == ("operators", "tina")
    assert "behind the station's back" in report.first.reason


def test_repeated_wrong_pins_lock_the_account_with_an_audit_event(admin_station) -> None:
    ops = service(admin_station)
    ops.add("tina", Role.TECHNICIAN, pin="246802", operator="boss")
    for _ in range(4):
        with pytest.raises(PermissionDeniedError):
            ops.authenticate_pin("tina", "000000")
    assert ops.authenticate_pin("tina", "246802").name == "tina"  # a good PIN resets the count
    for _ in range(5):
        with pytest.raises(PermissionDeniedError):
            ops.authenticate_pin("tina", "000000")
    with pytest.raises(PermissionDeniedError):
        ops.authenticate_pin("tina", "246802")  # locked now, even with the right PIN
    store = admin_station.store()
    locked = [e for e in store.audit.events_for("tina") if e.kind == "operator.locked_out"]
    assert len(locked) == 1 and locked[0].payload["failures"] == 5
    assert verify_store(store).ok
    ops.set_enabled("tina", True, operator="boss")
    assert ops.authenticate_pin("tina", "246802").name == "tina"
