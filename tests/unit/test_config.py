from pathlib import Path

import pytest

from station.config import default_config_path, load_config
from station.domain.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(env={})
    assert config.source is None
    assert config.board.baud == 115_200
    assert config.database_path == config.data_dir / "station.db"
    assert default_config_path().name == "station.toml"


def test_values_from_file_and_derived_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[station]\nid = "line-3"\ndata_dir = "{tmp_path}/d"\n[board]\nbaud = 9600\ntimeout_s = 1\n',
    )
    config = load_config(path, env={})
    assert config.station.id == "line-3"
    assert config.board.baud == 9600
    assert config.board.timeout_s == 1.0
    assert config.database_path == tmp_path / "d" / "station.db"
    assert config.source == path


def test_config_is_frozen(tmp_path: Path) -> None:
    import dataclasses

    config = load_config(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.station.id = "x"  # type: ignore[misc]


def test_environment_names_the_config_file_and_overrides_secret_locations(tmp_path: Path) -> None:
    path = write(tmp_path, '[station]\nid = "from-env"\n')
    config = load_config(
        env={
            "STATION_CONFIG": str(path),
            "STATION_PKCS11_PIN_FILE": "/run/secrets/pin",
            "STATION_DATA_DIR": str(tmp_path / "elsewhere"),
        }
    )
    assert config.station.id == "from-env"
    assert config.ca.pin_file == Path("/run/secrets/pin")
    assert config.data_dir == tmp_path / "elsewhere"


def test_missing_named_file_is_an_error_with_a_remedy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", env={})
    assert "does not exist" in info.value.message
    assert "station init" in info.value.remedy
    assert info.value.details["file"] == str(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('[station]\nidd = "x"\n', "station.idd", "unknown key 'station.idd'"),
        ("[bord]\nbaud = 1\n", "bord", "unknown key 'bord'"),
        ('[board]\nbaud = "fast"\n', "board.baud", "must be an integer"),
        ("[board]\nbaud = true\n", "board.baud", "must be an integer"),
        ("[station]\ndata_dir = 3\n", "station.data_dir", "must be a path"),
        ('station = "x"\n', "station", "must be a table"),
    ],
)
def test_invalid_keys_and_types_name_key_and_file(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert fragment in info.value.message
    assert str(path) in info.value.message
    assert info.value.details["key"] == key


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[station\n")
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path, env={})
    assert info.value.details["file"] == str(path)


def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    path.chmod(0)
    import os

    if os.geteuid() == 0:
        # root reads anything; a directory in its place is unreadable for everyone
        path.chmod(0o600)
        path.unlink()
        path.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path, env={})


def test_the_fleet_section_is_off_by_default_and_checked(tmp_path: Path) -> None:
    assert not load_config(env={}).fleet.enabled
    path = tmp_path / "station.toml"
    path.write_text(
        '[fleet]\nconninfo = "host=ledger dbname=fleet"\nonline_products = ["thermo"]\n',
        encoding="utf-8",
    )
    fleet = load_config(path, env={}).fleet
    assert fleet.enabled and fleet.online_products == ("thermo",) and fleet.uniqueness == "deferred"
    by_env = load_config(path, env={"STATION_FLEET_CONNINFO_FILE": str(tmp_path / "c")}).fleet
    assert by_env.conninfo_file == tmp_path / "c"
    path.write_text('[fleet]\nuniqueness = "sometimes"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="uniqueness") as bad:
        load_config(path, env={})
    assert "online" in bad.value.remedy
    path.write_text("[fleet]\nbatch_size = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(path, env={})


@pytest.mark.parametrize(
    "conninfo",
    [
        "host=ledger dbname=fleet user=line3 password=hunter2",
        "host=ledger PASSWORD = hunter2",
        "postgresql://line3:hunter2@ledger/fleet",
    ],
)
def test_a_fleet_password_in_the_config_is_refused_without_echoing_it(
    tmp_path: Path, conninfo: str
) -> None:
    path = tmp_path / "station.toml"
    path.write_text(f'[fleet]\nconninfo = "{conninfo}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path, env={})
    assert "holds a password" in refused.value.message
    assert "conninfo_file" in refused.value.remedy
    assert (
        "hunter2" not in f"{refused.value.message} {refused.value.remedy} {refused.value.details}"
    )


def test_a_fleet_conninfo_without_a_password_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "station.toml"
    text = "postgresql://line3@ledger/fleet?sslmode=verify-full&passfile=/p"
    path.write_text(f'[fleet]\nconninfo = "{text}"\n', encoding="utf-8")
    assert load_config(path, env={}).fleet.conninfo == text
