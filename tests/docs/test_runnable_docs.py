"""Every ``sh runnable`` block of README.md and docs/*.md runs, as written, in a fresh home.

The way sqlite-utils keeps its docs true: a guide that says "run this" is run by ``make test``,
so a command, an option or an output path that changes breaks the build, not a newcomer's day.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.docs.runnable import MARKER, fresh_home_env, runnable_blocks, script
from tests.support.paths import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
WITH_BLOCKS = [path for path in DOCS if runnable_blocks(path)]
# each document's blocks together: about 35 s of CPU each; the limit leaves room for a loaded machine
TIMEOUT_S = 600


def test_the_guides_newcomers_follow_have_runnable_blocks() -> None:
    names = {path.name for path in WITH_BLOCKS}
    assert {"README.md", "admin-guide.md", "operator-guide.md"} <= names, names


def test_the_marker_is_documented_for_doc_writers() -> None:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"```{MARKER}" in text


@pytest.mark.timeout(TIMEOUT_S + 30)
@pytest.mark.parametrize("doc", WITH_BLOCKS, ids=lambda path: path.name)
def test_runnable_blocks_run_in_a_fresh_home(doc: Path, tmp_path: Path) -> None:
    env = fresh_home_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen(
        ["bash", "-c", script(runnable_blocks(doc))],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout stops what it started too
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    last = [line for line in stderr.splitlines() if line.startswith("### ")]
    where = last[-1][4:] if last else doc.name
    assert process.returncode == 0, (
        f"the block at {where} failed (exit {process.returncode})\n"
        f"--- stdout (tail)\n{stdout[-3000:]}\n--- stderr (tail)\n{stderr[-3000:]}"
    )
    assert "Traceback" not in stdout + stderr
