"""shipped_templates_dir(): next to the package in a checkout, inside the bundle when frozen."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from station.config import StationConfig, shipped_templates_dir

ROOT = Path(__file__).resolve().parents[2]


def test_from_source_it_is_the_repository_templates_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert shipped_templates_dir() == ROOT / "templates"
    assert (shipped_templates_dir() / "products").is_dir()


def test_frozen_it_is_the_bundle_templates_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert shipped_templates_dir() == tmp_path / "templates"
    assert StationConfig().templates_dir == tmp_path / "templates"


def test_frozen_by_another_tool_without_meipass_falls_back_to_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert shipped_templates_dir() == ROOT / "templates"


def test_an_explicit_templates_dir_wins_over_the_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    config = replace(
        StationConfig(), station=replace(StationConfig().station, templates_dir=tmp_path)
    )
    assert config.templates_dir == tmp_path
