"""``station provision``: one board by port, the watched line, operator login."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from station.cli.main import cli
from station.domain.errors import BatchFullError, BoardNotFoundError, PermissionDeniedError
from station_lab.boards.faults import Faults
from tests.support.paths import REPO_ROOT
from tests.support.rig import BOTH_FIRMWARES, Rig


def _invoke(rig: Rig, *args: str, operator: str = "tina", input: str | None = None):
    runner = CliRunner()
    return runner.invoke(
        cli,
        ["--config", str(rig.config_file), "--operator", operator, "provision", *args],
        input=input,
        env={"STATION_PKCS11_PIN": "1234"},
        catch_exceptions=True,
    )


def test_port_provisions_one_board_and_prints_each_step(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey")
    result = _invoke(rig, "--batch", "WO-SYM", "--port", board.port, "--slot", "A")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("[A]") and "ok   write-symkey" in line for line in lines)
    assert any("PASS sym-" in line and board.serial in line for line in lines)
    assert lines[-1] == "1 passed, 0 failed"


@pytest.mark.parametrize("rig", ["c"], indirect=True)
@pytest.mark.parametrize(
    ("kind", "batch"),
    [("se", "WO-X509"), ("nokey", "WO-NOKEY"), ("nokey", "WO-SYM"), ("tpm", "WO-TPM")],
)
def test_every_flow_passes_on_c_boards_through_the_cli(rig: Rig, kind: str, batch: str) -> None:
    (board,) = rig.lab.start(1, kind)
    result = _invoke(rig, "--batch", batch, "--port", board.port, "--json")
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.output)
    assert outcome["passed"] and outcome["serial"] == board.serial, outcome


def test_failure_says_what_to_do_and_detail_is_one_flag_away(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    result = _invoke(rig, "--batch", "WO-NOKEY", "--port", board.port, "--detail")
    assert result.exit_code == 1
    assert "FAIL at connect" in result.output
    assert "do:  Check that the board belongs to this batch's product." in result.output
    assert "detail: provision.wrong_product" in result.output
    # said as an operator would, not in the protocol's words ("has no privkey capability")
    assert "has no storage for an injected device key, which product" in result.output
    assert "capability" not in result.output.split("detail:")[0]


@BOTH_FIRMWARES
def test_a_board_without_a_serial_is_provisioned_with_the_scanned_one(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey", Faults(no_serial=True))
    refused = _invoke(rig, "--batch", "WO-SYM", "--port", board.port)
    assert refused.exit_code == 1
    assert "FAIL at connect" in refused.output and "reports no serial number" in refused.output
    assert "do:  Scan the serial number printed on the board" in refused.output
    result = _invoke(rig, "--batch", "WO-SYM", "--port", board.port, "--serial", "SN-0042")
    assert result.exit_code == 0, result.output
    assert any(
        "PASS sym-sn-0042" in line and "SN-0042" in line for line in result.output.splitlines()
    )
    wrong = _invoke(rig, "--batch", "WO-SYM", "--watch", "--serial", "SN-0043")
    assert wrong.exit_code == 2 and "--serial goes with --port" in wrong.output


def test_json_outcome(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "se")
    result = _invoke(rig, "--batch", "WO-X509", "--port", board.port, "--json")
    assert result.exit_code == 0, result.output
    (outcome,) = json.loads(result.output)
    assert outcome["passed"] and outcome["registration_id"] == f"lab-{board.serial.lower()}"


def test_operator_with_a_pin_is_asked_for_it(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey")
    wrong = _invoke(
        rig, "--batch", "WO-SYM", "--port", board.port, operator="quinn", input="111111\n"
    )
    assert isinstance(wrong.exception, PermissionDeniedError)
    assert "login refused" in wrong.exception.message
    right = _invoke(
        rig, "--batch", "WO-SYM", "--port", board.port, operator="quinn", input="246802\n"
    )
    assert right.exit_code == 0, right.output
    events = rig.station().store().audit.events()
    recorded = [e for e in events if e.kind == "device.recorded"]
    assert [e.operator for e in recorded] == ["quinn"]


def test_unknown_operator_cannot_provision(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey")
    result = _invoke(rig, "--batch", "WO-SYM", "--port", board.port, operator="mallory")
    assert isinstance(result.exception, PermissionDeniedError)
    assert "unknown operator" in result.exception.message


def test_watch_provisions_every_bound_slot_until_ctrl_c(rig: Rig) -> None:
    boards = rig.lab.start(3, "se")
    discovery = rig.station().discovery()
    for board in boards:
        discovery.bind_plugged(f"S{board.index}", board.location)
    env = rig.env()
    env["STATION_OPERATOR"] = "tina"
    process = subprocess.Popen(
        [sys.executable, "-m", "station", "provision", "--batch", "WO-X509", "--watch"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    output = b""
    try:
        deadline = time.monotonic() + 300
        while output.count(b" PASS ") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
        assert output.count(b" PASS ") == 3, output.decode()
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=120)
        output += rest
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    text = output.decode()
    for board in boards:
        assert f"[S{board.index}]" in text
        assert f"board {board.serial}" in text
    assert "3 passed, 0 failed" in text
    assert process.returncode == 0, errors.decode()
    rig.verify()


def test_lost_board_job_is_listed_and_voided_with_its_certificate(rig: Rig) -> None:
    from station_lab.boards.faults import Faults

    (board,) = rig.lab.start(1, "se", Faults(unplug_at="write"))
    assert not rig.run(board.port, "WO-X509").passed  # certificate issued, board gone
    listed = _invoke(rig, "--jobs", "--batch", "WO-X509")
    assert listed.exit_code == 0, listed.output
    assert f"board {board.serial}, interrupted at write-chain" in listed.output
    job_id = rig.station().store().jobs.open()[0].id
    voided = _invoke(rig, "--void-job", str(job_id), "--reason", "board dropped")
    assert voided.exit_code == 0, voided.output
    store = rig.station().store()
    assert not store.jobs.open()
    (cert,) = store.certificates.for_device(f"lab-{board.serial.lower()}")
    assert cert.status == "voided" and cert.void_reason == "board dropped"
    rig.verify()


def test_batch_and_port_are_checked_once_before_any_board_is_touched(rig: Rig) -> None:
    boards = rig.lab.start(2, "nokey")
    discovery = rig.station().discovery()
    for board in boards:
        discovery.bind_plugged(f"S{board.index}", board.location)
    misspelt = _invoke(rig, "--batch", "WO-SYMM", "--watch")
    assert misspelt.exit_code == 1
    assert isinstance(misspelt.exception, BatchFullError)
    assert misspelt.exception.message == "there is no batch called 'WO-SYMM'"
    assert "watching" not in misspelt.output and "[S" not in misspelt.output
    missing = _invoke(rig, "--batch", "WO-SYM", "--port", "/dev/ttyNOPE9")
    assert missing.exit_code == 1
    assert isinstance(missing.exception, BoardNotFoundError)
    assert missing.exception.message == "there is no port /dev/ttyNOPE9"
    assert "station board list" in missing.exception.remedy
    station = rig.station()
    station.batches().open(name="WO-SEALED", product="lab-sym", size=1, operator="boss")
    station.batches().seal("WO-SEALED", operator="boss")
    sealed = _invoke(rig, "--batch", "WO-SEALED", "--port", boards[0].port)
    assert isinstance(sealed.exception, BatchFullError)
    assert sealed.exception.message == "batch WO-SEALED is sealed, not open"
    assert "open batch" in sealed.exception.remedy
    assert station.provisioning().open_jobs() == []  # no board was touched


def test_port_takes_a_bound_slot_name(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey")
    rig.station().discovery().bind_plugged("slot-7", board.location)
    result = _invoke(rig, "--batch", "WO-SYM", "--port", "slot-7")
    assert result.exit_code == 0, result.output
    assert any(
        line.startswith("[slot-7]") and "PASS" in line for line in result.output.splitlines()
    )
    unbound = _invoke(rig, "--batch", "WO-SYM", "--port", "slot-9")
    assert unbound.exit_code == 1 and "slot-9 is not bound" in unbound.exception.message


def test_a_board_without_a_serial_asks_for_it_and_takes_the_scanned_line(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey", Faults(no_serial=True))
    # a scanner on standard input: one line that is no serial, then the sticker's serial
    result = _invoke(rig, "--batch", "WO-SYM", "--port", board.port, input="no serial\nSN-0077\n")
    assert result.exit_code == 0, result.output
    asked = f"[{board.port}] The board (LAB-NOKEY-1) in slot {board.port} reports no serial number"
    assert asked in result.output
    assert "Not accepted: 'no serial' is not a board serial number" in result.output
    assert any("PASS sym-sn-0077" in line for line in result.output.splitlines())


def test_a_board_without_a_serial_is_refused_clearly_when_nobody_can_answer(rig: Rig) -> None:
    (board,) = rig.lab.start(1, "nokey", Faults(no_serial=True))
    result = _invoke(rig, "--batch", "WO-SYM", "--port", board.port, input="")
    assert result.exit_code == 1
    assert "nobody answered (standard input is closed)" in result.output
    assert "pass it with --port PORT --serial SERIAL" in result.output
    assert "Traceback" not in result.output
