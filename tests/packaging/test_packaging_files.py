"""The packaging files are well-formed: spec, launcher, udev rules, .desktop, icon, scripts.

The PyInstaller build itself is not run here (it takes over a minute): `make package` builds and
smoke-tests it. These checks catch the mistakes that would only show up at build or install time.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import shutil
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import station

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "pyinstaller" / "station.spec"
RULES = PACKAGING / "linux" / "60-station-boards.rules"


class _Recorder:
    """Stands in for one of PyInstaller's build targets; remembers how the spec called it."""

    def __init__(self, calls: dict[str, Any], name: str) -> None:
        self.calls, self.name = calls, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls[self.name] = (args, kwargs)
        return _Built(kwargs)


class _Built:
    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.pure, self.scripts, self.binaries, self.datas = [], [], [], []
        self.kwargs = kwargs


def _collect_submodules(package: str) -> list[str]:
    module = importlib.import_module(package)
    found = [package]
    if hasattr(module, "__path__"):
        found += [m.name for m in pkgutil.walk_packages(module.__path__, f"{package}.")]
    return found


@pytest.fixture(scope="module")
def spec_calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the spec with recorders in place of Analysis/PYZ/EXE/COLLECT (no build happens).

    PyInstaller is in the `package` extra, not in `dev`: its two helpers are stood in for by
    pkgutil equivalents, so this checks what the spec asks for, not PyInstaller itself.
    """
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = _collect_submodules  # type: ignore[attr-defined]
    hooks.collect_data_files = lambda package: []  # type: ignore[attr-defined]
    stubs = {
        "PyInstaller": types.ModuleType("PyInstaller"),
        "PyInstaller.utils": types.ModuleType("PyInstaller.utils"),
        "PyInstaller.utils.hooks": hooks,
    }
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        yield _run_spec(tmp_path_factory.mktemp("dist"))
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _run_spec(distpath: Path) -> dict[str, Any]:
    calls: dict[str, Any] = {"DISTPATH": distpath}
    namespace: dict[str, Any] = {
        "SPECPATH": str(SPEC.parent),
        "DISTPATH": str(distpath),
        "__file__": str(SPEC),
        **{name: _Recorder(calls, name) for name in ("Analysis", "PYZ", "EXE", "COLLECT")},
    }
    exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), namespace)
    return calls


def test_spec_builds_a_one_folder_console_app_named_station(spec_calls: dict[str, Any]) -> None:
    _, exe = spec_calls["EXE"]
    _, coll = spec_calls["COLLECT"]
    assert exe["name"] == coll["name"] == "station"
    assert exe["exclude_binaries"] is True  # one folder: the libraries go to COLLECT
    assert exe["console"] is True


def test_spec_bundles_templates_where_the_app_looks_for_them(spec_calls: dict[str, Any]) -> None:
    (scripts,), analysis = spec_calls["Analysis"]
    assert [Path(s) for s in scripts] == [PACKAGING / "pyinstaller" / "launch.py"]
    assert (str(ROOT / "templates"), "templates") in analysis["datas"]
    hidden = set(analysis["hiddenimports"])
    # lazily imported adapters and the native bindings must be listed
    assert {"station.cli.main", "station.gui.app", "station.bootstrap"} <= hidden
    assert any(m.startswith("station.adapters.") for m in hidden)
    assert {"tpm2_pytss.ESAPI", "pkcs11._pkcs11", "zxingcpp"} <= hidden
    assert "pytest" in analysis["excludes"]


def test_spec_leaves_the_lab_out_of_the_app(spec_calls: dict[str, Any]) -> None:
    _, analysis = spec_calls["Analysis"]
    assert not [m for m in analysis["hiddenimports"] if m.split(".")[0] == "station_lab"]
    # the lab's package and its DPS's own libraries are excluded even if something imported them
    assert {"station_lab", "amqtt", "websockets"} <= set(analysis["excludes"])


def test_spec_ships_the_tss_tcti_backends_that_exist(spec_calls: dict[str, Any]) -> None:
    _, analysis = spec_calls["Analysis"]
    names = {Path(src).name for src, _dest in analysis["binaries"]}
    assert "libtss2-tcti-device.so.0" in names  # libtss2-dev is a system dependency
    assert all(Path(src).is_file() for src, _dest in analysis["binaries"])


def test_spec_puts_the_install_files_next_to_the_binary(spec_calls: dict[str, Any]) -> None:
    share = spec_calls["DISTPATH"] / "station" / "share"
    assert sorted(p.name for p in share.iterdir()) == [
        "60-station-boards.rules",
        "install-system-deps.sh",
        "station.desktop",
        "station.svg",
    ]
    assert (share / "station.svg").read_bytes() == (
        PACKAGING / "linux" / "station.svg"
    ).read_bytes()


def test_launcher_runs_the_station_command() -> None:
    result = subprocess.run(
        [sys.executable, str(PACKAGING / "pyinstaller" / "launch.py"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"station, version {station.__version__}"


# ------------------------------------------------------------------ udev rules
_MATCH_KEYS = {"ACTION", "SUBSYSTEM", "KERNEL", "ENV", "ATTRS", "ATTR", "SUBSYSTEMS", "DRIVERS"}
_ASSIGN_KEYS = {"GROUP", "MODE", "OWNER", "SYMLINK", "ENV", "IMPORT", "GOTO", "LABEL", "TAG"}
_TOKEN = re.compile(r'\s*([A-Z_]+)(?:\{([^}]*)\})?(==|!=|\+=|-=|:=|=)"([^"]*)"\s*(?:,|$)')


def _rule_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _parse_rule(line: str) -> list[tuple[str, str | None, str, str]]:
    tokens, pos = [], 0
    while pos < len(line):
        found = _TOKEN.match(line, pos)
        assert found, f"cannot parse udev rule at {line[pos:]!r}"
        key, attr, op, value = found.groups()
        tokens.append((key, attr, op, value))
        pos = found.end()
    return tokens


def test_udev_rules_parse_and_every_goto_has_its_label() -> None:
    rules = [_parse_rule(line) for line in _rule_lines(RULES.read_text(encoding="utf-8"))]
    gotos, labels = set(), set()
    for tokens in rules:
        for key, _attr, op, value in tokens:
            if op in ("==", "!="):
                assert key in _MATCH_KEYS, f"{key} is not a match key"
            else:
                assert key in _ASSIGN_KEYS, f"{key} is not an assignment key"
            if key == "GOTO":
                gotos.add(value)
            if key == "LABEL":
                labels.add(value)
    assert gotos and gotos <= labels


def test_udev_rules_give_dialout_access_and_a_port_path_name() -> None:
    tokens = [t for line in _rule_lines(RULES.read_text()) for t in _parse_rule(line)]
    assert ("GROUP", None, "=", "dialout") in tokens
    assert ("MODE", None, "=", "0660") in tokens
    assert ("IMPORT", "builtin", "=", "path_id") in tokens
    assert ("SYMLINK", None, "+=", "station/by-path/$env{ID_PATH}") in tokens
    kernel = next(v for k, _a, op, v in tokens if k == "KERNEL")
    assert kernel == "ttyACM[0-9]*|ttyUSB[0-9]*"


def test_udev_rule_parser_rejects_a_malformed_rule() -> None:
    with pytest.raises(AssertionError, match="cannot parse"):
        _parse_rule('GROUP="dialout", MODE=0660')


# ------------------------------------------------------------------ desktop entry and icon
def test_desktop_file_validates() -> None:
    validator = shutil.which("desktop-file-validate")
    assert validator, "desktop-file-utils is missing: run packaging/install-system-deps.sh"
    desktop = PACKAGING / "linux" / "station.desktop"
    result = subprocess.run(
        [validator, str(desktop)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout
    entries = dict(line.split("=", 1) for line in desktop.read_text().splitlines() if "=" in line)
    assert entries["Exec"] == "station gui"
    assert entries["Icon"] == "station"  # installed as station.svg in the icon theme


def test_icon_is_a_square_svg() -> None:
    root = ET.parse(PACKAGING / "linux" / "station.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _x, _y, width, height = root.attrib["viewBox"].split()
    assert width == height


# ------------------------------------------------------------------ scripts and make target
@pytest.mark.parametrize("script", ["smoke-test.sh", "install-system-deps.sh"])
def test_shell_scripts_parse(script: str) -> None:
    result = subprocess.run(
        ["bash", "-n", str(PACKAGING / script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_make_package_builds_then_runs_the_smoke_test() -> None:
    result = subprocess.run(
        ["make", "-n", "package"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    build = next(i for i, line in enumerate(lines) if "packaging/pyinstaller/station.spec" in line)
    smoke = next(i for i, line in enumerate(lines) if "packaging/smoke-test.sh" in line)
    assert build < smoke
