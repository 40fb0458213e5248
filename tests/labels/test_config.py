"""The ``[labels]`` config section."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import load_config
from station.domain.errors import ConfigError


def test_labels_section_loads_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text(
        f'[station]\ndata_dir = "{tmp_path}"\n[labels]\nprinter = "zpl://10.0.0.41"\n'
        'device_template = "tape-62mm"\n',
        encoding="utf-8",
    )
    config = load_config(path, env={})
    assert config.labels.printer == "zpl://10.0.0.41"
    assert config.labels.device_template == "tape-62mm"
    assert config.labels.batch_template == "sheet-a4-3x8"
    assert config.labels_output_dir == tmp_path / "labels"


def test_unknown_labels_key_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    path.write_text("[labels]\nprinterr = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels\.printerr"):
        load_config(path, env={})
