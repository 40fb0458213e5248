from __future__ import annotations

import os
from pathlib import Path

import pytest

from hsm import InvalidKeyUriError, PinSource, PinUnavailableError, parse_key_uri
from hsm.uri import FileUri, Pkcs11Uri, TpmUri, format_pkcs11_uri


def test_pkcs11_uri_attributes_are_percent_decoded() -> None:
    uri = parse_key_uri("pkcs11:token=Station%20CA;object=ca-key;id=%01%ff?module-path=/x/y.so")
    assert uri == Pkcs11Uri(
        token="Station CA", object="ca-key", id=b"\x01\xff", module_path="/x/y.so"
    )


def test_pkcs11_uri_round_trips_through_format() -> None:
    original = Pkcs11Uri(token="a;b", object="k=1", id=b"\x00\x10", pin_source="/p in")
    assert parse_key_uri(format_pkcs11_uri(original)) == original


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("pkcs11:token=x;object=k?pin-value=1234", "pin-value"),
        ("pkcs11:token=x;colour=red", "unknown or malformed"),
        ("pkcs11:token=x;token=y", "twice"),
        ("pkcs11:token=%zz", "percent-encoding"),
        ("hsm:whatever", "unknown scheme"),
        ("no-scheme", "no scheme"),
        ("tpm:0x01000000", "persistent handle"),
        ("tpm:banana", "not a TPM handle"),
        ("tpm:0x81000010?socket=/x", "tcti="),
        ("file:", "names no file"),
    ],
)
def test_bad_uris_are_refused_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(InvalidKeyUriError) as info:
        parse_key_uri(text)
    assert fragment in info.value.message


def test_tpm_and_file_uris() -> None:
    assert parse_key_uri("tpm:0x81000010") == TpmUri(0x81000010, "device:/dev/tpmrm0")
    assert parse_key_uri("tpm:0x81000011?tcti=swtpm:path=/tmp/s").tcti == "swtpm:path=/tmp/s"  # type: ignore[union-attr]
    assert parse_key_uri("file:///tmp/k.p8") == FileUri(Path("/tmp/k.p8"))


def _pin_file(tmp_path: Path, mode: int, text: str = "4321\n") -> Path:
    path = tmp_path / "pin"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_pin_file_must_be_private(tmp_path: Path) -> None:
    assert PinSource(file=_pin_file(tmp_path, 0o600)).resolve("x") == "4321"
    with pytest.raises(PinUnavailableError) as info:
        PinSource(file=_pin_file(tmp_path, 0o644)).resolve("x")
    assert "chmod 600" in info.value.remedy


def test_pin_sources_in_order_env_then_prompt(tmp_path: Path) -> None:
    asked: list[str] = []

    def prompt(what: str) -> str:
        asked.append(what)
        return "9999"

    assert PinSource(env={"STATION_PKCS11_PIN": "1111"}, prompt=prompt).resolve("t") == "1111"
    assert PinSource(env={}, prompt=prompt).resolve("the PIN of token x") == "9999"
    assert asked == ["the PIN of token x"]
    with pytest.raises(PinUnavailableError):
        PinSource(env={}).resolve("t")
    with pytest.raises(PinUnavailableError):
        PinSource(file=_pin_file(tmp_path, 0o600, "\n")).resolve("t")
