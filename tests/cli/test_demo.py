import os
import signal
from pathlib import Path

from station_lab.cli.demo import _summary
from station_lab.demo import DEMO_BOARDS, run_demo
from tests.support.processes import descendants


def test_demo_runs_twice_and_leaves_no_process_behind(tmp_path: Path, capsys) -> None:
    before = descendants()
    lines: list[str] = []
    for _ in range(2):
        report = run_demo(tmp_path / "demo", lines.append)
        titles = [title for title, _ in report.steps]
        assert "Provision every board" in titles
        assert report.artifacts["database"].exists()
        assert report.artifacts["backup"].exists()
        assert len(report.outcomes) == DEMO_BOARDS
        assert all(outcome.passed for outcome in report.outcomes)
        assert len(report.hubs) == DEMO_BOARDS  # every board registered at first power-on
    passes = [line for line in "\n".join(lines).splitlines() if ": PASS " in line]
    assert len(passes) == 2 * DEMO_BOARDS
    # the power-on step names the device client that registered each board
    booted = [line for line in "\n".join(lines).splitlines() if " -> " in line and " by " in line]
    assert len(booted) == 2 * DEMO_BOARDS
    assert any(" by azure-iot-device " in line for line in booted)
    # the summary's "see it in the GUI" command names the demo's token: the CA is reachable
    capsys.readouterr()
    _summary(report)
    command = next(line for line in capsys.readouterr().out.splitlines() if "GUI:" in line)
    words = command.split("GUI: ", 1)[1].split()
    assert words[0].startswith("SOFTHSM2_CONF=") and words[-1] == "gui"
    softhsm_conf = Path(words[0].split("=", 1)[1])
    assert softhsm_conf == tmp_path / "demo" / "softhsm" / "softhsm2.conf"
    assert "directories.tokendir" in softhsm_conf.read_text()  # the token the demo's CA is in
    leftover = descendants() - before
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover, f"demo left processes running: {leftover}"


def test_a_killed_demo_stops_every_process_it_started(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    demo = subprocess.Popen(
        [sys.executable, "-m", "station.cli.main", "demo", "--dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    assert demo.stdout is not None
    for line in demo.stdout:  # wait until the boards run and are being provisioned
        if "Discover the boards" in line:
            break
    lab = [pid for pid in descendants() if _in_lab(pid, tmp_path)]
    assert lab, "the demo's boards should be running now"
    demo.send_signal(signal.SIGTERM)
    rest = demo.stdout.read()
    assert demo.wait(timeout=120) == 130 and "aborted" in rest
    alive = [pid for pid in lab if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"demo left processes running after SIGTERM: {alive}"


def _in_lab(pid: int, root: Path) -> bool:
    try:
        return str(root) in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
