"""Stations replicating to a real PostgreSQL ledger (tests/support/ledger.py starts it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from station.bootstrap import build_station
from station.config import load_config
from station.domain.records import DeviceRecord
from station.services.identities import record_identity, void_identity
from tests.support.clocks import FixedClock


class FleetStation:
    """One station of the fleet: its own config, SQLite store and clock."""

    def __init__(self, root: Path, name: str, conninfo: str, fleet_toml: str) -> None:
        self.name = name
        self.config_file = root / name / "station.toml"
        self.config_file.parent.mkdir(parents=True)
        defaults = {"batch_size": "50", "timeout_s": "5.0"}
        extra = "".join(
            f"{key} = {value}\n" for key, value in defaults.items() if f"{key} =" not in fleet_toml
        )
        self.config_file.write_text(
            f'[station]\nid = "{name}"\ndata_dir = "{root / name / "data"}"\n'
            f'[fleet]\nconninfo = "{conninfo}"\n{extra}{fleet_toml}',
            encoding="utf-8",
        )
        self.config = load_config(self.config_file, env={})
        self.clock = FixedClock()
        self.station = build_station(self.config, clock=self.clock)
        self.station.database().initialize(
            config_file=str(self.config_file),
            data_dir=str(self.config.data_dir),
            admin="boss",
            operator="op",
        )

    def record(
        self, manifest_factory: Callable[..., Any], serial: str, *, operator: str = "", **kw
    ) -> DeviceRecord:
        who = operator or f"op-{self.name}"
        manifest = replace(manifest_factory(serial, **kw), station=self.name, operator=who)
        return record_identity(
            self.station.store(), manifest, clock=self.clock, station=self.name, operator=who
        )

    def void(self, registration_id: str) -> DeviceRecord:
        return void_identity(
            self.station.store(),
            registration_id,
            reason="rework",
            clock=self.clock,
            station=self.name,
            operator=f"qa-{self.name}",
        )

    def skew(self, hours: float) -> None:
        self.clock.current += timedelta(hours=hours)

    def close(self) -> None:
        self.station.close()


@pytest.fixture
def fleet_of(tmp_path: Path, ledger_dsn: str) -> Iterator[Callable[..., FleetStation]]:
    """Factory for stations sharing one fresh ledger (schema installed)."""
    made: list[FleetStation] = []

    def make(name: str, fleet_toml: str = "", conninfo: str = "") -> FleetStation:
        built = FleetStation(tmp_path, name, conninfo or ledger_dsn, fleet_toml)
        made.append(built)
        if len(made) == 1 and not conninfo:
            built.station.fleet().install()
        return built

    yield make
    for built in made:
        built.close()


@pytest.fixture
def sql(ledger_dsn: str) -> Callable[..., list[tuple[object, ...]]]:
    """Run SQL straight on the ledger (what a person with psql could do)."""

    def run(statement: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(ledger_dsn, autocommit=True) as conn:
            cur = conn.execute(statement, params or None)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    return run
