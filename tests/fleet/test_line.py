"""The online check on the real line: a lab board, the provisioning flow, a real ledger."""

from __future__ import annotations

from station.adapters.fleet.ledger import PostgresLedger
from station.config import load_config
from station.domain.fleet import FleetIdentity
from station.domain.provision_events import Step
from station.domain.records import DeviceQuery
from station_lab.fleet_demo import run_fleet_demo
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
    # the station's intermediate CA travels with its first sync
    station = rig.station()
    assert station.fleet_replicator().sync().error == ""
    (summary,) = [s for s in station.fleet().stations() if s.station == "line-1"]
    assert "Line 1 CA" in summary.ca_subject and len(summary.ca_fingerprint) == 64
    ledger.close()


def test_the_fleet_demo_catches_clones_online_and_on_replication(tmp_path) -> None:
    lines: list[str] = []

    report = run_fleet_demo(tmp_path / "demo", lines.append)

    verdicts = [(name, o.passed, o.code) for name, o in report.outcomes]
    assert verdicts == [
        ("line-2", True, ""),  # board A, checked online
        ("line-1", True, ""),  # A's clone: line-1 checks on replication
        ("line-1", True, ""),  # board B
        ("line-2", False, "fleet.duplicate"),  # B's clone, stopped before lock
    ]
    stopped = report.outcomes[3][1]
    assert stopped.step is Step.LOCK and "at line-1 by tina" in stopped.reason
    kinds = sorted(str(alarm.kind) for alarm in report.alarms)
    assert kinds == ["ek_sha256", "registration_id"]  # A and its clone share both
    for alarm in report.alarms:
        assert (alarm.first.station, alarm.second.station) == ("line-2", "line-1")
        assert (alarm.first.operator, alarm.second.operator) == ("tom", "tina")
    assert [(s.station, s.lag, s.provisioned) for s in report.stations] == [
        ("line-1", 0, 2),
        ("line-2", 0, 1),
    ]
    assert report.problems == []
    assert any(line.startswith("fleet alarm: duplicate EK hash") for line in lines)
    assert report.ledger_dir is not None and not report.ledger_dir.exists()  # cluster removed
