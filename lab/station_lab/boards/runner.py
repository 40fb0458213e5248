"""Start, unplug, replug and stop a set of virtual boards, and publish them in the lab registry.

The registry (``<lab_dir>/boards.json``) lists each running board like a USB device: a stable
``location`` (``lab-1``, ``lab-2``, ...: the "physical port" a slot binds to), the current
``device`` path (a new pty on every plug), a serial number and a VID/PID. Station discovery
reads it, so lab boards are found, bound and hot-plugged exactly like USB boards.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from station.config import StationConfig
from station.domain.errors import LabBoardError
from station_lab.boards import c_agent, qemu_board
from station_lab.boards.faults import Faults
from station_lab.boards.poweron import PowerOnResult, power_on
from station_lab.boards.process_alive import pid_alive
from station_lab.boards.state import BoardState, atomic_write
from station_lab.boards.tpm import TPM_STATE_FILE, ensure_local_ca

REGISTRY_FILE = "boards.json"
#: VID/PID the lab registry announces (pid.codes test VID; never a real product).
LAB_VID = 0x1209
LAB_PID = 0x0001
KINDS = ("tpm", "se", "nokey")
#: Board firmwares: the Python reference board, the C agent's host port, its Cortex-M port in QEMU.
FIRMWARES = (*c_agent.FIRMWARES, "qemu")
MODELS = {"tpm": "LAB-TPM-1", "se": "LAB-SE-1", "nokey": "LAB-NOKEY-1"}
_READY_TIMEOUT_S = 90.0


@dataclass
class LabBoard:
    """One virtual board the runner manages."""

    index: int
    kind: str
    serial: str
    state_dir: Path
    faults: Faults
    process: subprocess.Popen[bytes] | None = None
    port: str = ""
    swtpm_pid: int | None = None
    generation: int = 0  # boards swapped into this location before this one

    @property
    def location(self) -> str:
        """The stable "physical port" of this board."""
        return f"lab-{self.index}"

    @property
    def plugged(self) -> bool:
        """True while the board's process runs."""
        return self.process is not None and self.process.poll() is None


