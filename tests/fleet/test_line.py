"""The online check on the real line: a lab board, the provisioning flow, a real ledger."""

from __future__ import annotations

from station.adapters.fleet.ledger import PostgresLedger
from station.config import load_config
from station.domain.fleet import FleetIdentity
from station.domain.provision_events import Step, StepPassed
from station.domain.records import DeviceQuery
from tests.support.rig import Rig


def _join_fleet(rig: Rig, conninfo: str) -> None:
    with rig.config_file.open("a", encoding="utf-8") as config:
        config.write(f'[fleet]\nconninfo = "{conninfo}"\nonline_products = ["lab-sym"]\n')
    rig.config = load_config(rig.config_file, env={})


def test_a_board_another_station_holds_is_stopped_before_lock(
    rig: Rig, ledger_dsn, board_state
) -> None:
    ledger = PostgresLedger(ledger_dsn)
    ledger.install_schema()
    (board,) = rig.lab.start(1, "nokey")
    # another line already provisioned a board with this serial
    taken = ledger.claim(
        FleetIdentity("line-b", "lab-sym", "WO-SYM", "sym-elsewhere", board.serial, "bob")
    )
    assert taken.ok
    _join_fleet(rig, ledger_dsn)

    outcome = rig.run(board.port, "WO-SYM")

    assert not outcome.passed
    assert outcome.code == "fleet.duplicate" and outcome.step is Step.LOCK
    assert "line-b" in outcome.reason and "bob" in outcome.reason and "QA" in outcome.remedy
    assert rig.station().store().devices.count(DeviceQuery(serial=board.serial)) == 0
    assert board_state(board.port)["hello"].locked is False  # never locked: reworkable
    rig.verify()
    ledger.close()


def test_a_unique_board_passes_with_the_fleet_check_noted(rig: Rig, ledger_dsn) -> None:
    ledger = PostgresLedger(ledger_dsn)
    ledger.install_schema()
    (board,) = rig.lab.start(1, "nokey")
    _join_fleet(rig, ledger_dsn)
    events: list[object] = []

    outcome = rig.run(board.port, "WO-SYM", events=events)

    assert outcome.passed
    notes = [e.detail for e in events if isinstance(e, StepPassed) and e.step is Step.LOCK]
    assert any("unique across the fleet" in note for note in notes)
    replicator = rig.station().fleet_replicator()
    assert replicator.sync().error == ""
    (device,) = rig.station().fleet().find(board.serial)
    assert device.registration_id == outcome.registration_id and device.station == "line-1"
    ledger.close()
