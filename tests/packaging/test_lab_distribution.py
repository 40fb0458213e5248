"""The lab is a distribution of its own: the station's wheel carries neither its code nor its
dependencies, and the lab's wheel brings both plus the commands it adds to ``station``."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB_ONLY_DEPENDENCIES = ("amqtt", "websockets", "azure-iot-device")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    """Build both wheels the way a release does (isolated build, no dependencies)."""
    out = tmp_path_factory.mktemp("wheels")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT),
         str(ROOT / "lab")],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return {wheel.name.split("-")[0]: zipfile.ZipFile(wheel) for wheel in out.glob("*.whl")}


def _metadata(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def _requires(wheel: zipfile.ZipFile) -> list[str]:
    return Parser().parsestr(_metadata(wheel, "METADATA")).get_all("Requires-Dist") or []


@pytest.fixture(scope="module")
def station_wheel(wheels: dict[str, zipfile.ZipFile]) -> zipfile.ZipFile:
    return wheels["station"]


@pytest.fixture(scope="module")
def lab_wheel(wheels: dict[str, zipfile.ZipFile]) -> zipfile.ZipFile:
    return wheels["station_lab"]


def test_the_station_wheel_carries_no_lab(station_wheel: zipfile.ZipFile) -> None:
    names = station_wheel.namelist()
    assert "station/cli/main.py" in names and "station/adapters/board/discovery.py" in names
    assert not [n for n in names if n.startswith(("station_lab/", "station/lab/"))]
    assert not {"station/cli/lab.py", "station/cli/demo.py"} & set(names)
    requires = " ".join(_requires(station_wheel))
    assert not [dep for dep in LAB_ONLY_DEPENDENCIES if dep in requires]
    entry_points = _metadata(station_wheel, "entry_points.txt")
    assert "station.cli.main:main" in entry_points and "station_lab" not in entry_points


def test_the_lab_wheel_brings_its_dps_its_dependencies_and_its_commands(
    lab_wheel: zipfile.ZipFile,
) -> None:
    names = lab_wheel.namelist()
    assert "station_lab/dps/server.py" in names and "station_lab/node/register-tpm.js" in names
    assert not [n for n in names if n.startswith("station/")]
    requires = _requires(lab_wheel)
    assert "station" in requires
    assert all(any(r.startswith(dep) for r in requires) for dep in LAB_ONLY_DEPENDENCIES)
    entry_points = _metadata(lab_wheel, "entry_points.txt")
    assert "[station.cli]" in entry_points
    assert "lab = station_lab.cli.lab:lab" in entry_points
    assert "demo = station_lab.cli.demo:demo" in entry_points
