import base64
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.domain.errors import InvalidRegistrationIdError
from station.domain.registration import (
    is_valid_registration_id,
    normalize_registration_id,
    tpm_registration_id,
)


@pytest.mark.parametrize(
    "value",
    ["a", "0", "sn-0001", "Device.01:abc_def-9", "x" * 128, "a" + "-" * 126 + "b"],
)
def test_accepts_valid_ids(value: str) -> None:
    assert normalize_registration_id(value) == value.lower()


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "empty"),
        ("x" * 129, "length"),
        ("dev ice", "charset"),
        ("dev/1", "charset"),
        ("dévice", "charset"),
        ("-dev", "first"),
        (".dev", "first"),
        ("dev-", "last"),
        ("dev:", "last"),
    ],
)
def test_refuses_invalid_ids_naming_the_rule(value: str, rule: str) -> None:
    with pytest.raises(InvalidRegistrationIdError) as info:
        normalize_registration_id(value)
    assert info.value.details["rule"] == rule
    assert info.value.remedy


def test_x509_limit_is_64_because_the_cn_holds_the_id() -> None:
    assert is_valid_registration_id("a" * 64, x509=True)
    assert not is_valid_registration_id("a" * 65, x509=True)
    assert is_valid_registration_id("a" * 65)


def test_case_insensitive_ids_are_stored_lower_case() -> None:
    assert normalize_registration_id("SN-ABC") == "sn-abc"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:._-", min_size=1, max_size=140))
def test_validity_agrees_with_the_documented_pattern(value: str) -> None:
    import re

    pattern = re.compile(r"^[a-z0-9](?:[a-z0-9:._-]{0,126}[a-z0-9])?$")
    assert is_valid_registration_id(value) == bool(pattern.match(value))


def test_tpm_id_matches_the_azure_sdk_test_key(shared_dir) -> None:
    samples = json.loads((shared_dir / "testdata/tpm-ek-samples/ek_samples.json").read_text())
    assert samples, "no EK samples"
    for sample in samples:
        ek = base64.b64decode(sample["endorsementKey_base64"])
        assert tpm_registration_id(ek) == sample["computed_registrationId"]


def test_tpm_id_is_52_chars_of_lower_base32_and_valid() -> None:
    reg = tpm_registration_id(b"\x00\x01any-ek-bytes")
    assert len(reg) == 52
    assert set(reg) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert is_valid_registration_id(reg, x509=True)
    expected = base64.b32encode(hashlib.sha256(b"\x00\x01any-ek-bytes").digest())
    assert reg == expected.decode().lower().rstrip("=")
