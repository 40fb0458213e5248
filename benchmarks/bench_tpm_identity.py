"""TPM identity benchmark: EK + EK certificate + residency proof over a 115200-baud board link.

Run: .venv/bin/python benchmarks/bench_tpm_identity.py [--rounds N]

Measured in the same run:
* station: the identity steps through the station's TPM commands -> board protocol -> lab board
  (real process on a pty, UART pacing at 115200 baud) -> swtpm;
* TPM time: the same steps, same code, against swtpm directly over its unix socket (a copy of
  the board's TPM state): the time spent inside the raw TPM command round trips is the TPM
  time; the whole step ("direct") adds the station's own software (command building and
  parsing, MakeCredential, X.509 checks) without any board link;
* wire time: the bytes the station moved on the link in each step, at 10 bits per byte.
The floor is wire time + TPM time; the ratio says how much the station and the link protocol add.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from station.adapters.board.session import BoardSession, open_session
from station.adapters.tpm.ek_certs import X509EkCertificateVerifier
from station.adapters.tpm.identity import BoardTpmIdentityReader
from station_lab.boards.runner import LabBoards
from station_lab.swtpm import SocketSwtpm

BAUD = 115_200
STEPS = ("EK (ReadPublic 0x81010001)", "EK certificate (NV read + check)", "residency proof")


class RawSwtpm:
    """Raw TPM commands to swtpm's unix socket (what the board's TPM would see)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.busy = 0.0  # seconds spent waiting for the TPM

    def tpm(self, command: bytes) -> bytes:
        start = time.perf_counter()
        self.sock.sendall(command)
        header = self._exact(10)
        (size,) = struct.unpack(">I", header[2:6])
        response = header + self._exact(size - 10)
        self.busy += time.perf_counter() - start
        return response

    def _exact(self, count: int) -> bytes:
        data = bytearray()
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("swtpm closed the socket")
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self.sock.close()


def steps(
    reader: BoardTpmIdentityReader, verifier: X509EkCertificateVerifier
) -> list[Callable[[], object]]:
    ek: list[bytes] = []

    def read_ek() -> object:
        ek[:] = [reader.read_endorsement_key(template="rsa2048", create_if_absent=False).public]
        return ek[0]

    def read_cert() -> object:
        ((index, data),) = reader.read_ek_certificates("rsa2048")
        check = verifier.check(data, ek=ek[0], now=datetime.now(UTC), nv_index=index)
        assert check.status.value == "valid", check
        return check

    def prove() -> object:
        assert reader.prove_residency(ek[0])
        return True

    return [read_ek, read_cert, prove]


def measure(
    reader: BoardTpmIdentityReader,
    verifier: X509EkCertificateVerifier,
    rounds: int,
    session: BoardSession | None = None,
    raw: RawSwtpm | None = None,
) -> tuple[list[float], list[int]]:
    """Median seconds and bytes moved per step over ``rounds`` runs (after one warm-up).

    With ``raw``, the "bytes" are the microseconds spent inside TPM commands.
    """
    reader.ensure_storage_root_key()
    for step in steps(reader, verifier):
        step()
    times: list[list[float]] = [[] for _ in STEPS]
    moved: list[list[int]] = [[] for _ in STEPS]
    for _ in range(rounds):
        for i, step in enumerate(steps(reader, verifier)):
            before = _moved(session) if raw is None else int(raw.busy * 1e6)
            start = time.perf_counter()
            step()
            times[i].append(time.perf_counter() - start)
            after = _moved(session) if raw is None else int(raw.busy * 1e6)
            moved[i].append(after - before)
    return [statistics.median(t) for t in times], [int(statistics.median(m)) for m in moved]


def _moved(session: BoardSession | None) -> int:
    if session is None:
        return 0
    return session.transport.bytes_in + session.transport.bytes_out


def on_board(lab: LabBoards, rounds: int) -> tuple[list[float], list[int], Path]:
    (board,) = lab.start(1, "tpm")
    session = open_session(board.port, timeout_s=5, slow_timeout_s=30)
    reader = BoardTpmIdentityReader(session, port=board.port)
    try:
        verifier = X509EkCertificateVerifier.from_paths(_lab_ca(lab))
        times, moved = measure(reader, verifier, rounds, session)
    finally:
        reader.close()
        session.close()
    return times, moved, board.state_dir / "tpm"


def direct(state: Path, lab: LabBoards, rounds: int) -> tuple[list[float], list[float]]:
    """Per step: the whole step against swtpm directly, and the time inside TPM commands."""
    work = Path(tempfile.mkdtemp(prefix="btpm-"))
    shutil.copytree(state, work / "state")
    try:
        with SocketSwtpm(state_dir=work / "state") as swtpm:
            raw = RawSwtpm(str(swtpm.socket))
            reader = BoardTpmIdentityReader(raw, port="swtpm")
            try:
                verifier = X509EkCertificateVerifier.from_paths(_lab_ca(lab))
                times, busy_us = measure(reader, verifier, rounds, raw=raw)
            finally:
                reader.close()
                raw.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return times, [us / 1e6 for us in busy_us]


def _lab_ca(lab: LabBoards) -> list[Path]:
    ca = lab.lab_dir / "tpm-ca" / "ca"
    return [ca / "swtpm-localca-rootca-cert.pem", ca / "issuercert.pem"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("TSS2_LOG", "all+none")
    with tempfile.TemporaryDirectory(prefix="bench-tpm-") as tmp:
        with LabBoards(Path(tmp) / "paced", baud=BAUD) as lab:
            paced, moved, state = on_board(lab, args.rounds)
            lab.stop()
            direct_times, tpm = direct(state, lab, args.rounds)
        with LabBoards(Path(tmp) / "unpaced", baud=0) as lab:
            unpaced, _, _ = on_board(lab, args.rounds)
    print(f"== TPM identity at {BAUD} baud, median of {args.rounds} rounds")
    print(
        f"{'step':<34} {'station':>9} {'bytes':>6} {'wire':>8} {'TPM':>8} {'floor':>8} "
        f"{'ratio':>6} {'direct':>8} {'unpaced':>8}"
    )
    totals = [0.0] * 7
    for i, name in enumerate(STEPS):
        wire = moved[i] * 10 / BAUD
        floor = wire + tpm[i]
        row = [paced[i], moved[i], wire, tpm[i], floor, direct_times[i], unpaced[i]]
        totals = [t + v for t, v in zip(totals, row, strict=True)]
        print(
            f"{name:<34} {paced[i] * 1e3:7.1f}ms {moved[i]:6d} {wire * 1e3:6.1f}ms "
            f"{tpm[i] * 1e3:6.1f}ms {floor * 1e3:6.1f}ms {paced[i] / floor:6.3f} "
            f"{direct_times[i] * 1e3:6.1f}ms {unpaced[i] * 1e3:6.1f}ms"
        )
    station, nbytes, wire, tpm_total, floor, direct_total, unpaced_total = totals
    print(
        f"{'total':<34} {station * 1e3:7.1f}ms {int(nbytes):6d} {wire * 1e3:6.1f}ms "
        f"{tpm_total * 1e3:6.1f}ms {floor * 1e3:6.1f}ms {station / floor:6.3f} "
        f"{direct_total * 1e3:6.1f}ms {unpaced_total * 1e3:6.1f}ms"
    )
    print(
        f"station overhead beyond the floor: {(station - floor) * 1e3:.1f} ms "
        f"({(station / floor - 1) * 100:.1f} %)"
    )


if __name__ == "__main__":
    main()
