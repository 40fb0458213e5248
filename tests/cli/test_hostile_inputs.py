"""Hostile files and arguments get an error line, never a traceback (issue #20, items 6 and 7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hsm.errors import PinUnavailableError
from hsm.pin import read_pin_file
from station.cli.main import main


@pytest.fixture
def ready(tmp_path: Path, capsys) -> Path:
    """An initialised station (admin 'boss'); returns its config file."""
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    assert main(["--config", str(config), "init", "--admin", "boss"]) == 0
    capsys.readouterr()
    return config


def _run(config: Path, *args: str) -> int:
    return main(["--config", str(config), "--operator", "boss", *args])


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert "Traceback" not in text
    assert "error:" in text.lower(), text
    return text


def test_huge_or_endless_inputs_are_refused_before_reading(ready, tmp_path, capsys) -> None:
    assert _run(ready, "ca", "issue", "--csr", "/dev/zero", "--registration-id", "d1") == 1
    assert "the CSR /dev/zero: it is a device, not a file" in _error_line(capsys)
    huge = tmp_path / "huge.jwsl"
    with huge.open("wb") as handle:  # sparse: 600 MiB on paper, nothing on disk
        handle.truncate(600 * 1024 * 1024)
    root = tmp_path / "root.pem"
    root.write_text("x")
    assert main(["manifest", "verify", str(huge), "--trust", str(root)]) == 1
    assert f"the manifest {huge} is larger than 512 MiB" in _error_line(capsys)


def test_config_files_that_attack_the_parser(tmp_path, capsys) -> None:
    nested = tmp_path / "nested.toml"
    nested.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert main(["--config", str(nested), "db", "verify"]) == 1
    assert "nests arrays or tables too deeply" in _error_line(capsys)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["--config", str(binary), "db", "verify"]) == 1
    assert "not UTF-8" in _error_line(capsys)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (2 * 1024 * 1024))
    assert main(["--config", str(big), "db", "verify"]) == 1
    assert "larger than 1 MiB" in _error_line(capsys)
    negative = tmp_path / "negative.toml"
    negative.write_text("[board]\ntimeout_s = -1\n", encoding="utf-8")
    assert main(["--config", str(negative), "db", "verify"]) == 1
    assert "[board] timeout_s = -1.0 is out of range" in _error_line(capsys)


def test_a_binary_or_huge_pin_file_is_an_error(tmp_path) -> None:
    pin = tmp_path / "pin"
    pin.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    os.chmod(pin, 0o600)
    with pytest.raises(PinUnavailableError, match="not text"):
        read_pin_file(pin)
    pin.write_bytes(b"1234\x1b[2J\n")
    with pytest.raises(PinUnavailableError, match="control characters"):
        read_pin_file(pin)
    pin.write_bytes(b"1" * 10_000)
    with pytest.raises(PinUnavailableError, match="one short line"):
        read_pin_file(pin)


def test_arguments_that_used_to_crash(ready, tmp_path, capsys) -> None:
    assert _run(ready, "batch", "open", "", "--product", "lab-tpm", "--size", "1") == 2
    assert "a batch needs a name" in _error_line(capsys)
    args = ("provision", "--void-job", "1" * 25, "--reason", "x")
    assert _run(ready, *args) == 2
    _error_line(capsys)
    for interval in ("-1", "nan", "inf"):
        assert _run(ready, "provision", "--batch", "B", "--watch", "--interval", interval) == 2
        _error_line(capsys)
    assert _run(ready, "ca", "issue", "--csr", str(tmp_path), "--registration-id", "d1") == 2
    assert "is a directory" in _error_line(capsys)


def test_ca_status_fails_when_the_token_is_missing(ready, tmp_path, capsys) -> None:
    (tmp_path / "data" / "ca").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "ca" / "key.uri").write_text("pkcs11:token=no-such-token;object=k\n")
    assert _run(ready, "ca", "status") == 1
    assert "error:" in capsys.readouterr().out


_HOSTILE = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "-1",
            "nan",
            "inf",
            "-inf",
            "1e999",
            "9" * 25,
            "-" * 3,
            "\x1b[2J",
            "../../etc/passwd",
            "/dev/zero",
            "/",
            "%s%n",
            "'; DROP TABLE devices;--",
            "=1+1",
        ]
    ),
    # a process argument cannot hold a NUL byte (execve strings end at one)
    st.text(min_size=0, max_size=40).filter(lambda s: "\x00" not in s),
)
_COMMANDS = [
    ("batch", "open", "{v}", "--product", "lab-tpm", "--size", "1"),
    ("batch", "open", "WO-H", "--product", "{v}", "--size", "1"),
    ("batch", "open", "WO-H", "--product", "lab-tpm", "--size", "{v}"),
    ("batch", "report", "{v}", "--out", "{tmp}/r.pdf"),
    ("batch", "seal", "{v}"),
    ("devices", "show", "{v}"),
    ("devices", "list", "--batch", "{v}", "--limit", "{v}"),
    ("label", "preview", "{v}", "--out", "{tmp}/p.png"),
    ("label", "reprint", "{v}", "--reason", "{v}", "--out", "{tmp}/l.pdf"),
    ("provision", "--void-job", "{v}", "--reason", "r"),
    ("provision", "--batch", "{v}", "--watch", "--interval", "{v}"),
    ("ca", "issue", "--csr", "{v}", "--registration-id", "{v}"),
    ("ca", "verify-code", "{v}"),
    ("operator", "enable", "{v}"),
    ("manifest", "verify", "{v}", "--trust", "{v}"),
    ("db", "backup", "{v}"),
]


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(command=st.sampled_from(_COMMANDS), value=_HOSTILE)
def test_hostile_argument_values_get_an_error_line_never_a_traceback(
    ready, tmp_path, capsys, monkeypatch, command, value
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path value lands in the test's folder
    args = [part.format(v=value, tmp=tmp_path) for part in command]
    code = _run(ready, *args)
    captured = capsys.readouterr()
    text = captured.err + captured.out
    assert "Traceback" not in text
    if code != 0:  # a value that happens to be valid may succeed; a failure must explain itself
        assert code in (1, 2), (args, code, text)
        assert "error:" in text.lower(), (args, text)
