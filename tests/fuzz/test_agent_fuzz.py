"""The agent's libFuzzer targets (agent/fuzz) run for a bounded time under ASan and UBSan,
seeded from the station's codec; `make fuzz` runs them for longer."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from station.protocol.framing import FrameDecoder
from station.protocol.messages import decode_request
from tests.fuzz.seeds import LIMIT_CASES, seeds, write

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD = REPO_ROOT / "build" / "agent" / "fuzz"
#: Seconds per target in `make test` (`make fuzz` takes FUZZ_SECONDS, 600 by default).
CI_SECONDS = 15
TARGETS = ("fuzz_frame", "fuzz_dispatch")


@pytest.fixture(scope="module")
def fuzzers() -> Path:
    """Configure and build the fuzz targets with clang (incremental: quick once built)."""
    for command in (
        ["cmake", "-S", "agent/fuzz", "-B", str(BUILD), "-DCMAKE_C_COMPILER=clang"],
        ["cmake", "--build", str(BUILD), "-j2"],
    ):
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return BUILD


def test_seeds_are_deterministic_real_station_frames() -> None:
    first, second = seeds(), seeds()
    assert first == second
    # the flow seeds' frames decode with the station's own codec into the requests it sends
    flow = first["frame"]["flow-se"][2:]
    frames = [item for item in FrameDecoder().feed(flow) if isinstance(item, bytes)]
    ops = [decode_request(frame).op for frame in frames]
    assert ops[:3] == ["hello", "keygen", "csr"] and "lock" in ops
    assert {case.name for case in LIMIT_CASES} >= {"nesting_7", "items_65", "symkey_65", "seq_text"}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_runs_clean_for_a_bounded_time(
    fuzzers: Path, target: str, tmp_path: Path
) -> None:
    count = write(tmp_path / "seeds")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    kind = target.removeprefix("fuzz_")
    done = subprocess.run(
        [
            str(fuzzers / target),
            f"-max_total_time={CI_SECONDS}",
            "-max_len=20000",  # room for oversized frames (8229 bytes is the largest legal one)
            "-timeout=20",
            "-rss_limit_mb=1024",
            "-print_final_stats=1",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
            str(tmp_path / "seeds" / kind),
        ],
        capture_output=True,
        text=True,
        timeout=CI_SECONDS + 120,
        check=False,
    )
    log = done.stderr
    assert done.returncode == 0, log[-4000:]
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("leak-*")), log[-4000:]
    executed = re.search(r"stat::number_of_executed_units: (\d+)", log)
    assert executed is not None, log[-4000:]
    assert int(executed.group(1)) > 10 * count  # it fuzzed, beyond replaying the seeds
    assert any(corpus.iterdir())  # new inputs that reached new code were kept
