"""Issue 21: the first admin gets a PIN, and admins set PINs and badges from the command line."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from station.bootstrap import build_station
from station.cli.main import cli, main
from station.config import load_config


def _invoke(args: list[str], text: str = "") -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, input=text)
    return result.exit_code, result.output


def _audit_kinds() -> list[str]:
    station = build_station(load_config(None), create_database=False)
    try:
        return [event.kind for event in station.store().audit.events()]
    finally:
        station.close()


@pytest.fixture
def admin_station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STATION_CONFIG", str(tmp_path / "station.toml"))
    pin_file = tmp_path / "admin.pin"
    pin_file.write_text("333333\n")
    pin_file.chmod(0o600)
    args = ["--data-dir", str(tmp_path / "data"), "--admin", "alice", "--pin-file", str(pin_file)]
    assert main(["init", *args]) == 0
    return tmp_path


def test_init_pin_file_gives_the_first_admin_a_pin(
    admin_station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["operator", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "alice", "role": "admin", "enabled": True, "pin": True, "badge": False}
    ]


def test_init_refuses_a_readable_or_short_pin_file_before_creating_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STATION_CONFIG", str(tmp_path / "station.toml"))
    pin_file = tmp_path / "admin.pin"
    pin_file.write_text("333333\n")
    pin_file.chmod(0o644)
    args = ["init", "--data-dir", str(tmp_path / "data"), "--pin-file", str(pin_file)]
    assert main(args) == 1
    assert "readable by other users" in capsys.readouterr().err
    pin_file.chmod(0o600)
    pin_file.write_text("123\n")
    assert main(args) == 1
    assert "a PIN is 6 to 12 digits" in capsys.readouterr().err
    assert not (tmp_path / "station.toml").exists()
    assert not (tmp_path / "data").exists()


def test_set_pin_and_badge_are_admin_only_audited_and_let_the_operator_log_in(
    admin_station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _invoke(["--operator", "alice", "operator", "add", "bob", "--role", "technician"])[0] == 0
    )
    code, out = _invoke(["--operator", "alice", "operator", "set-pin", "bob"], "246802\n")
    assert (code, "PIN set for bob" in out, "246802" in out) == (0, True, False)
    code, out = _invoke(["--operator", "alice", "operator", "set-badge", "bob"], "BADGE-BOB\n")
    assert (code, "badge set for bob" in out) == (0, True)
    # bob is a technician: he may not set anyone's PIN, not even his own
    code, out = _invoke(["--operator", "bob", "operator", "set-pin", "bob"], "111111\n")
    assert code == 1
    # the same badge cannot go to a second person
    code, _ = _invoke(["--operator", "alice", "operator", "set-badge", "alice"], "BADGE-BOB\n")
    assert code == 1
    kinds = _audit_kinds()
    assert kinds.count("operator.pin_set") == 2  # alice's at init, then bob's
    assert kinds.count("operator.badge_set") == 1

    station = build_station(load_config(None), create_database=False)
    try:
        assert station.operators().authenticate_pin("bob", "246802").name == "bob"
        assert station.operators().authenticate_badge("BADGE-BOB").name == "bob"
    finally:
        station.close()


def test_role_is_checked_before_the_pin_is_asked_for(
    admin_station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _invoke(["--operator", "alice", "operator", "add", "tina", "--role", "technician"])[0] == 0
    )
    # no PIN on stdin at all: the refusal must come from the role check, not from the prompt
    for args in (
        ["--operator", "tina", "operator", "add", "x", "--role", "qa", "--pin"],
        ["--operator", "tina", "operator", "set-pin", "alice"],
        ["--operator", "tina", "operator", "set-badge", "alice"],
    ):
        assert main(args) == 1
        assert "you must be admin" in capsys.readouterr().err
    assert main(["--operator", "alice", "operator", "set-pin", "nobody"]) == 1
    assert "no operator called 'nobody'" in capsys.readouterr().err


def test_init_asks_for_the_admin_pin_on_a_terminal_without_echo(tmp_path: Path) -> None:
    env = {**os.environ, "STATION_CONFIG": str(tmp_path / "station.toml")}
    main_fd, tty_fd = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "station.cli.main",
            "init",
            "--admin",
            "ada",
            "--data-dir",
            str(tmp_path),
        ],
        stdin=tty_fd,
        stdout=tty_fd,
        stderr=tty_fd,
        env=env,
    )
    os.close(tty_fd)
    seen = b""

    def wait_for(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while text not in seen:
            assert time.monotonic() < deadline, seen
            try:
                seen += os.read(main_fd, 1024)
            except OSError:
                break

    wait_for(b"PIN for ada, the first admin (6-12 digits): ")
    os.write(main_fd, b"975310\n")
    wait_for(b"Repeat for confirmation: ")
    os.write(main_fd, b"975310\n")
    wait_for(b"created with a PIN")
    assert process.wait(timeout=60) == 0
    os.close(main_fd)
    assert b"975310" not in seen
