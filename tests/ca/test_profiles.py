"""Certificate profiles read from TOML files through the one typed loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.adapters.ca.profiles import default_profile_dir, load_profile, load_profiles
from station.domain.errors import ProfileError


def _write(directory: Path, raw: dict[str, object], name: str = "bad") -> Path:
    path = directory / f"{name}.toml"
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in raw.items()))
    return path


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"validity_days": 0}, "validity_days"),
        ({"validity_days": 10, "key_usage": ["key_cert_sign"]}, "key_usage"),
        ({"validity_days": 10, "extended_key_usage": ["code_signing"]}, "extended_key_usage"),
        ({"validity_days": 10, "organization": "{secret}"}, "organization"),
        ({"validity_days": "ten"}, "validity_days"),
        ({"validity_days": 10, "hash_algorithm": "md5"}, "hash_algorithm"),
        ({"validity_days": 10, "key_usage": "digital_signature"}, "key_usage"),
        ({"validity_days": 10, "key_usage": [1]}, "key_usage[0]"),
    ],
)
def test_profiles_cannot_describe_a_ca_or_nonsense(
    tmp_path: Path, raw: dict[str, object], key: str
) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, raw))
    assert info.value.details["key"] == key


def test_unknown_profile_keys_are_named_with_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"validity_days": 1, "is_ca": True})
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "is_ca" in info.value.message
    assert info.value.details["file"] == str(path)


def test_a_profile_is_named_by_its_file_and_typed(tmp_path: Path) -> None:
    profile = load_profile(
        _write(tmp_path, {"validity_days": 30, "key_usage": ["digital_signature"]}, "device")
    )
    assert (profile.name, profile.validity_days, profile.key_usage) == (
        "device",
        30,
        ("digital_signature",),
    )


def test_a_hostile_profile_file_is_a_clear_error(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ProfileError, match="too deeply"):
        load_profile(deep)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ProfileError, match="not UTF-8"):
        load_profile(binary)


def test_the_shipped_profiles_load() -> None:
    profiles = load_profiles(default_profile_dir())
    assert profiles and all(name == p.name for name, p in profiles.items())
