"""``file:`` keys: development only, and loud about it."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import hsm
from hsm import PinSource
from hsm.file_backend import DevelopmentKeyWarning


def test_file_key_round_trip_warns_every_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pins = PinSource(env={"STATION_PKCS11_PIN": "correct horse"})
    path = tmp_path / "dev-ca.p8"
    with pytest.warns(DevelopmentKeyWarning, match="DEVELOPMENT KEY"):
        key = hsm.generate_key(f"file:{path}", "ec-p384", pin_source=pins)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert key.custody().development_only
    with caplog.at_level(logging.WARNING), pytest.warns(DevelopmentKeyWarning):
        again = hsm.open_signer(f"file:{path}", pin_source=pins)
    assert "DEVELOPMENT KEY" in caplog.text
    signature = again.sign(b"x", ec.ECDSA(hashes.SHA384()))
    key.public_key().verify(signature, b"x", ec.ECDSA(hashes.SHA384()))


def test_file_key_wrong_passphrase_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "k.p8"
    with pytest.warns(DevelopmentKeyWarning):
        hsm.generate_key(
            f"file:{path}", "ec-p256", pin_source=PinSource(env={"STATION_PKCS11_PIN": "a"})
        )
        with pytest.raises(hsm.WrongPinError):
            hsm.open_signer(f"file:{path}", pin_source=PinSource(env={"STATION_PKCS11_PIN": "b"}))
        with pytest.raises(hsm.TokenNotFoundError):
            hsm.open_signer(f"file:{tmp_path / 'nope'}", pin_source=PinSource(env={}))
        with pytest.raises(hsm.KeyExistsError):
            hsm.generate_key(
                f"file:{path}", "ec-p256", pin_source=PinSource(env={"STATION_PKCS11_PIN": "a"})
            )


def test_file_group_key_is_dev_only_and_derives_like_dps(tmp_path: Path) -> None:
    import base64
    import hashlib
    import hmac

    path = tmp_path / "group.key"
    path.write_text(base64.b64encode(b"g" * 32).decode())
    path.chmod(0o600)
    with pytest.warns(DevelopmentKeyWarning):
        group = hsm.open_group_key(f"file:{path}")
    assert group.derive("dev-1") == hmac.new(b"g" * 32, b"dev-1", hashlib.sha256).digest()
    assert group.custody().development_only
