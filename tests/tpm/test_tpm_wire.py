"""The station's own TPM commands: parsing that never reads past an answer, and the KDFs.

The parsers are fed answers a real TPM (swtpm behind a lab board) gave to the station's
commands, then every truncation and seeded random corruptions of them: each must end in a
``WireError`` or a TPM error, never in another exception or an endless loop. The KDFs are
checked against tpm2-pytss's independent implementation.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable

import pytest
from tpm2_pytss.constants import TPM2_ALG
from tpm2_pytss.internal.crypto import _kdfa, kdfe

from station.adapters.board.session import BoardSession
from station.adapters.tpm.commands import PolicySession, TpmCommands, TpmResponseError
from station.adapters.tpm.credential import kdfa
from station.adapters.tpm.credential import kdfe as station_kdfe
from station.adapters.tpm.identity import BoardTpmIdentityReader
from station.adapters.tpm.public import parse_public
from station.adapters.tpm.wire import (
    EMPTY,
    PASSWORD,
    Cursor,
    WireError,
    check_response,
    command,
)
from station.domain.errors import TpmFailureModeError
from station_lab.boards.runner import LabBoards
from tests.support.tpm import lab_ca_files, service_trusting

Connect = Callable[..., BoardSession]


class Recording:
    """A board link that keeps every TPM command and the TPM's answer."""

    def __init__(self, session: BoardSession) -> None:
        self.session = session
        self.port = session.port
        self.exchanges: list[tuple[bytes, bytes]] = []

    def tpm(self, request: bytes) -> bytes:
        response = self.session.tpm(request)
        self.exchanges.append((request, response))
        return response


class Replay:
    """A TPM that answers the next command with a given response."""

    def __init__(self, *responses: bytes) -> None:
        self.responses = list(responses)
        self.sent: list[bytes] = []

    def __call__(self, request: bytes) -> bytes:
        self.sent.append(request)
        return self.responses.pop(0)


def _parse(commands: TpmCommands, request: bytes) -> None:
    """Run the parser that belongs to ``request``'s command code against the replayed answer."""
    code = int.from_bytes(request[6:10], "big")
    handle = int.from_bytes(request[10:14], "big") if len(request) >= 14 else 0
    calls: dict[int, Callable[[], object]] = {
        0x173: lambda: commands.read_public(handle),
        0x17A: lambda: commands.handles(0x01C00000, 64),
        0x169: lambda: commands.nv_read_public(handle),
        0x14E: lambda: commands.nv_read(handle, 16, 0),
        0x131: lambda: commands.create_primary(handle, b"\x00\x00"),
        0x120: lambda: commands.evict_control(handle, 0x81000001),
        0x165: lambda: commands.flush_context(handle),
        0x176: commands.start_policy_session,
        0x151: lambda: commands.policy_secret_endorsement(PolicySession(handle, b"")),
        0x147: lambda: commands.activate_credential(handle, handle, PASSWORD, EMPTY, EMPTY),
    }
    calls[code]()


def test_answers_cut_or_corrupted_anywhere_end_in_a_wire_error(
    lab: LabBoards, connect: Connect
) -> None:
    (board,) = lab.start(1, "tpm")
    link = Recording(connect(board.port))
    reader = BoardTpmIdentityReader(link, port=board.port)
    try:
        result = service_trusting(lab_ca_files(lab)).identify(reader)
    finally:
        reader.close()
    assert result.resident
    codes = {int.from_bytes(request[6:10], "big") for request, _ in link.exchanges}
    assert {0x173, 0x17A, 0x169, 0x14E, 0x131, 0x120, 0x165, 0x176, 0x151, 0x147} <= codes

    rng = random.Random(17)
    parsed = 0
    for request, response in link.exchanges:
        variants = [response[:cut] for cut in range(10, len(response))]
        variants.append(response + b"\x00")
        for _ in range(40 if len(response) > 10 else 0):
            corrupt = bytearray(response)
            corrupt[rng.randrange(10, len(corrupt))] ^= 1 << rng.randrange(8)
            variants.append(bytes(corrupt))
        for variant in variants:
            variant = variant[:2] + len(variant).to_bytes(4, "big") + variant[6:]
            assert check_response(variant) == ""  # framing fine: the parser must catch it
            replay = Replay(variant)
            try:
                _parse(TpmCommands(replay), request)
                parsed += 1
            except (WireError, TpmResponseError):
                pass
    assert parsed  # many corruptions still parse (a flipped bit in a key or a nonce)


