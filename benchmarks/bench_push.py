"""Push throughput against the DPS ceiling, on the stand-in enforcing that ceiling on a scaled clock.

Run: .venv/bin/python benchmarks/bench_push.py [DEVICES] [TIME_SCALE]   (default 15000 devices, 1.5)

DPS allows 1,000 operations per minute per service and 10 enrollments per bulk call, so the
ceiling is 10,000 enrollments per minute. The stand-in enforces exactly that with its minute
shortened by TIME_SCALE, and the station's client-side limit runs on the same scaled minute. In the
same run the benchmark measures:

* the **ceiling floor**: the least time the calls can take when each goes at the unthrottled
  pace but no 1,001st call may start within one (scaled) minute of the call 1,000 before it,
  i.e. DPS's sliding window applied exactly to the peer's pace;
* the **peer**: the same push with both limits off (what this machine and the stand-in can do);
* the **push**: the station's ``batch push`` under the limit; and prints ratios and 429 counts.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _identities import fill, station_in

from station_lab.dps import DpsOptions, LocalDps

LIMIT = 1000  # DPS operations per minute


def _push(devices: int, scale: float, limited: bool) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        options = DpsOptions(
            state_dir=Path(tmp) / "dps", rate_limit=LIMIT if limited else 0, time_scale=scale
        )
        with LocalDps(options) as dps:
            station = station_in(
                Path(tmp),
                f'connection_string_file = "{dps.connection_file}"\n'
                f'ca_bundle = "{dps.ca_bundle}"\n'
                f"rate_limit_per_minute = {LIMIT if limited else 0}\n"
                f"time_scale = {scale}\n",
            )
            try:
                fill(station, "WO-BENCH", devices)
                station.batches().seal("WO-BENCH", operator="boss")
                t0 = time.perf_counter()
                summary = station.batches().push("WO-BENCH", operator="boss")
                elapsed = time.perf_counter() - t0
            finally:
                station.close()
            throttled = sum(1 for e in dps.access_log() if e["status"] == 429)
            assert summary.pushed == devices, summary
            return elapsed, summary.calls, throttled


def _ceiling_floor(calls: int, pace_s: float, window_s: float) -> float:
    """When the last call ends if calls go at ``pace_s`` and never break DPS's sliding window."""
    starts: list[float] = []
    for i in range(calls):
        start = starts[-1] + pace_s if starts else 0.0
        if i >= LIMIT:
            start = max(start, starts[i - LIMIT] + window_s)
        starts.append(start)
    return starts[-1] + pace_s


def main(devices: int, scale: float) -> None:
    window_s = 60 / scale
    peer_s, calls, _ = _push(devices, scale, limited=False)
    push_s, _, throttled = _push(devices, scale, limited=True)
    floor_s = _ceiling_floor(calls, peer_s / calls, window_s)
    ceiling_rate = 10 * LIMIT / window_s
    print(
        f"devices {devices}, bulk calls {calls}, lab minute {window_s:.1f} s (time scale {scale})"
    )
    print(f"DPS ceiling (scaled)        {ceiling_rate:10.0f} enrollments/s")
    print(f"peer: no limit              {devices / peer_s:10.0f} enrollments/s  ({peer_s:.1f} s)")
    print(f"push under the limit        {devices / push_s:10.0f} enrollments/s  ({push_s:.1f} s)")
    print(f"ceiling floor for {calls} calls {floor_s:8.1f} s")
    print(f"push time / ceiling floor   {push_s / floor_s:10.2f}")
    print(f"429 answers                 {throttled:10d}")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 15_000,
        float(sys.argv[2]) if len(sys.argv) > 2 else 1.5,
    )
