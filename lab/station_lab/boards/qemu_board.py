"""One lab board that is the C agent's Cortex-M port running in QEMU (an emulated mps2-an385).

Run ``python -m station_lab.boards.qemu_board --state DIR --kind se|nokey ...``. Same contract as
``station_lab.boards.process``: the process prints one JSON line ``{"port": ..., "pid": ...}`` on
stdout once the board's UART is on a pty, then runs until SIGTERM/SIGINT (exit 0). The runner
(``station lab boards --firmware qemu``) publishes it in the lab registry like any lab board.

What is emulated and what is real (docs/agent-porting.md, Cortex-M section):

* The firmware is ``build/agent/cortex-m/agent.elf`` (``make agent``), unchanged: QEMU runs the
  Arm code instruction by instruction; its UART0 is the pty.
* The board's data flash is ``DIR/flash.bin``, which the firmware reads and writes through Arm
  semihosting (QEMU's mps2 has no flash that outlives QEMU). Before the first boot this module
  plays the factory programmer: it writes the factory sector (serial, model, capabilities).
* This process keeps the pty's terminal side open, so a station may close and reopen the port
  at will (QEMU drops output and stops reading while no one holds the pty open). When this
  process dies, even by SIGKILL, QEMU is killed with it (``PR_SET_PDEATHSIG``): an unplug.
* No baud pacing (the emulated UART is as fast as QEMU) and no lab faults other than
  ``no_serial`` (a factory sector without a serial).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import tty
from dataclasses import fields
from pathlib import Path
from types import FrameType

from station.domain.errors import LabBoardError
from station_lab.boards.faults import Faults

#: Environment variable that points at another build of the firmware image.
FIRMWARE_ENV = "STATION_QEMU_AGENT"
#: Where ``make agent`` puts the Cortex-M firmware, relative to the repository root.
BUILD_PATH = Path("build/agent/cortex-m/agent.elf")
QEMU = "qemu-system-arm"
MACHINE = "mps2-an385"
#: The data flash the firmware expects (agent/ports/cortex-m/flash.h).
FLASH_FILE = "flash.bin"
FLASH_SECTOR = 8192
FACTORY_MAGIC = b"STATION-FACTORY 1\n"
#: Capabilities per lab kind: the mps2 board has no TPM.
CAPABILITIES = {"se": ("se", "symkey"), "nokey": ("privkey", "symkey")}
MODELS = {"se": "LAB-SE-CM3", "nokey": "LAB-NOKEY-CM3"}
#: Lab faults a QEMU board can show; the others need the Python board's fault-injecting loop.
SUPPORTED_FAULTS = ("no_serial",)
_PTY_LINE = re.compile(rb"char device redirected to (/dev/\S+) \(label serial0\)")
_READY_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def firmware_image() -> Path:
    """The Cortex-M firmware image QEMU runs.

    Raises:
        LabBoardError: it has not been built.
    """
    configured = os.environ.get(FIRMWARE_ENV)
    path = Path(configured) if configured else Path(__file__).resolve().parents[3] / BUILD_PATH
    if not path.is_file():
        raise LabBoardError(
            f"the Cortex-M board agent is not built ({path})",
            remedy="Run 'make agent' in the repository (needs arm-none-eabi-gcc and "
            "qemu-system-arm: bash packaging/install-system-deps.sh).",
            path=str(path),
        )
    return path


def check_faults(faults: Faults) -> None:
    """Refuse faults a QEMU board cannot inject.

    Raises:
        LabBoardError: a fault other than :data:`SUPPORTED_FAULTS` is set.
    """
    plain = Faults()
    unsupported = [
        field.name
        for field in fields(Faults)
        if field.name not in (*SUPPORTED_FAULTS, "seed")
        and getattr(faults, field.name) != getattr(plain, field.name)
    ]
    if unsupported:
        raise LabBoardError(
            f"QEMU boards cannot inject {', '.join(sorted(unsupported))}",
            remedy="Use --firmware python (or c) for this fault.",
            faults=faults.render(),
        )


def factory_sector(*, serial: str, model: str, caps: tuple[str, ...]) -> bytes:
    """The factory sector a factory programmer writes once (board.c parses it)."""
    lines = [f"model={model}", "hw=mps2-an385", f"caps={','.join(caps)}"]
    if serial:
        lines.insert(0, f"serial={serial}")
    text = FACTORY_MAGIC + "".join(line + "\n" for line in lines).encode("ascii") + b"\0"
    return text + b"\xff" * (FLASH_SECTOR - len(text))


def program_factory(state_dir: Path, *, serial: str, model: str, kind: str) -> None:
    """Write the factory sector of a new board; a board that has its flash keeps it."""
    flash = state_dir / FLASH_FILE
    if flash.exists():
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    sector = factory_sector(serial=serial, model=model, caps=CAPABILITIES[kind])
    temporary = flash.with_suffix(".tmp")
    temporary.write_bytes(sector)  # the firmware extends it with erased sectors at first boot
    temporary.replace(flash)


def qemu_command(image: Path) -> list[str]:
    """The emulator's command line: the board, its UART on a pty, semihosting for the flash."""
    return [
        QEMU,
        "-machine",
        MACHINE,
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "pty",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
        str(image),
    ]


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: QEMU gets SIGKILL when this process dies.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _await_pty(qemu: subprocess.Popen[bytes]) -> str:
    assert qemu.stdout is not None
    deadline = time.monotonic() + _READY_TIMEOUT_S
    seen = b""
    while time.monotonic() < deadline and qemu.poll() is None:
        ready, _, _ = select.select([qemu.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(qemu.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            match = _PTY_LINE.search(seen)
            if match:
                return match.group(1).decode()
    raise LabBoardError(
        "QEMU did not open the board's serial port",
        remedy="Read qemu.log in the board's state directory.",
        output=seen.decode(errors="replace"),
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="station-lab-qemu-board", description=__doc__)
    parser.add_argument("--state", type=Path, required=True, help="the board's state directory")
    parser.add_argument("--kind", choices=tuple(CAPABILITIES), default="se")
    parser.add_argument("--serial", default="", help="serial number (new boards only)")
    parser.add_argument("--model", default="", help="model (default: LAB-SE-CM3 / LAB-NOKEY-CM3)")
    parser.add_argument("--faults", default="", help=f"only {', '.join(SUPPORTED_FAULTS)}")
    parser.add_argument("--firmware-image", type=Path, help="default: the `make agent` build")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one QEMU board; return the exit status (QEMU's own if it ended by itself)."""
    args = _parse(argv)
    faults = Faults.parse(args.faults)
    try:
        check_faults(faults)
        image = args.firmware_image or firmware_image()
    except LabBoardError as exc:
        print(f"{exc.message}: {exc.remedy}", file=sys.stderr)
        return 2
    state_dir: Path = args.state.resolve()
    serial = "" if faults.no_serial else (args.serial or state_dir.name)
    program_factory(state_dir, serial=serial, model=args.model or MODELS[args.kind], kind=args.kind)
    try:
        with (state_dir / "qemu.log").open("ab") as log:
            qemu = subprocess.Popen(
                qemu_command(image),
                cwd=state_dir,  # semihosting opens flash.bin relative to QEMU's directory
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,  # the firmware's semihosting console as well
                preexec_fn=_die_with_parent,
            )
    except FileNotFoundError:
        print(
            f"{QEMU} is not installed: run bash packaging/install-system-deps.sh", file=sys.stderr
        )
        return 2
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        port = _await_pty(qemu)
    except LabBoardError as exc:
        qemu.kill()
        qemu.wait()
        print(f"{exc.message}: {exc.remedy}", file=sys.stderr)
        return 2
    # Hold the terminal side open so QEMU always sees a connected line (see the docstring).
    terminal = os.open(port, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(terminal)
    print(json.dumps({"port": port, "pid": os.getpid(), "qemu_pid": qemu.pid}), flush=True)
    parent = os.getppid()
    status: int | None = None
    while not stopping:
        status = qemu.poll()
        if status is not None or os.getppid() != parent:
            break  # QEMU ended (semihosting exit, a crash) or the runner died: unplug
        time.sleep(0.2)
    if qemu.poll() is None:
        qemu.terminate()
        try:
            qemu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
    os.close(terminal)
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
