"""``station lab`` and ``station demo`` come from the lab distribution, through entry points."""

from __future__ import annotations

import subprocess
import sys

from station.cli.main import PLUGIN_GROUP, cli


def test_the_lab_commands_are_the_lab_distributions() -> None:
    for name in ("lab", "demo"):
        command = cli.commands[name]
        assert command.callback is not None
        assert command.callback.__module__.startswith("station_lab.cli.")
    assert set(cli.commands["lab"].commands) == {"boards", "dps", "power-on"}  # type: ignore[attr-defined]
    assert PLUGIN_GROUP == "station.cli"


def test_without_the_lab_the_station_has_no_lab_commands_and_still_runs() -> None:
    # the lab's package unimportable, as in an install whose plugin broke: the commands are left
    # out with a warning, every other command works
    code = (
        "import sys; sys.modules['station_lab'] = None\n"
        "from station.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    listed = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    commands = listed.stdout.split("Commands:")[1].split()
    assert "provision" in commands and "lab" not in commands and "demo" not in commands
    assert "left out" in listed.stderr
    missing = subprocess.run(
        [sys.executable, "-c", code, "lab", "boards"], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and "No such command 'lab'" in missing.stderr
