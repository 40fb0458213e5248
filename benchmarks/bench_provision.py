"""Provisioning benchmark: cycle time per board per flow vs the physical floor, and throughput.

Run: .venv/bin/python benchmarks/bench_provision.py [--boards N] [--slots 1,4,8,16]

Everything is real: a station on a SQLite file, its CA key and the symmetric group key in a
SoftHSM2 token, lab boards as processes on ptys pacing their UART at 115200 baud, swtpm behind the
TPM boards.

Per flow (x509 secure element, x509 injected key, symmetric key, TPM), measured in the same run:
* cycle: wall time of ``ProvisionService.run`` for one fresh board at 115200 baud;
* wire: the bytes the station moved on the link for that board, at 10 bits per byte;
* compute: the board-side work (keygen, csr, sign, TPM commands) timed at the operation boundary
  on an unpaced (baud 0) board of the same kind running the same flow; with no wire pacing, each
  such operation's round trip is the board's compute plus a pty hop;
* floor = wire + compute; overhead = cycle / floor. The HSM signing and database commits are
  station work and so count as overhead.

Throughput: 1, 4, 8 and 16 x509 boards provisioned at once on as many slots (one worker thread per
slot), boards per minute and the station process's CPU seconds per board.
"""

from __future__ import annotations

import argparse
import base64
import resource
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hsm.softhsm import activate, create_token
from station.bootstrap import Station, build_station
from station.config import load_config
from station.domain.records import Role
from station.services.provision import ProvisionRequest
from station.services.provision_line import ProvisionLine
from station_lab.boards.runner import LabBoards

BAUD = 115_200
PIN = "1234"
GROUP_KEY_URI = "pkcs11:token=station-ca;object=lab-group-key"
FLOWS = {
    "x509 (secure element)": ("se", "lab-x509"),
    "x509 (injected key)": ("nokey", "lab-nokey"),
    "symmetric key": ("nokey", "lab-sym"),
    "tpm": ("tpm", "lab-tpm"),
}
COMPUTE_OPS = frozenset({"keygen", "csr", "sign", "tpm"})


class TimedLink:
    """A board link that records the time spent in each operation."""

    def __init__(self, link: Any) -> None:
        self._link = link
        self.op_time: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._link, name)
        if not callable(target) or name.startswith("_") or name == "close":
            return target

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return target(*args, **kwargs)
            finally:
                self.op_time[name] = self.op_time.get(name, 0.0) + time.perf_counter() - start

        return timed

    @property
    def wire_bytes(self) -> int:
        transport = self._link.transport
        return int(transport.bytes_in + transport.bytes_out)


def setup(root: Path) -> Station:
    token = create_token(root / "softhsm", "station-ca", pin=PIN)
    activate(token.conf)
    import os

    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    os.environ["STATION_PKCS11_PIN"] = PIN
    os.environ.setdefault("TSS2_LOG", "all+none")
    config_file = root / "station.toml"
    config_file.write_text(
        "[station]\n"
        'id = "bench"\n'
        f'data_dir = "{root / "data"}"\n'
        "[board]\n"
        f"baud = {BAUD}\n"
        "[lab]\n"
        f'dir = "{root / "lab"}"\n'
        "[tpm]\n"
        "trust_lab_ca = true\n",
        encoding="utf-8",
    )
    config = load_config(config_file, env={})
    admin = build_station(config)
    admin.database().initialize(config_file="c", data_dir="d", admin="boss", operator="boss")
    ca = admin.ca()
    ca.init(
        token.uri("station-ca-key"), common_name="Bench CA", organization="ACME", operator="boss"
    )
    ca.lab_root(operator="boss")
    ca.import_group_key(
        GROUP_KEY_URI, base64.b64encode(secrets.token_bytes(32)).decode(), operator="boss"
    )
    admin.operators().add("tina", Role.TECHNICIAN, operator="boss")
    admin.close()
    return build_station(config)


def open_batch(station: Station, product: str, size: int) -> str:
    name = f"B-{product}-{secrets.token_hex(3)}"
    boss = build_station(station.config)
    try:
        boss.batches().open(name=name, product=product, size=size, operator="boss")
    finally:
        boss.close()
    return name


