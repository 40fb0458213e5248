"""C board agent benchmark: provisioning cycle per board with C boards on an unpaced link, and the
station's time per board above the board's own compute.

Run: make agent && .venv/bin/python benchmarks/bench_c_agent.py [--boards N]

Everything is real (station on a SQLite file, CA and group key in SoftHSM2, swtpm behind the TPM
boards); the boards are the C agent's host port on ptys with no baud pacing, the closest a pty
gets to a USB CDC-ACM link. Each board runs with ``--timing`` and logs the time it spends on
every request, from the request's bytes in to its answer written.

Per flow, the median over N fresh boards of:
* cycle: wall time of ``ProvisionService.run`` (hello to recorded manifest, lock included);
* board: the board's own time for all its requests (crypto, flash writes, TPM);
* station: cycle - board, i.e. everything that is not the board: station code, SQLite commits,
  HSM calls, and the pty hops (one per request each way);
* requests: how many requests the flow made; station CPU: the station process's CPU per board.
The target (issue #17) is station <= 15 ms per board.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_provision import FLOWS, open_batch, run_one, setup

from station.bootstrap import Station
from station_lab.boards import c_agent
from station_lab.boards.faults import Faults
from station_lab.boards.runner import MODELS
from station_lab.boards.tpm import ensure_local_ca

TARGET_MS = 15.0
_numbers = itertools.count(1)


def start_board(
    root: Path, station: Station, kind: str, index: int
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start one timed C board; return its process, port and log file."""
    state = root / "c-boards" / f"{kind}-{index}"
    state.mkdir(parents=True)
    log = state.parent / f"{kind}-{index}.log"
    command = c_agent.command(
        c_agent.agent_binary(),
        state_dir=state,
        kind=kind,
        serial=f"BENCH-{kind.upper()}-{index:03d}",
        model=MODELS[kind],
        baud=0,
        faults=Faults(),
        tpm_setup=ensure_local_ca(station.config.lab_dir / "tpm-ca") if kind == "tpm" else None,
    )
    with log.open("wb") as err:
        process = subprocess.Popen([*command, "--timing"], stdout=subprocess.PIPE, stderr=err)
    assert process.stdout is not None
    hello = json.loads(process.stdout.readline())
    wait_idle([process.pid] + ([hello["swtpm_pid"]] if hello.get("swtpm_pid") else []))
    return process, str(hello["port"]), log


def _cpu_ticks(pid: int) -> int:
    # utime + stime, the 14th and 15th fields of /proc/PID/stat (after the command's parentheses)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_idle(pids: list[int], quiet_s: float = 0.05, limit_s: float = 10.0) -> None:
    """Wait until a new board and its swtpm have used no CPU for ``quiet_s``.

    A board announces its port before its swtpm has finished loading: that start-up is the
    board's, and a first request sent into it would count it as the station's time.
    """
    deadline = time.monotonic() + limit_s
    before = [_cpu_ticks(pid) for pid in pids]
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = [_cpu_ticks(pid) for pid in pids]
        if now == before:
            return
        before = now


def board_time(log: Path) -> tuple[float, int]:
    """Seconds the board spent on requests, and how many it answered."""
    total = 0.0
    count = 0
    for line in log.read_text().splitlines():
        if line.startswith("timing "):
            total += float(line.rsplit("us=", 1)[1]) / 1e6
            count += 1
    return total, count


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_flow(root: Path, station: Station, boards: int) -> bool:
    print(f"\n## C boards, unpaced link ({boards} boards per flow, median)\n")
    print("| flow | cycle | board | station | requests | station per request | station CPU |")
    print("|---|---|---|---|---|---|---|")
    within = True
    for label, (kind, product) in FLOWS.items():
        batch = open_batch(station, product, boards + 2)
        rows = []
        for _ in range(boards):
            process, port, log = start_board(root, station, kind, next(_numbers))
            try:
                cpu = _cpu()
                cycle, _ = run_one(station, port, batch, 0)
                cpu = _cpu() - cpu
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=10)
            busy, requests = board_time(log)
            rows.append((cycle, busy, cycle - busy, requests, cpu))
        cycle, busy, rest, requests, cpu = (statistics.median(c) for c in zip(*rows, strict=True))
        within = within and rest * 1000 <= TARGET_MS
        print(
            f"| {label} | {cycle * 1000:.1f} ms | {busy * 1000:.1f} ms | {rest * 1000:.1f} ms | "
            f"{requests:.0f} | {rest / requests * 1000:.2f} ms | {cpu * 1000:.1f} ms |"
        )
    return within


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=5, help="boards per flow (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-c-agent-") as tmp:
        root = Path(tmp)
        station = setup(root)
        try:
            started = time.monotonic()
            load = os.getloadavg()[0]
            within = per_flow(root, station, args.boards)
            load = max(load, os.getloadavg()[0])
        finally:
            station.close()
    verdict = "within" if within else "ABOVE"
    print(f"\nstation time per board {verdict} the {TARGET_MS:.0f} ms target")
    print(f"load average (1 min) up to {load:.1f} on {os.cpu_count()} cores during the run")
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
