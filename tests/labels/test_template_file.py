"""Label template files read through the station's one TOML loader: types, keys, hostile files."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.adapters.labels.templates import DEFAULT_TEMPLATE_DIR, load_template
from station.domain.errors import LabelTemplateError

SHIPPED = DEFAULT_TEMPLATE_DIR / "device-50x25.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ("height_mm = 11.2", 'height_mm = "tall"', "text[2].height_mm", "a number"),
        ("dpi = 203", "dpi = true", "media.dpi", "an integer"),
        ("[media]", "[media]\ncolour = 'red'", "media.colour", "unknown key"),
    ],
)
def test_a_mistyped_value_names_its_key_and_file(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text
    path = _write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(LabelTemplateError, match=expected) as info:
        load_template(path)
    assert (info.value.details["key"], info.value.details["file"]) == (key, str(path))


def test_hostile_template_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LabelTemplateError, match="too deeply"):
        load_template(_write(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n"))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(LabelTemplateError, match="not UTF-8"):
        load_template(binary)


def test_a_template_without_media_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(LabelTemplateError, match=r"\[media\]"):
        load_template(_write(tmp_path, 'name = "t"\n'))