def run_one(station: Station, port: str, batch: str, baud: int) -> tuple[float, TimedLink]:
    from station.adapters.board.session import open_session

    session = open_session(port, baud=baud, timeout_s=5.0, slow_timeout_s=60.0)
    link = TimedLink(session)
    try:
        start = time.perf_counter()
        outcome = station.provisioning().run(
            link,  # type: ignore[arg-type]
            ProvisionRequest(slot="bench", batch=batch, operator="tina"),
        )
        elapsed = time.perf_counter() - start
    finally:
        session.close()
    if not outcome.passed:
        raise SystemExit(f"board on {port} failed: {outcome.detail}")
    return elapsed, link


def per_flow(root: Path, station: Station, boards: int) -> None:
    print(f"\n## cycle time per board at {BAUD} baud ({boards} boards per flow, median)\n")
    print("| flow | cycle | wire bytes | wire time | compute | floor | cycle / floor |")
    print("|---|---|---|---|---|---|---|")
    # one runner in the configured lab dir: the TPM boards' EK certificates chain to its swtpm CA
    with LabBoards(station.config.lab_dir, baud=0) as lab:
        for label, (kind, product) in FLOWS.items():
            batch = open_batch(station, product, boards * 2 + 2)
            lab.baud = 0
            computes = []
            for board in lab.start(boards, kind):
                _, link = run_one(station, board.port, batch, 0)
                computes.append(sum(t for op, t in link.op_time.items() if op in COMPUTE_OPS))
                lab.unplug(board.index)
            lab.baud = BAUD
            cycles, wires = [], []
            for board in lab.start(boards, kind):
                elapsed, link = run_one(station, board.port, batch, BAUD)
                cycles.append(elapsed)
                wires.append(link.wire_bytes)
                lab.unplug(board.index)
            cycle = statistics.median(cycles)
            wire_bytes = statistics.median(wires)
            wire = wire_bytes * 10 / BAUD
            compute = statistics.median(computes)
            floor = wire + compute
            print(
                f"| {label} | {cycle:.3f} s | {wire_bytes:,.0f} | {wire:.3f} s | "
                f"{compute:.3f} s | {floor:.3f} s | {cycle / floor:.2f}x |"
            )


def throughput(root: Path, station: Station, slot_counts: list[int]) -> None:
    print(f"\n## throughput, x509 (secure element) at {BAUD} baud, one worker thread per slot\n")
    print("| slots | wall | boards/min | station CPU per board | vs 1 slot |")
    print("|---|---|---|---|---|")
    base_rate = 0.0
    for count in slot_counts:
        batch = open_batch(station, "lab-x509", count)
        with LabBoards(root / f"lab-line-{count}", baud=BAUD) as lab:
            boards = lab.start(count, "se")
            line = ProvisionLine(
                station.for_thread, batch=batch, operator="tina", emit=lambda event: None
            )
            cpu_before = _cpu()
            start = time.perf_counter()
            for board in boards:
                line.plugged(f"slot-{board.index}", board.port)
            while not line.idle:
                time.sleep(0.02)
            wall = time.perf_counter() - start
            cpu = _cpu() - cpu_before
            line.stop()
            failed = [o for o in line.outcomes() if not o.passed]
            if failed:
                raise SystemExit(f"{len(failed)} boards failed: {failed[0].detail}")
        rate = count / wall * 60
        base_rate = base_rate or rate
        print(
            f"| {count} | {wall:.2f} s | {rate:.1f} | {cpu / count * 1000:.0f} ms | "
            f"{rate / base_rate:.2f}x |"
        )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=3, help="boards per flow (default 3)")
    parser.add_argument("--slots", default="1,4,8,16", help="slot counts (default 1,4,8,16)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-provision-") as tmp:
        root = Path(tmp)
        station = setup(root)
        try:
            per_flow(root, station, args.boards)
            throughput(root, station, [int(n) for n in args.slots.split(",")])
        finally:
            station.close()
    print(f"\nthreads alive at exit: {threading.active_count()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