@dataclass
class LabBoards:
    """A set of virtual boards under ``lab_dir`` (a context manager that stops them all).

    Args:
        lab_dir: holds the boards' state (``boards/board-N``), the TPM CA and the registry.
        baud: emulated line speed of every board (0 = unpaced).
        registry: where to publish the boards (default ``<lab_dir>/boards.json``).
        firmware: ``python`` (the reference board), ``c`` (the C agent's host port) or ``qemu``
            (its Cortex-M port on an emulated board; kinds se and nokey); ``make agent`` builds
            both.
    """

    lab_dir: Path
    baud: int = 115_200
    registry: Path | None = None
    firmware: str = "python"
    boards: dict[int, LabBoard] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.firmware not in FIRMWARES:
            raise LabBoardError(
                f"unknown board firmware '{self.firmware}'",
                remedy=f"Use one of: {', '.join(FIRMWARES)}.",
            )
        self.lab_dir = self.lab_dir.resolve()
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        tag_file = self.lab_dir / "lab-tag"
        if not tag_file.exists():
            atomic_write(tag_file, secrets.token_hex(2).upper().encode())
        self.tag = tag_file.read_text(encoding="utf-8").strip()

    @classmethod
    def for_station(
        cls,
        config: StationConfig,
        *,
        baud: int | None = None,
        lab_dir: Path | None = None,
        firmware: str = "python",
    ) -> LabBoards:
        """A runner for a station's lab: its lab directory, board speed and registry file.

        ``lab_dir`` keeps the boards' state elsewhere; they are still published in the
        station's registry, so its board discovery finds them.
        """
        return cls(
            lab_dir or config.lab_dir,
            baud=config.board.baud if baud is None else baud,
            registry=config.lab_registry,
            firmware=firmware,
        )

    @property
    def registry_path(self) -> Path:
        """The registry file discovery reads."""
        return self.registry or self.lab_dir / REGISTRY_FILE

    def __enter__(self) -> LabBoards:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ lifecycle
    def start(self, count: int, kind: str = "se", faults: Faults | None = None) -> list[LabBoard]:
        """Start ``count`` boards (kind ``tpm``, ``se``, ``nokey`` or ``mixed``), in parallel.

        With the ``clone`` fault the last board gets a copy of the first board's TPM state.

        Raises:
            LabBoardError: a board process failed to start (its log is named), a C board was
                asked for a fault it cannot inject, or another running ``station lab boards``
                already publishes its boards in the same registry.
        """
        faults = faults or Faults()
        self._check_faults(faults)
        self._check_registry_free()
        kinds = KINDS if self.firmware != "qemu" else tuple(qemu_board.CAPABILITIES)
        if kind != "mixed" and kind not in kinds:
            raise LabBoardError(
                f"{self.firmware} boards cannot be of kind {kind}",
                remedy=f"Use one of: {', '.join(kinds)}, mixed (the emulated board has no TPM).",
            )
        first = len(self.boards) + 1
        new = []
        for offset in range(count):
            index = first + offset
            board_kind = kinds[offset % len(kinds)] if kind == "mixed" else kind
            if faults.clone and offset in (0, count - 1):
                board_kind = "tpm"
            new.append(self._define(index, board_kind, faults))
        clone = new[-1] if faults.clone and count >= 2 else None
        try:
            for board in new:
                if board is not clone:
                    self._spawn(board)
            for board in new:
                if board is not clone:
                    self._await_ready(board)
            if clone is not None:
                self._clone_tpm(new[0], clone)
                self._spawn(clone)
                self._await_ready(clone)
        finally:
            self._write_registry()
        return new

    def unplug(self, index: int) -> None:
        """Pull board ``index`` out: its process is killed at once (no goodbye on the wire)."""
        board = self.boards[index]
        self._halt(board, signal.SIGKILL)
        self._write_registry()

    def replug(self, index: int, faults: Faults | None = None) -> LabBoard:
        """Plug board ``index`` back in (same state, new pty); faults default to none."""
        board = self.boards[index]
        if faults is not None:
            self._check_faults(faults)
        if board.plugged:
            self._halt(board, signal.SIGTERM)
        board.faults = faults or Faults()
        return self._start_again(board)

    def swap(self, index: int) -> LabBoard:
        """Take board ``index`` out of its fixture and put a factory-fresh board in its place.

        The new board sits at the same physical location (so the same slot), with a new serial
        and empty state, as when a technician swaps the next unit in on a real line.
        """
        board = self.boards[index]
        self._halt(board, signal.SIGTERM)
        board.generation += 1
        board.serial = f"LB{self.tag}-{index:03d}-{board.generation}"
        shutil.rmtree(board.state_dir, ignore_errors=True)
        return self._start_again(board)

    def _start_again(self, board: LabBoard) -> LabBoard:
        try:
            self._spawn(board)
            self._await_ready(board)
        finally:
            self._write_registry()
        return board

    def stop(self) -> None:
        """Stop every board and TPM this runner started, and empty the registry."""
        for board in self.boards.values():
            if board.process is not None and board.process.poll() is None:
                board.process.send_signal(signal.SIGTERM)
        for board in self.boards.values():
            self._halt(board, signal.SIGTERM)
        if self._registry_owner() in (None, os.getpid()):  # never another runner's list
            self.registry_path.unlink(missing_ok=True)

    def _registry_owner(self) -> int | None:
        """The process that publishes the registry now, or ``None`` (no registry, unreadable)."""
        try:
            return int(json.loads(self.registry_path.read_text(encoding="utf-8"))["runner_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _check_registry_free(self) -> None:
        """Refuse to take over the board list of another running lab (a second 'lab boards')."""
        owner = self._registry_owner()
        if owner is not None and owner != os.getpid() and pid_alive(owner):
            raise LabBoardError(
                f"lab boards are already running (process {owner}), listed in "
                f"{self.registry_path}; a second set would replace their list",
                remedy="Stop them first (Ctrl-C where 'station lab boards' runs), or start all "
                "the boards you need in one run (--count, --kind mixed).",
                pid=owner,
            )

    def power_on(
        self,
        index: int,
        *,
        endpoint: str,
        ca_bundle: Path | None,
        timeout_s: float = 60.0,
        port_map: str = "",
    ) -> PowerOnResult:
        """Make board ``index`` do its first boot against the lab DPS (see poweron.py).

        ``port_map`` (``host:port``, from ``LocalDps.port_map``) is how the Python device SDK on
        the board reaches the lab DPS's MQTT port.

        Raises:
            LabBoardError: the board is unplugged or did not answer.
        """
        board = self.boards[index]
        if self.firmware != "python":
            raise LabBoardError(
                "C boards have no lab first boot",
                remedy="Power on Python boards (--firmware python); see docs/agent-porting.md.",
                board=index,
            )
        if not board.plugged or board.process is None:
            raise LabBoardError(
                f"virtual board {index} is not plugged in",
                remedy="Replug the board, then power it on.",
                board=index,
            )
        return power_on(
            board.process.pid,
            board.state_dir,
            endpoint=endpoint,
            ca_bundle=ca_bundle,
            timeout_s=timeout_s,
            port_map=port_map,
        )

    def device_key_file(self, index: int) -> Path:
        """The file in which board ``index`` keeps its device key.

        Lab control: copied into another board's state folder, with the ``stuck_key`` fault, it
        makes a cloned secure element.

        Raises:
            LabBoardError: a QEMU board (its key is a record in its flash file).
        """
        board = self.boards[index]
        if self.firmware == "qemu":
            raise LabBoardError(
                "a QEMU board keeps its device key inside its flash file",
                remedy="Clone secure elements with --firmware python or c.",
                board=index,
            )
        if self.firmware == "c":
            return board.state_dir / c_agent.DEVICE_KEY_FILE
        return BoardState(board.state_dir).key_file

    # ------------------------------------------------------------------ internals
    def _define(self, index: int, kind: str, faults: Faults) -> LabBoard:
        board = LabBoard(
            index=index,
            kind=kind,
            serial=f"LB{self.tag}-{index:03d}",
            state_dir=self.lab_dir / "boards" / f"board-{index}",
            faults=faults,
        )
        self.boards[index] = board
        return board

    def _spawn(self, board: LabBoard) -> None:
        board.state_dir.mkdir(parents=True, exist_ok=True)
        if self.firmware == "c":
            command = self._c_command(board)
        elif self.firmware == "qemu":
            command = self._qemu_command(board)
        else:
            command = self._python_command(board)
        with (board.state_dir / "board.log").open("ab") as log:
            board.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # Ctrl-C in a terminal reaches the runner only
            )
        board.port = ""
        board.swtpm_pid = None

    def _check_faults(self, faults: Faults) -> None:
        if self.firmware == "c":
            c_agent.check_faults(faults)
        elif self.firmware == "qemu":
            qemu_board.check_faults(faults)

    def _qemu_command(self, board: LabBoard) -> list[str]:
        return [
            sys.executable,
            "-m",
            "station_lab.boards.qemu_board",
            "--state",
            str(board.state_dir),
            "--kind",
            board.kind,
            "--serial",
            board.serial,
            "--faults",
            board.faults.render(),
            "--firmware-image",
            str(qemu_board.firmware_image()),
        ]

    def _c_command(self, board: LabBoard) -> list[str]:
        return c_agent.command(
            c_agent.agent_binary(),
            state_dir=board.state_dir,
            kind=board.kind,
            serial=board.serial,
            model=MODELS[board.kind],
            baud=self.baud,
            faults=board.faults,
            tpm_setup=ensure_local_ca(self.lab_dir / "tpm-ca") if board.kind == "tpm" else None,
        )

    def _python_command(self, board: LabBoard) -> list[str]:
        return [
            sys.executable,
            "-m",
            "station_lab.boards.process",
            "--state",
            str(board.state_dir),
            "--kind",
            board.kind,
            "--serial",
            board.serial,
            "--model",
            MODELS[board.kind],
            "--baud",
            str(self.baud),
            "--tpm-ca",
            str(self.lab_dir / "tpm-ca"),
            "--faults",
            board.faults.render(),
        ]

    def _await_ready(self, board: LabBoard) -> None:
        process = board.process
        assert process is not None and process.stdout is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([process.stdout], [], [], max(0.0, min(remaining, 0.5)))
            if ready:
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    break
                line += chunk
            elif remaining <= 0 or process.poll() is not None:
                break
        try:
            hello = json.loads(line)
            board.port = str(hello["port"])
            board.swtpm_pid = hello.get("swtpm_pid")
        except (ValueError, KeyError, TypeError) as exc:
            self._halt(board, signal.SIGKILL)
            raise LabBoardError(
                f"virtual board {board.index} did not start",
                remedy=f"Read {board.state_dir / 'board.log'} for the reason.",
                board=board.index,
                log=str(board.state_dir / "board.log"),
            ) from exc

    def _halt(self, board: LabBoard, sig: signal.Signals) -> None:
        process = board.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
        # After a SIGKILL the board cannot stop its TPM; swtpm exits when its peer goes away,
        # and we make sure of it so no swtpm outlives the lab.
        if board.swtpm_pid is not None:
            _reap_foreign(board.swtpm_pid)
        board.swtpm_pid = None

    def _clone_tpm(self, source: LabBoard, clone: LabBoard) -> None:
        target = clone.state_dir / "tpm"
        if (target / TPM_STATE_FILE).exists():
            return
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source.state_dir / "tpm" / TPM_STATE_FILE, target / TPM_STATE_FILE)

    def _write_registry(self) -> None:
        entries = [
            {
                "location": board.location,
                "device": board.port,
                "serial_number": board.serial,
                "vid": LAB_VID,
                "pid": LAB_PID,
                "kind": board.kind,
                "firmware": self.firmware,
                "description": f"station lab board ({board.kind})",
                # lab control (station lab power-on): the board process and its state
                "process_id": board.process.pid if board.process is not None else None,
                "state_dir": str(board.state_dir),
            }
            for board in sorted(self.boards.values(), key=lambda b: b.index)
            if board.plugged and board.port
        ]
        body = {"runner_pid": os.getpid(), "boards": entries}
        self.registry_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.registry_path, json.dumps(body, indent=2).encode())


def _reap_foreign(pid: int) -> None:
    """Wait (bounded) for a process that is not our child to exit; kill it if it lingers."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
