"""``station lab power-on``: finds running lab boards in the registry, powers them on, reports."""

from __future__ import annotations

import json
from importlib.metadata import version

from click.testing import CliRunner, Result

from station.cli.main import cli
from tests.support.poweron import DISABLED, HUB_NAMES, PowerRig


def _invoke(power: PowerRig, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["--config", str(power.rig.config_file), "lab", "power-on", *args],
        catch_exceptions=False,
    )


def test_all_boards_json_summary_names_each_outcome(power: PowerRig) -> None:
    sym, sym_id = power.provision("nokey", "WO-SYM")
    off, off_id = power.provision("se", "WO-X509")
    (blank,) = power.lab.start(1, "se")
    power.enroll_symmetric_group()
    power.enroll(off_id, DISABLED)

    result = _invoke(power, "--all", "--json")

    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["dps"] == power.dps.host_name  # found through the lab DPS's state directory
    by_board = {entry["board"]: entry for entry in summary["boards"]}
    assert set(by_board) == {sym.location, off.location, blank.location}
    assigned = by_board[sym.location]
    assert assigned["status"] == "assigned"
    assert assigned["registration_id"] == sym_id
    assert assigned["attestation"] == "symmetricKey"
    assert assigned["assigned_hub"] in HUB_NAMES
    assert assigned["client"].startswith("azure-iot-device ")  # the official Python SDK
    refused = by_board[off.location]
    # the Python SDK reports the registration status DPS ended the operation in
    assert (refused["status"], refused["error_code"]) == ("error", "disabled")
    assert refused["registration_id"] == off_id
    assert refused["client"].startswith("azure-iot-device ")
    unprovisioned = by_board[blank.location]
    assert (unprovisioned["status"], unprovisioned["error_code"]) == ("error", "not-provisioned")
    assert unprovisioned["serial"] == blank.serial
    assert [d["registrationId"] for d in power.dps.hub_devices()] == [sym_id]


def test_one_board_by_location_prints_its_hub(power: PowerRig) -> None:
    board, reg_id = power.provision("nokey", "WO-SYM")
    power.enroll_symmetric_group()

    result = _invoke(power, board.location)

    assert result.exit_code == 0, result.output
    (hub,) = [d["hub"] for d in power.dps.hub_devices()]
    words = result.output.split()
    assert words[:6] == [board.location, "symmetricKey", reg_id, "->", hub, f"({reg_id})"]
    assert words[6:8] == ["[azure-iot-device", version("azure-iot-device")]


def test_unknown_board_and_missing_choice_are_usage_errors(power: PowerRig) -> None:
    power.lab.start(1, "se")
    unknown = CliRunner().invoke(
        cli, ["--config", str(power.rig.config_file), "lab", "power-on", "lab-9"]
    )
    assert unknown.exit_code != 0
    assert "no running lab board named 'lab-9'" in str(unknown.exception)
    neither = _invoke(power)
    assert neither.exit_code == 2
    assert "name one BOARD or pass --all" in neither.output
