"""The lab runner: starts boards, publishes them, keeps identities, stops every process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tpm2_pytss import ESAPI

from station.adapters.board.session import BoardSession
from station_lab.boards.faults import Faults
from station_lab.boards.runner import LAB_VID, LabBoards
from tests.support.board_tcti import BoardTcti

Connect = Callable[..., BoardSession]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _ek_public(session: BoardSession) -> bytes:
    ectx = ESAPI(BoardTcti(session))
    try:
        public, _, _ = ectx.read_public(ectx.tr_from_tpmpublic(0x81010001))
        return bytes(public.marshal())
    finally:
        ectx.close()


def test_stop_leaves_no_board_or_swtpm_process(tmp_path: Path) -> None:
    lab = LabBoards(tmp_path / "lab", baud=0)
    try:
        boards = lab.start(3, "mixed")
        pids = [b.process.pid for b in boards if b.process is not None]
        swtpms = [b.swtpm_pid for b in boards if b.swtpm_pid is not None]
        assert len(pids) == 3 and len(swtpms) == 1
        assert all(_alive(p) for p in pids + swtpms)
        registry = json.loads(lab.registry_path.read_text())
        assert [e["location"] for e in registry["boards"]] == ["lab-1", "lab-2", "lab-3"]
        assert all(e["vid"] == LAB_VID and Path(e["device"]).exists() for e in registry["boards"])
        lab.unplug(1)  # SIGKILL: the board cannot stop its swtpm itself
    finally:
        lab.stop()
    assert not any(_alive(p) for p in pids + swtpms)
    assert not lab.registry_path.exists()


def test_identity_and_objects_survive_a_lab_restart(tmp_path: Path, connect: Connect) -> None:
    with LabBoards(tmp_path / "lab", baud=0) as lab:
        (board,) = lab.start(1, "tpm")
        session = connect(board.port)
        serial = session.hello().serial
        ek = _ek_public(session)
        session.write(
            "dps",
            bytes.fromhex("a3")
            + b"".join(
                bytes([0x60 + len(k)]) + k.encode() + bytes([0x61]) + b"x"
                for k in ("endpoint", "scope", "rid")
            ),
        )
        session.close()
    with LabBoards(tmp_path / "lab", baud=0) as lab:
        (board,) = lab.start(1, "tpm")
        session = connect(board.port)
        assert session.hello().serial == serial
        assert _ek_public(session) == ek
        assert session.read("dps").generation == 1


@pytest.mark.parametrize("lab", ["python", "c"], indirect=True)
def test_clone_fault_makes_two_boards_share_one_tpm_identity(
    lab: LabBoards, connect: Connect
) -> None:
    first, middle, clone = lab.start(3, "se", Faults(clone=True))
    assert (first.kind, middle.kind, clone.kind) == ("tpm", "se", "tpm")
    assert first.serial != clone.serial
    assert _ek_public(connect(first.port)) == _ek_public(connect(clone.port))


@pytest.mark.parametrize("lab", ["python", "c"], indirect=True)
def test_slow_tpm_profile_still_answers(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "tpm", Faults(slow_tpm=0.01))
    session = connect(board.port)
    assert len(session.tpm(bytes.fromhex("80010000000c0000017b0008"))) == 20


@pytest.mark.parametrize("firmware", ["python", "c"])
def test_cli_lab_boards_runs_until_sigterm_and_stops_everything(
    tmp_path: Path, firmware: str
) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n[board]\nbaud = 0\n')
    env = {**os.environ, "STATION_CONFIG": str(config)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "station",
            "lab",
            "boards",
            "--count",
            "2",
            "--kind",
            "mixed",
            "--firmware",
            firmware,
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        while True:
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            lines.append(line)
            if line == b"}\n":
                break
        started = json.loads(b"".join(lines))
        registry = Path(started["registry"])
        assert [b["kind"] for b in started["boards"]] == ["tpm", "se"]
        assert {b["firmware"] for b in started["boards"]} == {firmware}
        assert registry.exists()
        # a second 'lab boards' (even with its own --state) does not take over the board list
        before = registry.read_bytes()
        other = ["--count", "1", "--kind", "se", "--state", str(tmp_path / "other")]
        second = subprocess.run(
            [sys.executable, "-m", "station", "lab", "boards", *other],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert "error: lab boards are already running" in second.stderr
        assert registry.read_bytes() == before
        board_pids = [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
            ).stdout.split()
        ]
        assert len(board_pids) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not registry.exists()
    assert not any(_alive(p) for p in board_pids)
    swtpm_left = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True
    ).stdout.split()
    assert swtpm_left == []


@pytest.mark.parametrize("firmware", ["python", "c"])
def test_boards_stop_by_themselves_when_the_runner_is_killed(tmp_path: Path, firmware: str) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n[board]\nbaud = 0\n')
    env = {**os.environ, "STATION_CONFIG": str(config)}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "station", "lab", "boards", "--count", "1", "--kind", "tpm"),
            *("--firmware", firmware),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert b"lab-1" in process.stdout.readline()
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
        (board_pid,) = map(int, children)
        swtpm = subprocess.run(
            ["pgrep", "-P", str(board_pid)], capture_output=True, text=True
        ).stdout.split()
        process.kill()  # no chance to clean up
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 30
    pids = [board_pid, *map(int, swtpm)]
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pids) == 2
    assert not any(_alive(p) for p in pids)
