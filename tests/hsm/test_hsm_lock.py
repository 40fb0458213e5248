"""The HSM lock inside hsm/: one per PKCS#11 module, taken by every operation on its tokens.

Slot workers sign certificates, a push derives device keys and an export signs its manifest,
each through its own session on the same SoftHSM2 token; nothing outside hsm/ serialises them.
The token-side calls are counted: at most one runs per token at any moment and none fails; a
token behind another module is never held up by the first module's lock.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pkcs11 import types as p11types

import hsm
from hsm import PinSource
from hsm.softhsm import SoftHsmToken, activate, create_token

_DEADLINE_S = 60.0
_ROUNDS = 40


class _TokenCalls:
    """Wraps python-pkcs11's sign (ECDSA and HMAC alike): counts calls running per token."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.active: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.hold: dict[str, tuple[threading.Event, threading.Event]] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real: Callable[..., bytes] = p11types.SignMixin.sign
        calls = self

        def sign(obj: Any, data: Any, **kwargs: Any) -> bytes:
            label = str(obj.session.token.label)
            with calls._guard:
                calls.active[label] += 1
                calls.most[label] = max(calls.most[label], calls.active[label])
            try:
                held = calls.hold.pop(label, None)
                if held is not None:  # the test wants this call to stay inside the token
                    entered, release = held
                    entered.set()
                    assert release.wait(_DEADLINE_S)
                return real(obj, data, **kwargs)
            finally:
                with calls._guard:
                    calls.active[label] -= 1

        monkeypatch.setattr(p11types.SignMixin, "sign", sign)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> _TokenCalls:
    counted = _TokenCalls()
    counted.install(monkeypatch)
    return counted


def _run_all(jobs: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], None]) -> None:
        try:
            start.wait(_DEADLINE_S)
            job()
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_DEADLINE_S)
        assert not thread.is_alive(), "a worker hung"
    return errors


def test_signing_and_derivation_on_one_token_are_serialised(
    softhsm: SoftHsmToken, pins: PinSource, calls: _TokenCalls
) -> None:
    group_key = b"g" * 64
    hsm.import_group_key(softhsm.uri("group"), group_key, pin_source=pins)
    ca = hsm.generate_key(softhsm.uri("ca"), "ec-p256", pin_source=pins)
    slot_ca = hsm.open_signer(softhsm.uri("ca"), pin_source=pins)  # another slot's session
    derive = hsm.open_group_key(softhsm.uri("group"), pin_source=pins)
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)

    def sign_with(key: hsm.Signer) -> Callable[[], None]:
        def job() -> None:
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            for n in range(_ROUNDS):
                data = f"csr {n}".encode()
                public.verify(
                    key.sign(data, ec.ECDSA(hashes.SHA256())), data, ec.ECDSA(hashes.SHA256())
                )

        return job

    def derive_keys() -> None:
        for n in range(_ROUNDS):
            wanted = hmac.new(group_key, f"dev-{n}".encode(), hashlib.sha256).digest()
            assert derive.derive(f"dev-{n}") == wanted

    def open_and_close() -> None:  # a manifest signer: opened, public key read, signs, closed
        for n in range(_ROUNDS // 4):
            manifest = hsm.open_signer(softhsm.uri("ca"), pin_source=pins)
            try:
                assert manifest.public_key() == public
                assert isinstance(manifest, ec.EllipticCurvePrivateKey)
                manifest.sign(f"manifest {n}".encode(), ec.ECDSA(hashes.SHA256()))
            finally:
                manifest.close()

    try:
        jobs = [sign_with(ca), sign_with(ca), sign_with(slot_ca), derive_keys, derive_keys]
        errors = _run_all([*jobs, open_and_close])
    finally:
        for key in (derive, slot_ca, ca):
            key.close()
    assert errors == []
    assert calls.most[softhsm.label] == 1  # never two token calls at once


@pytest.fixture
def second_module(softhsm: SoftHsmToken, tmp_path: Path) -> Iterator[tuple[SoftHsmToken, str]]:
    """Another token, reached through a second PKCS#11 module (its own copy of SoftHSM2)."""
    other = create_token(Path(softhsm.conf).parent, f"t-{uuid.uuid4().hex[:8]}", pin=softhsm.pin)
    activate(other.conf)  # the first module sees the new token too
    module = tmp_path / "libsofthsm2-second.so"  # a copy loads as a module of its own
    shutil.copyfile(softhsm.module, module)
    yield other, str(module)


def test_the_lock_belongs_to_one_module_and_never_holds_up_another(
    softhsm: SoftHsmToken,
    second_module: tuple[SoftHsmToken, str],
    pins: PinSource,
    calls: _TokenCalls,
) -> None:
    second_token, module = second_module
    first = hsm.generate_key(softhsm.uri("ca"), "ec-p256", pin_source=pins)
    other = hsm.generate_key(
        f"{second_token.uri('ca')}?module-path={module}", "ec-p256", pin_source=pins
    )
    entered, release = threading.Event(), threading.Event()
    calls.hold[softhsm.label] = (entered, release)
    other_signed = threading.Event()

    def sign_on_first() -> None:
        assert isinstance(first, ec.EllipticCurvePrivateKey)
        first.sign(b"held inside the first token", ec.ECDSA(hashes.SHA256()))

    def sign_on_other() -> None:
        assert entered.wait(_DEADLINE_S)
        assert isinstance(other, ec.EllipticCurvePrivateKey)
        other.sign(b"the second token is free", ec.ECDSA(hashes.SHA256()))
        other_signed.set()

    def release_after_other() -> None:
        # the first module's call is still inside while the second module's token signs
        assert other_signed.wait(_DEADLINE_S)
        assert calls.active[softhsm.label] == 1
        release.set()

    try:
        errors = _run_all([sign_on_first, sign_on_other, release_after_other])
    finally:
        release.set()
        first.close()
        other.close()
    assert errors == []
    assert other_signed.is_set()
    assert calls.most[softhsm.label] == 1
