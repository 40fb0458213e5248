"""Issue 21: ``station gui`` without a display says so instead of letting Qt abort (exit 134)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from station.cli.gui import check_display
from station.domain.errors import ConfigError


def test_station_gui_without_a_display_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["STATION_CONFIG"] = str(tmp_path / "station.toml")
    result = subprocess.run(
        [sys.executable, "-m", "station.cli.main", "gui"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "error: there is no display to open the station window on" in result.stderr
    assert "xvfb-run -a station gui" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"DISPLAY": ":0"},
        {"WAYLAND_DISPLAY": "wayland-0"},
        {"QT_QPA_PLATFORM": "offscreen"},
        {"QT_QPA_PLATFORM": "vnc"},
    ],
)
def test_a_display_or_a_platform_that_needs_none_is_accepted(env: dict[str, str]) -> None:
    check_display(env)


@pytest.mark.parametrize("env", [{}, {"QT_QPA_PLATFORM": "xcb"}, {"QT_QPA_PLATFORM": "wayland"}])
def test_a_desktop_platform_without_a_display_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="no display"):
        check_display(env)
