"""Replicate a station forever (until killed): the process the kill -9 test shoots.

Usage: python sync_run.py CONFIG_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

from station.bootstrap import build_station
from station.config import load_config


def main(config_file: str) -> None:
    station = build_station(load_config(Path(config_file), env={}))
    replicator = station.fleet_replicator()
    while True:
        replicator.sync(max_batches=1)


if __name__ == "__main__":
    main(sys.argv[1])
