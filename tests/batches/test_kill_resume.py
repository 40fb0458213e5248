"""kill -9 of ``station batch push`` at random points, then resume: every device exactly once."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from station.domain.pushes import PushState
from station_lab.dps import FaultPlan
from tests.support.cloud import dps_ids

COUNT = 300


def _bulk(dps: Any) -> list[dict[str, Any]]:
    return [e for e in dps.access_log() if e["operation"] == "enrollment.bulk"]


def _push_process(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATION_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "station",
            "--config",
            str(config),
            "--operator",
            "boss",
            "batch",
            "push",
            "WO-K",
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(condition: Any, proc: subprocess.Popen[bytes], deadline_s: float = 60.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    pytest.fail("the push made no progress within the deadline")


@pytest.mark.timeout(180)
def test_kill_9_at_random_points_then_resume_is_exactly_once(
    cloud, dps, fill_batch, cloud_config_file
) -> None:
    ids = fill_batch(cloud, "WO-K", COUNT)
    cloud.batches().seal("WO-K", operator="boss")
    dps.faults.configure(FaultPlan(latency_s=0.01))  # about a LAN's round trip
    rng = random.Random(20261126)
    kills = 0
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(4):
            before = len(_bulk(dps))
            target = before + rng.randint(1, 6)
            proc = _push_process(cloud_config_file)
            procs.append(proc)
            # kill right after the k-th bulk call reached DPS, or while one is in flight
            if _wait_for(lambda t=target: len(_bulk(dps)) >= t, proc):
                time.sleep(rng.uniform(0, 0.02))
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
        final = _push_process(cloud_config_file)
        procs.append(final)
        out, err = final.communicate(timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert final.returncode == 0, err.decode()
    summary = json.loads(out)
    assert (summary["pushed"], summary["total"], summary["conflicts"], summary["failed"]) == (
        COUNT,
        COUNT,
        [],
        {},
    )
    held = dps_ids(dps)
    assert len(held) == len(set(held)) == COUNT and set(held) == set(ids)  # no duplicate, no gap
    assert kills >= 3
    # each kill can leave at most one chunk unanswered; only those are sent twice
    accepted = [e for e in _bulk(dps) if e["status"] == 200]
    assert math.ceil(COUNT / 10) <= len(accepted) <= math.ceil(COUNT / 10) + kills
    states = {e.state for e in cloud.push_outbox().entries("WO-K")}
    assert states == {PushState.PUSHED}
    report = cloud.batches().reconcile("WO-K", operator="boss")
    assert report.clean and report.counts == {"equal": COUNT}
