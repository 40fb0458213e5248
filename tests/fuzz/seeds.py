"""Seed corpus for the agent's libFuzzer targets (agent/fuzz), written from the station's own
codec (station/protocol), deterministically, at build time: ``python -m tests.fuzz.seeds DIR``
writes ``DIR/frame`` and ``DIR/dispatch``.

The requests are the ones the station sends in every flow, plus the limit cases of
docs/board-protocol.md (:data:`LIMIT_CASES`: oversized, deeply nested, huge byte strings, wrong
types, replayed and out-of-order sequence numbers), which tests/cortex_m also sends to the
Cortex-M board to check its answers.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from station.protocol.framing import MAX_ENCODED_FRAME, encode_frame
from station.protocol.messages import Request, Status, encode_request

# AGENT_CAP_* of agent/include/agent_hal.h, the first byte of every seed
CAP_TPM, CAP_SE, CAP_PRIVKEY, CAP_SYMKEY = 0x01, 0x02, 0x04, 0x08
BOARDS = {
    "se": CAP_SE | CAP_SYMKEY,
    "nokey": CAP_PRIVKEY | CAP_SYMKEY,
    "tpm": CAP_TPM | CAP_SYMKEY,
    "all": CAP_TPM | CAP_SE | CAP_PRIVKEY | CAP_SYMKEY,
}


def request(seq: int, op: str, **args: Any) -> bytes:
    """A request payload exactly as the station encodes it."""
    return encode_request(Request(seq=seq, op=op, args=args))


def _raw(body: Any) -> bytes:
    return cbor2.dumps(body, canonical=True)


def _privkey() -> bytes:
    # a fixed P-256 key: the seeds must be the same on every build
    key = ec.derive_private_key(0x5EED_0F_AB1E, ec.SECP256R1())
    return key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())


def _tpm_command(body: bytes = b"\x01\x7a\x00\x00\x00\x06\x00\x00\x01\x00") -> bytes:
    # TPM2_GetCapability-shaped: tag, size (big-endian, whole command), command code, body
    size = 10 + len(body)
    return b"\x80\x01" + size.to_bytes(4, "big") + b"\x00\x00\x01\x7a" + body


def station_flow(kind: str, start: int = 1000) -> list[bytes]:
    """The requests of one provisioning run on a board of ``kind`` (se, nokey or tpm)."""
    seq = iter(range(start, start + 100))
    dps = _raw({"endpoint": "global.azure-devices-provisioning.net", "scope": "0ne00000001",
                "rid": "lab-sn-0001"})  # fmt: skip
    flow = [request(next(seq), "hello", proto=1)]
    if kind == "se":
        flow += [
            request(next(seq), "keygen"),
            request(next(seq), "csr", cn="lab-sn-0001"),
            request(next(seq), "keygen", key="operational", curve="p384"),
            request(next(seq), "csr", key="operational", cn="lab-sn-0001"),
        ]
    elif kind == "nokey":
        flow += [
            request(next(seq), "write", name="privkey", data=_privkey()),
            request(next(seq), "read", name="privkey"),
            request(next(seq), "csr", key="device", cn="lab-sn-0001"),
        ]
    else:
        flow += [request(next(seq), "tpm", cmd=_tpm_command())]
    flow += [
        request(next(seq), "write", name="cert_chain", data=b"\x30\x82" + bytes(range(256)) * 8),
        request(next(seq), "sign", nonce=hashlib.sha256(b"nonce").digest()),
        request(next(seq), "write", name="symkey", data=bytes(32)),
        request(next(seq), "read", name="symkey"),
        request(next(seq), "write", name="dps", data=dps),
        request(next(seq), "read", name="dps"),
        request(next(seq), "lock"),
        request(next(seq), "write", name="dps", data=dps),
        request(next(seq), "keygen", replace=True),
        request(next(seq), "read", name="cert_chain"),
        request(next(seq), "reset", factory=True),
        request(next(seq), "reset"),
    ]
    return flow


@dataclass(frozen=True)
class LimitCase:
    """One request at or beyond a limit of the spec, and the status a board must answer."""

    name: str
    payload: bytes
    status: Status
    seq: int  # the seq the answer carries (0: the request could not be read)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


#: {"seq": 1.0, "op": "hello", "args": {}}: a float where an integer belongs
_FLOAT_SEQ = (
    b"\xa3"
    + _raw("seq")
    + b"\xfb\x3f\xf0"
    + bytes(6)
    + _raw("op")
    + _raw("hello")
    + _raw("args")
    + b"\xa0"
)
#: a request map of indefinite length (0xbf ... 0xff)
_INDEFINITE_MAP = b"\xbf" + request(25, "hello")[1:] + b"\xff"

LIMIT_CASES: tuple[LimitCase, ...] = (
    # nesting: "at most 6 levels below the top map" (args is level 1, its values level 2)
    LimitCase("nesting_7", request(7, "hello", x=_nested(5)), Status.MALFORMED, 0),
    LimitCase("nesting_6", request(6, "hello", x=_nested(4)), Status.BAD_ARGS, 6),
    LimitCase("items_65", request(8, "hello", x=[0] * 65), Status.MALFORMED, 0),
    # huge byte strings and text, beyond the object's and the argument's maximum
    LimitCase("symkey_65", request(9, "write", name="symkey", data=bytes(65)), Status.TOO_LARGE, 9),
    LimitCase("dps_1025", request(10, "write", name="dps", data=bytes(1025)), Status.TOO_LARGE, 10),
    LimitCase("name_33", request(11, "read", name="n" * 33), Status.BAD_ARGS, 11),
    LimitCase("nonce_65", request(12, "sign", nonce=bytes(65)), Status.BAD_ARGS, 12),
    LimitCase("cn_65", request(13, "csr", cn="c" * 65), Status.BAD_ARGS, 13),
    # wrong types
    LimitCase("seq_text", _raw({"seq": "1", "op": "hello"}), Status.MALFORMED, 0),
    LimitCase("seq_zero", _raw({"seq": 0, "op": "hello"}), Status.MALFORMED, 0),
    LimitCase("seq_2p32", _raw({"seq": 2**32, "op": "hello"}), Status.MALFORMED, 0),
    LimitCase("op_bytes", _raw({"seq": 14, "op": b"hello"}), Status.MALFORMED, 0),
    LimitCase("args_array", _raw({"seq": 15, "op": "hello", "args": [1]}), Status.MALFORMED, 0),
    LimitCase("top_key", _raw({"seq": 16, "op": "hello", "extra": 1}), Status.MALFORMED, 0),
    LimitCase("not_a_map", _raw([16, "hello"]), Status.MALFORMED, 0),
    LimitCase("name_int", request(17, "read", name=3), Status.BAD_ARGS, 17),
    LimitCase("data_text", request(18, "write", name="dps", data="text"), Status.BAD_ARGS, 18),
    LimitCase("replace_int", request(19, "keygen", replace=1), Status.BAD_ARGS, 19),
    LimitCase("unknown_arg", request(20, "hello", proto=1, colour="red"), Status.BAD_ARGS, 20),
    LimitCase("unknown_op", request(21, "format"), Status.UNKNOWN_OP, 21),
    LimitCase("unknown_object", request(22, "read", name="firmware"), Status.BAD_ARGS, 22),
    LimitCase("dps_not_cbor", request(23, "write", name="dps", data=b"\xff"), Status.BAD_ARGS, 23),
    # encodings the subset refuses: a float, a tag, an indefinite-length map, trailing bytes
    LimitCase("float", _FLOAT_SEQ, Status.MALFORMED, 0),
    LimitCase("tag", bytes.fromhex("c1") + request(24, "hello"), Status.MALFORMED, 0),
    LimitCase("indefinite", _INDEFINITE_MAP, Status.MALFORMED, 0),
    LimitCase("trailing", request(26, "hello") + b"\x00", Status.MALFORMED, 0),
)


def limit_session() -> list[bytes]:
    """Replayed and out-of-order sequence numbers around the limit cases."""
    first = request(500, "write", name="cert_chain", data=b"\x30\x01\x00")
    return [
        first,
        first,  # a retry: replayed, not applied twice
        request(499, "write", name="cert_chain", data=b"\x30\x01\x01"),  # older seq, new payload
        first,  # no longer the last request: executed again
        *(case.payload for case in LIMIT_CASES),
        request(4294967295, "read", name="cert_chain"),
        request(1, "read", name="cert_chain"),  # the wrap
    ]


def dispatch_seed(caps: int, payloads: Iterable[bytes]) -> bytes:
    """A fuzz_dispatch input: capabilities, then 2-byte-length-prefixed payloads."""
    out = bytearray([caps])
    for payload in payloads:
        out += len(payload).to_bytes(2, "big") + payload
    return bytes(out)


def frame_seed(caps: int, wire: bytes, chunk: int = 64) -> bytes:
    """A fuzz_frame input: capabilities, chunk size - 1, then the bytes on the wire."""
    return bytes([caps, chunk - 1]) + wire


FRAMED = 0x10  # fuzz_frame's framed mode: length-prefixed payloads, framed by the target


def framed_seed(caps: int, payloads: Iterable[bytes], chunk: int = 256) -> bytes:
    """A fuzz_frame input in framed mode: the target frames each payload with a good CRC."""
    return bytes([caps | FRAMED, chunk - 1]) + dispatch_seed(caps, payloads)[1:]


def _sized_write(size: int) -> bytes:
    """A readable write request whose payload is exactly ``size`` bytes (data past its limit)."""
    payload = request(3, "write", name="cert_chain", data=b"")
    overhead = len(payload) + 2  # the empty byte string's 1-byte head becomes 3 bytes
    return request(3, "write", name="cert_chain", data=bytes(size - overhead))


def _wire(payloads: Iterable[bytes]) -> bytes:
    return b"".join(b"\x00" + encode_frame(p) for p in payloads)


def seeds() -> dict[str, dict[str, bytes]]:
    """Every seed by corpus (frame, dispatch) and file name."""
    dispatch: dict[str, bytes] = {}
    frame: dict[str, bytes] = {}
    for kind, caps in BOARDS.items():
        flow = station_flow("tpm" if kind == "all" else kind)
        dispatch[f"flow-{kind}"] = dispatch_seed(caps, flow)
        dispatch[f"limits-{kind}"] = dispatch_seed(caps, limit_session())
        frame[f"flow-{kind}"] = frame_seed(caps, _wire(flow))
    for case in LIMIT_CASES:
        dispatch[f"case-{case.name}"] = dispatch_seed(BOARDS["all"], [case.payload])
    hello = encode_frame(request(1, "hello", proto=1))
    frame["hello-bytewise"] = frame_seed(BOARDS["se"], b"\x00" + hello, chunk=1)
    frame["empty-frames"] = frame_seed(BOARDS["se"], b"\x00\x00\x00" + hello + b"\x00")
    flipped = bytearray(hello)
    flipped[5] ^= 0x10
    frame["bad-crc-then-retry"] = frame_seed(BOARDS["se"], b"\x00" + bytes(flipped) + hello)
    frame["noise-then-frame"] = frame_seed(BOARDS["se"], bytes(range(1, 200)) + b"\x00" + hello)
    frame["cobs-short"] = frame_seed(BOARDS["se"], b"\x00\x05\x01\x00\x02\x01\x00" + hello)
    oversized = b"\x01" * (MAX_ENCODED_FRAME + 10)
    frame["oversized-then-frame"] = frame_seed(BOARDS["se"], oversized + b"\x00" + hello, 256)
    frame["largest-write"] = frame_seed(
        BOARDS["se"], _wire([request(2, "write", name="cert_chain", data=bytes(6144))]), 256
    )
    frame["limits"] = frame_seed(BOARDS["all"], _wire(limit_session()), 256)
    frame["framed-flow-se"] = framed_seed(BOARDS["se"], station_flow("se")[:4])
    # payloads around the 8192-byte limit, readable requests all: within, one over, the most
    # an 8229-byte encoded frame can carry
    for size in (8192, 8193, 8225):
        frame[f"framed-payload-{size}"] = framed_seed(
            BOARDS["se"], [_sized_write(size), request(4, "hello")]
        )
    return {"frame": frame, "dispatch": dispatch}


def write(directory: Path) -> int:
    """Write the corpora under ``directory``; return how many seeds."""
    count = 0
    for corpus, files in seeds().items():
        folder = directory / corpus
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
            count += 1
    return count


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/agent/fuzz/seeds")
    print(f"{write(target)} seeds in {target}")
