"""Board link benchmark: throughput vs the baud-rate floor, and round-trip overhead per request.

Run: .venv/bin/python benchmarks/bench_link.py

Starts lab boards (real processes on ptys, UART pacing at the given baud) and measures, in the
same run:
* bulk throughput: reading a 6 KiB object; bytes moved on the wire per second vs baud/10;
* round-trip overhead: time per small request minus the wire time of its bytes (paced link),
  and the plain round trip on an unpaced link (the Python cost of both ends);
* a TPM flow (GetRandom x 20 + ReadPublic of the EK) vs the wire time it needs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tpm2_pytss import ESAPI

from station.adapters.board.session import BoardSession, open_session
from station_lab.boards.runner import LabBoards
from tests.support.board_tcti import BoardTcti


def _moved(session: BoardSession) -> int:
    return session.transport.bytes_in + session.transport.bytes_out


def bulk(session: BoardSession, baud: int, rounds: int = 5) -> tuple[float, float]:
    session.write("cert_chain", bytes(range(256)) * 24)  # 6144 bytes
    rates = []
    for _ in range(rounds):
        before, start = _moved(session), time.perf_counter()
        session.read("cert_chain")
        elapsed = time.perf_counter() - start
        rates.append((_moved(session) - before) / elapsed)
    rate = statistics.median(rates)
    return rate, rate / (baud / 10)


def round_trip(session: BoardSession, baud: int, rounds: int = 50) -> tuple[float, float]:
    overheads, totals = [], []
    for _ in range(rounds):
        before, start = _moved(session), time.perf_counter()
        session.hello()
        elapsed = time.perf_counter() - start
        wire = (_moved(session) - before) * 10 / baud if baud else 0.0
        totals.append(elapsed)
        overheads.append(elapsed - wire)
    return statistics.median(totals), statistics.median(overheads)


def tpm_flow(session: BoardSession, baud: int) -> tuple[float, float]:
    ectx = ESAPI(BoardTcti(session))
    try:
        before, start = _moved(session), time.perf_counter()
        for _ in range(20):
            ectx.get_random(32)
        ectx.read_public(ectx.tr_from_tpmpublic(0x81010001))
        elapsed = time.perf_counter() - start
    finally:
        ectx.close()
    return elapsed, (_moved(session) - before) * 10 / baud


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-link-") as tmp:
        print("== bulk throughput (6 KiB read, bytes both directions / s)")
        for baud in (115_200, 460_800):
            with LabBoards(Path(tmp) / f"lab{baud}", baud=baud) as lab:
                (board,) = lab.start(1, "se")
                session = open_session(board.port, timeout_s=5)
                rate, ratio = bulk(session, baud)
                print(
                    f"baud {baud:>7}: {rate:8.0f} B/s, floor {baud / 10:8.0f} B/s, "
                    f"ratio {ratio:.3f}"
                )
                total, overhead = round_trip(session, baud)
                print(
                    f"            hello round trip {total * 1e3:6.2f} ms, of which overhead "
                    f"beyond wire time {overhead * 1e3:5.2f} ms"
                )
                session.close()
        with LabBoards(Path(tmp) / "unpaced", baud=0) as lab:
            (board,) = lab.start(1, "se")
            session = open_session(board.port)
            total, _ = round_trip(session, 0, rounds=300)
            print(f"== unpaced pty: hello round trip {total * 1e3:.3f} ms (both ends' software)")
            session.close()
        with LabBoards(Path(tmp) / "tpm", baud=115_200) as lab:
            (board,) = lab.start(1, "tpm")
            session = open_session(board.port)
            session.hello()
            elapsed, wire = tpm_flow(session, 115_200)
            print(
                f"== TPM flow at 115200 (20 x GetRandom + ReadPublic EK): {elapsed * 1e3:.1f} ms,"
                f" wire floor {wire * 1e3:.1f} ms, ratio {elapsed / wire:.3f}"
            )
            session.close()


if __name__ == "__main__":
    main()
