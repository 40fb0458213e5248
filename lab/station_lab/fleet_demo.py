"""``station demo --fleet``: two stations, one fleet ledger, cloned TPMs caught both ways (#23).

The demo starts a throwaway PostgreSQL cluster (:mod:`station_lab.ledger`) and two stations,
``line-1`` and ``line-2``, each with its own config, SQLite store and operators, on one lab of
TPM boards. Two of the boards are clones (a copy of another board's TPM):

* ``line-2`` checks ``lab-tpm`` **online**: it provisions board A; then ``line-1``, in the
  default **deferred** mode, provisions A's clone, which it cannot know about; when it
  replicates, the ledger raises a fleet alarm naming both stations, boards and operators.
* ``line-1`` provisions board B and replicates; ``line-2`` is then stopped before it locks B's
  clone, with ``line-1`` named in the reason: nothing recorded, the board left unlocked.

Everything lives in the demo's directory; the cluster and the boards are stopped at the end.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from station.bootstrap import Station, build_station
from station.config import load_config
from station.domain.fleet import FleetAlarm, StationSummary
from station.domain.records import Role
from station.services.provision import ProvisionOutcome, ProvisionRequest
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LabBoard, LabBoards
from station_lab.ledger import running_ledger

Echo = Callable[[str], None]
BATCH = "WO-FLEET"
PRODUCT = "lab-tpm"
ADMIN = "demo-admin"


@dataclass
class FleetDemoReport:
    """What the fleet demo showed."""

    outcomes: list[tuple[str, ProvisionOutcome]] = field(default_factory=list)
    alarms: list[FleetAlarm] = field(default_factory=list)
    stations: list[StationSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ledger_dir: Path | None = None  # the throwaway cluster's folder (removed at the end)


def _config(directory: Path, name: str, conninfo: str, online: bool) -> Path:
    path = directory / name / "station.toml"
    path.parent.mkdir(parents=True)
    online_line = f'online_products = ["{PRODUCT}"]\n' if online else ""
    path.write_text(
        f"# Fleet demo station {name}: everything lives in this directory.\n"
        f'[station]\nid = "{name}"\ndata_dir = "{directory / name / "data"}"\n'
        "[board]\nbaud = 0\ntimeout_s = 5.0\nslow_timeout_s = 60.0\n"
        f'[lab]\ndir = "{directory / "lab"}"\n'
        "[tpm]\ntrust_lab_ca = true\n"
        f'[labels]\noutput_dir = "{directory / name / "labels"}"\n'
        f'[fleet]\nconninfo = "{conninfo}"\n{online_line}',
        encoding="utf-8",
    )
    return path


class _Line:
    """One station of the demo, with its technician."""

    def __init__(self, config_file: Path, technician: str) -> None:
        self.config = load_config(config_file, env={})
        self.name = self.config.station.id
        self.technician = technician
        admin = build_station(self.config)
        try:
            admin.database().initialize(
                config_file=str(config_file),
                data_dir=str(self.config.data_dir),
                admin=ADMIN,
                operator=ADMIN,
            )
            admin.operators().add(technician, Role.TECHNICIAN, operator=ADMIN)
            admin.batches().open(name=BATCH, product=PRODUCT, size=10, operator=ADMIN)
        finally:
            admin.close()

    def station(self) -> Station:
        return build_station(self.config)

    def provision(self, board: LabBoard) -> ProvisionOutcome:
        station = self.station()
        try:
            link = station.board_session(board.port, handshake=False)
            request = ProvisionRequest(slot="1", batch=BATCH, operator=self.technician)
            return station.provisioning().run(link, request, emit=lambda _: None)
        finally:
            station.close()

    def sync(self) -> str:
        station = self.station()
        try:
            report = station.fleet_replicator().sync()
        finally:
            station.close()
        return report.error or f"{report.sent} event(s) replicated"


def run_fleet_demo(directory: Path, echo: Echo) -> FleetDemoReport:
    """Run the two-station demo in ``directory`` (wiped first) and report what it showed."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    report = FleetDemoReport()
    with ExitStack() as stack:
        # in the system's temp folder: the server's user may not enter the demo's folder
        cluster = stack.enter_context(running_ledger())
        report.ledger_dir = cluster.root
        conninfo = cluster.dsn(cluster.new_database("fleet"))
        echo(f"fleet ledger: PostgreSQL on port {cluster.port} (database fleet)")
        line1 = _Line(_config(directory, "line-1", conninfo, online=False), "tina")
        line2 = _Line(_config(directory, "line-2", conninfo, online=True), "tom")
        views = line1.station()
        stack.callback(views.close)
        views.fleet().install()
        echo("stations line-1 (deferred check) and line-2 (online check for lab-tpm)")
        boards = stack.enter_context(LabBoards.for_station(line1.config))
        a, a_clone = boards.start(2, "tpm", Faults(clone=True))
        b, b_clone = boards.start(2, "tpm", Faults(clone=True))
        echo(f"boards: A {a.serial} and its clone {a_clone.serial}")
        echo(f"        B {b.serial} and its clone {b_clone.serial}")

        def run(line: _Line, board: LabBoard, what: str) -> None:
            outcome = line.provision(board)
            report.outcomes.append((line.name, outcome))
            verdict = "PASS" if outcome.passed else f"STOPPED at {outcome.step}: {outcome.reason}"
            echo(f"  {line.name} {what} {board.serial}: {verdict}")

        run(line2, a, "provisions board A")
        echo(f"  line-2 replicates: {line2.sync()}")
        run(line1, a_clone, "provisions A's clone (it cannot know A)")
        echo(f"  line-1 replicates: {line1.sync()}")
        run(line1, b, "provisions board B")
        echo(f"  line-1 replicates: {line1.sync()}")
        run(line2, b_clone, "asks the ledger before locking B's clone")
        echo(f"  line-2 replicates: {line2.sync()}")

        fleet = views.fleet()
        report.alarms = fleet.alarms()
        report.stations = fleet.stations()
        report.problems = [f"{p.station} {p.where}: {p.problem}" for p in fleet.verify()]
        for alarm in report.alarms:
            echo(f"fleet alarm: {alarm.describe()}")
        for s in report.stations:
            echo(
                f"station {s.station}: synced through event {s.acked_seq} (lag {s.lag}), "
                f"{s.provisioned} provisioned, yield {s.yield_pct:.0f}%"
            )
        echo("ledger verify: " + ("; ".join(report.problems) or "OK"))
    return report
