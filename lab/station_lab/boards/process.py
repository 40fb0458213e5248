"""One virtual board as an OS process on a pseudo-terminal.

Run ``python -m station_lab.boards.process --state DIR ...``. The process makes its TPM (kind
``tpm``), opens a pty, prints one JSON line ``{"port": ..., "pid": ..., "swtpm_pid": ...}`` on
stdout, then serves the board protocol until SIGTERM/SIGINT (exit 0) or an injected unplug
(exit 3). It keeps its own copy of the pty's terminal side open, so stations may close and reopen
the port at will; when the process ends the port vanishes, like an unplugged USB board.

The link emulates a UART: at ``--baud`` B (8N1, 10 bits per byte) every byte takes 10/B seconds
in each direction, whatever the pty would allow.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pty
import random
import select
import signal
import sys
import time
import tty
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from station.protocol.framing import BadFrame, FrameDecoder, FrameFault, encode_frame
from station.protocol.messages import (
    MessageError,
    Response,
    Status,
    decode_request,
    encode_response,
)
from station_lab.boards.faults import Faults
from station_lab.boards.firmware import Firmware
from station_lab.boards.poweron import PowerOnHook
from station_lab.boards.state import BoardState, Identity
from station_lab.boards.tpm import Swtpm, ensure_local_ca, manufacture
from station_lab.boards.tpm_faults import FaultyTpm

log = logging.getLogger("station_lab.board")

EXIT_UNPLUGGED = 3
_TX_CHUNK = 64


class Unplugged(Exception):
    """An injected unplug: the process must vanish now."""


class BoardLoop:
    """Serve the protocol on a pty master fd, with baud pacing and fault injection."""

    def __init__(
        self,
        fd: int,
        firmware: Firmware,
        *,
        baud: int,
        faults: Faults,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        power_on: PowerOnHook | None = None,
    ) -> None:
        self.fd = fd
        self.power_on = power_on
        self._clock = clock
        self._sleep = sleep
        self.firmware = firmware
        self.faults = faults
        self.byte_time = 10.0 / baud if baud > 0 else 0.0
        self.rng = random.Random(faults.seed or None)
        self.decoder = FrameDecoder()
        self.stopping = False
        self.sent = 0
        self._rx_clock = 0.0
        self._tx_clock = 0.0
        self._muted: set[str] = set()
        self._parent = os.getppid()

    def run(self) -> None:
        """Serve until :attr:`stopping` is set.

        Raises:
            Unplugged: an injected unplug happened.
        """
        while not self.stopping:
            if self.power_on is not None:
                # Lab control: first boot runs between frames, as the firmware's main loop would.
                self.power_on.serve(self.firmware.tpm)
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if not ready:
                if os.getppid() != self._parent:
                    # The lab runner died without stopping us (SIGKILL): do not live on alone.
                    log.info("lab runner gone; stopping")
                    return
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                # EIO: no terminal side open; cannot happen while we hold one, but never spin.
                time.sleep(0.05)
                continue
            self._pace_rx(len(data))
            for item in self.decoder.feed(self._noise(data)):
                self._serve(item)

    def _serve(self, item: bytes | BadFrame) -> None:
        if isinstance(item, BadFrame):
            status = Status.TOO_LARGE if item.fault is FrameFault.OVERSIZED else Status.MALFORMED
            nak = Response(seq=0, status=status, message=item.fault.value)
            self._send(encode_frame(encode_response(nak)))
            return
        op = _peek_op(item)
        answer = self.firmware.handle(item)
        faults = self.faults
        if faults.garbage and self.rng.random() < faults.garbage:
            self._send(bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 200))))
            return
        if op and op == faults.mute_once and op not in self._muted:
            self._muted.add(op)
            log.info("fault: muting the first answer to %s", op)
            return
        frame = encode_frame(answer)
        if op and op == faults.unplug_at:
            self._send(frame[: len(frame) // 2], noisy=False)
            raise Unplugged(f"unplug at {op}")
        self._send(frame)

    # ------------------------------------------------------------------ the wire
    def _noise(self, data: bytes) -> bytes:
        faults = self.faults
        if not (faults.flip or faults.drop):
            return data
        out = bytearray()
        for byte in data:
            if faults.drop and self.rng.random() < faults.drop:
                continue
            if faults.flip and self.rng.random() < faults.flip:
                byte ^= 1 << self.rng.randrange(8)
            out.append(byte)
        return bytes(out)

    def _pace_rx(self, count: int) -> None:
        # Bytes reach us at pty speed; act on them only when a real UART would have delivered them.
        if not self.byte_time:
            return
        now = self._clock()
        self._rx_clock = max(self._rx_clock, now) + count * self.byte_time
        delay = self._rx_clock - now
        if delay > 0:
            self._sleep(delay)

    def _send(self, data: bytes, *, noisy: bool = True) -> None:
        if noisy:
            data = self._noise(data)
        for start in range(0, len(data), _TX_CHUNK):
            chunk = data[start : start + _TX_CHUNK]
            limit = self.faults.unplug_after
            if limit and self.sent + len(chunk) >= limit:
                os.write(self.fd, chunk[: limit - self.sent])
                raise Unplugged(f"unplug after {limit} bytes")
            if self.byte_time:
                # Absolute schedule: a chunk is "on the wire" until its last bit has been sent.
                now = self._clock()
                self._tx_clock = max(self._tx_clock, now) + len(chunk) * self.byte_time
                if self._tx_clock > now:
                    self._sleep(self._tx_clock - now)
            os.write(self.fd, chunk)
            self.sent += len(chunk)


def _peek_op(payload: bytes) -> str:
    try:
        return decode_request(payload).op
    except MessageError:
        return ""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="station-lab-board", description=__doc__)
    parser.add_argument("--state", type=Path, required=True, help="the board's state directory")
    parser.add_argument("--kind", choices=("tpm", "se", "nokey"), default="se")
    parser.add_argument("--serial", default="", help="serial number (new boards only)")
    parser.add_argument("--model", default="LAB-BOARD")
    parser.add_argument("--hardware", default="rev-B")
    parser.add_argument("--firmware", default="1.0.0")
    parser.add_argument("--baud", type=int, default=115_200, help="emulated baud (0 = unpaced)")
    parser.add_argument("--faults", default="", help="fault injection, see faults.py")
    parser.add_argument("--tpm-ca", type=Path, help="lab TPM CA directory (kind tpm)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one board; return the exit status."""
    args = _parse(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    faults = Faults.parse(args.faults)
    state = BoardState(args.state)
    state.create(
        Identity(
            serial=args.serial or args.state.name,
            model=args.model,
            hardware=args.hardware,
            firmware=args.firmware,
            kind=args.kind,
        )
    )
    kind = state.identity().kind
    swtpm: Swtpm | None = None
    if kind == "tpm":
        ca_dir = args.tpm_ca or args.state / "tpm-ca"
        manufacture(state.tpm_dir, ensure_local_ca(ca_dir), args.state / "swtpm_setup.log")
        swtpm = Swtpm(state.tpm_dir, args.state / "swtpm.log")
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    power_on = PowerOnHook(state)
    power_on.install()
    loop = BoardLoop(
        master,
        Firmware(
            state,
            FaultyTpm(swtpm, faults, state.root) if swtpm and faults.affects_tpm else swtpm,
            tpm_slowdown=faults.slow_tpm,
            report_serial=not faults.no_serial,
            stuck_key=faults.stuck_key,
            no_p384=faults.no_p384,
            csr_cn=faults.csr_cn,
            bad_csr_sig=faults.bad_csr_sig,
        ),
        baud=args.baud,
        faults=faults,
        power_on=power_on,
    )

    def _stop(signum: int, frame: FrameType | None) -> None:
        loop.stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(
        json.dumps(
            {
                "port": os.ttyname(slave),
                "pid": os.getpid(),
                "swtpm_pid": swtpm.pid if swtpm else None,
                "serial": state.identity().serial,
                "kind": kind,
            }
        ),
        flush=True,
    )
    status = 0
    try:
        loop.run()
    except Unplugged as exc:
        log.info("fault: %s", exc)
        status = EXIT_UNPLUGGED
    finally:
        # Close the pty first: the station sees the board vanish at once, as with a real unplug.
        os.close(master)
        os.close(slave)
        if swtpm is not None:
            swtpm.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
