"""``station demo``: the whole product on the embedded lab, end to end, headless.

The demo lives in its own directory (default ``.demo/`` in the current folder) with its own
config, database and lab state, so it never touches a real station. Each run starts from a clean
directory, so running it twice works.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from station.bootstrap import build_station
from station.config import StationConfig, StationSection, load_config, write_default_config
from station.domain.errors import IntegrityError
from station.lab.dps.app import DpsOptions, running_dps

Echo = Callable[[str], None]
DEMO_BOARDS = 6


@dataclass
class DemoReport:
    """What the demo did, for the closing summary."""

    directory: Path
    steps: list[tuple[str, float]] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)


def run_demo(directory: Path, echo: Echo) -> DemoReport:
    """Run every demo step in ``directory`` (wiped first), reporting progress through ``echo``."""
    directory = directory.resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    report = DemoReport(directory=directory)
    config_path = directory / "station.toml"
    write_default_config(
        config_path,
        StationConfig(station=StationSection(id="demo-station", data_dir=directory / "data")),
    )
    config = load_config(config_path, env={})

    def step(title: str, action: Callable[[], str]) -> None:
        started = time.perf_counter()
        echo(f"▶ {title}")
        detail = action()
        elapsed = time.perf_counter() - started
        report.steps.append((title, elapsed))
        echo(f"  ✔ {detail} ({elapsed:.2f} s)")

    station = build_station(config, operator="demo-admin")
    try:

        def initialise() -> str:
            for folder in (config.data_dir, config.backup_dir, config.lab_dir):
                folder.mkdir(parents=True, exist_ok=True)
            result = station.database().initialize(
                config_file=str(config_path), data_dir=str(config.data_dir), admin="demo-admin"
            )
            report.artifacts["config"] = config_path
            report.artifacts["database"] = config.database_path
            return (
                f"station initialised, first audit event #{result.event.seq if result.event else 0}"
            )

        def verify() -> str:
            result = station.database().verify()
            if not result.ok:
                raise IntegrityError(f"audit trail inconsistent: {result.first}")
            return f"audit chain verified ({result.events} events)"

        def backup() -> str:
            target = config.backup_dir / "demo-backup.db"
            result = station.database().backup(target)
            report.artifacts["backup"] = target
            return f"verified online backup with {result.events} events"

        step("Initialise the station (config, data folders, database)", initialise)
        with ExitStack() as lab:

            def start_dps() -> str:
                dps = lab.enter_context(
                    running_dps(DpsOptions(state_dir=config.lab_dir / "dps", reset=True))
                )
                report.artifacts["dps"] = dps.connection_file
                return f"local DPS stand-in at {dps.endpoint} (ID scope {dps.id_scope})"

            def start_boards() -> str:
                boards = lab.enter_context(station.lab_boards())
                started = boards.start(DEMO_BOARDS, kind="mixed")
                kinds = ", ".join(f"{b.serial} ({b.kind})" for b in started)
                return f"{len(started)} virtual boards on ptys at 115200 baud: {kinds}"

            def bind_slots() -> str:
                finder = station.discovery()
                found = sorted(finder.boards(), key=lambda b: b.location)
                for number, board in enumerate(found, start=1):
                    finder.bind_plugged(str(number), board.location)
                return f"slots 1-{len(found)} bound to physical ports " + ", ".join(
                    b.location for b in found
                )

            def probe() -> str:
                finder = station.discovery()
                lines = []
                for number in range(1, DEMO_BOARDS + 1):
                    board = finder.board_in(str(number))
                    info = station.board_session(board.device).hello()
                    lines.append(
                        f"slot {number}: {info.serial} {info.model} fw {info.firmware} "
                        f"[{', '.join(info.capabilities)}]"
                    )
                echo("    " + "\n    ".join(lines))
                return f"{len(lines)} boards answered hello over the board protocol"

            step("Start the local DPS stand-in", start_dps)
            step("Start the lab's virtual boards (TPM, secure element, no key)", start_boards)
            step("Discover the boards and bind them to slots by port", bind_slots)
            step("Probe every slot (hello and capabilities)", probe)
            step("Verify the tamper-evident audit trail", verify)
            step("Back up the database online", backup)
    finally:
        station.close()
    return report
