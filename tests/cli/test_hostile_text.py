"""Text from boards and files never reaches the terminal raw (issue #20, item 4)."""

from __future__ import annotations

from station.cli.common import term
from station.cli.main import main
from station.services.identities import record_identity


def test_devices_list_escapes_control_characters(
    station, config_file, make_manifest, capsys
) -> None:
    station.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    manifest = make_manifest("SN7\x1b[1A\rOK", registration_id="dev-sn7")
    record_identity(station.store(), manifest, clock=station.clock, station="s", operator="boss")
    station.close()
    assert main(["--config", str(config_file), "devices", "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out
    assert "SN7\\x1b[1A\\x0dOK" in out


def test_term_keeps_printable_text_and_escapes_the_rest() -> None:
    assert term("Zürich 12/A") == "Zürich 12/A"
    assert term("a\tb\u202ec\x9b") == "a\\x09b\\u202ec\\x9b"