def test_a_public_area_gives_the_name_the_tpm_gave(lab: LabBoards, connect: Connect) -> None:
    (board,) = lab.start(1, "tpm")
    commands = TpmCommands(connect(board.port).tpm)
    public, name = commands.read_public(0x81010001)
    assert public.name == name and public.template == "rsa2048"
    assert parse_public(public.marshal()) == public
    with pytest.raises(WireError):
        parse_public(public.marshal() + b"\x00")  # a recorded EK is exactly one TPM2B_PUBLIC


def test_resubmit_warnings_are_sent_again_then_given_up() -> None:
    retry = bytes.fromhex("80010000000a00000922")
    success = bytes.fromhex("80010000000a00000000")
    replay = Replay(retry, retry, success)
    TpmCommands(replay).flush_context(0x80000000)
    assert len(replay.sent) == 3 and len(set(replay.sent)) == 1
    endless = Replay(*[retry] * 10)
    with pytest.raises(TpmResponseError) as caught:
        TpmCommands(endless).flush_context(0x80000000)
    assert caught.value.rc == 0x922 and len(endless.sent) == 5


def test_kdfa_and_kdfe_match_an_independent_implementation() -> None:
    for bits in (128, 256, 264, 512):
        key, u, v = secrets.token_bytes(32), secrets.token_bytes(34), secrets.token_bytes(20)
        assert kdfa("sha256", key, b"STORAGE", u, v, bits) == _kdfa(
            TPM2_ALG.SHA256, key, b"STORAGE", u, v, bits
        )
        assert station_kdfe("sha384", key, b"IDENTITY", u, v, bits) == kdfe(
            TPM2_ALG.SHA384, key, b"IDENTITY\x00", u, v, bits
        )


def test_command_layout_counts_every_byte() -> None:
    request = command(0x173, (0x81010001,), b"")
    cursor = Cursor(request)
    assert cursor.u16("tag") == 0x8001 and cursor.u32("size") == len(request)
    assert cursor.u32("code") == 0x173 and cursor.u32("handle") == 0x81010001
    cursor.done("ReadPublic")
    with pytest.raises(WireError, match="needs 4 bytes, 0 left"):
        cursor.u32("past the end")


def test_a_failure_answer_to_the_activation_is_believed_only_if_the_tpm_keeps_failing(
    lab: LabBoards, connect: Connect
) -> None:
    (board,) = lab.start(1, "tpm")
    session = connect(board.port)
    reader = BoardTpmIdentityReader(session, port=board.port)
    ek = reader.read_endorsement_key(template="rsa2048", create_if_absent=False).public
    reader.close()

    class FailingFrom:
        """The board's TPM, answering TPM_RC_FAILURE from the activation on (or only to it)."""

        def __init__(self, *, stays_failed: bool) -> None:
            self.port = board.port
            self.failed = False
            self.stays_failed = stays_failed

        def tpm(self, request: bytes) -> bytes:
            code = int.from_bytes(request[6:10], "big")
            if code == 0x147 or (self.failed and self.stays_failed):
                self.failed = True
                return bytes.fromhex("80010000000a00000101")
            return session.tpm(request)

    honest_refusal = BoardTpmIdentityReader(FailingFrom(stays_failed=False), port=board.port)
    assert honest_refusal.prove_residency(ek) is False
    failed = BoardTpmIdentityReader(FailingFrom(stays_failed=True), port=board.port)
    with pytest.raises(TpmFailureModeError):
        failed.prove_residency(ek)
