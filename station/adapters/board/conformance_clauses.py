"""The clauses of the board conformance suite: one function per checked rule.

Each rule comes from docs/board-protocol.md, and the section number leads each clause's name.

Each clause returns a short text on success and raises :class:`ClauseFailed` (the board broke
the rule) or :class:`ClauseSkipped` (the rule does not apply to this board).
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from station.adapters.board.conformance import (
    Clause,
    ClauseFailed,
    ClauseSkipped,
    ConformanceReport,
    Probe,
    describe,
    expect_status,
    run_clauses,
)
from station.adapters.board.session import Transport
from station.protocol.framing import MAX_PAYLOAD, cobs_encode, crc32, encode_frame
from station.protocol.messages import Status
from station.protocol.ops import OBJECTS, Capability

#: The spec's worked example (section 2): hello with seq 1, as on the wire.
SPEC_HELLO = bytes.fromhex(
    "00 21 a3 62 6f 70 65 68 65 6c 6c 6f 63 73 65 71 01 64 61 72 67 73"
    " a1 65 70 72 6f 74 6f 01 76 5f 1b 6e 00"
)
GET_RANDOM_8 = bytes.fromhex("80010000000c0000017b0008")  # TPM2_GetRandom(8), no sessions
KNOWN_CAPS = {c.value for c in Capability}
_SILENCE_S = 0.3


def _hello_payload(probe: Probe, **extra: Any) -> dict[str, Any]:
    return {"seq": probe.next_seq(), "op": "hello", "args": {"proto": 1, **extra}}


def _malformed(probe: Probe, body: dict[str, Any] | bytes, what: str) -> None:
    payload = body if isinstance(body, bytes) else cbor2.dumps(body, canonical=True)
    expect_status(probe.exchange_payload(payload), Status.MALFORMED, what, seq=0)


def _nak(probe: Probe, wire: bytes, status: Status, what: str) -> None:
    probe.discard()
    probe.send_wire(wire)
    expect_status(probe.expect_answer(), status, what, seq=0)


# ---------------------------------------------------------------------- 4 handshake


def _hello(probe: Probe) -> str:
    info = probe.hello()
    problems = []
    if info.protocol != 1:
        problems.append(f"proto is {info.protocol}, not 1")
    if info.max_payload != MAX_PAYLOAD:
        problems.append(f"max is {info.max_payload}, not {MAX_PAYLOAD}")
    unknown = set(info.capabilities) - KNOWN_CAPS
    if unknown:
        problems.append(f"unknown capabilities {sorted(unknown)}")
    if Capability.SECURE_ELEMENT in info.capabilities and Capability.INJECTED_KEY in (
        info.capabilities
    ):
        problems.append("both se and privkey: a board has a secure element or takes a key")
    if problems:
        raise ClauseFailed("; ".join(problems))
    locked = "locked" if info.locked else "manufacturing mode"
    return (
        f"{info.model} {info.hardware} fw {info.firmware}, caps {list(info.capabilities)}, {locked}"
    )


def _worked_example(probe: Probe) -> str:
    probe.send_wire(SPEC_HELLO)
    response = probe.expect_answer()
    expect_status(response, Status.OK, "the worked example hello", seq=1)
    return "answered seq 1"


def _factory_reset(probe: Probe) -> str:
    probe.need_unlocked()
    if probe.ok("reset", factory=True) != {}:
        raise ClauseFailed("reset must answer an empty result")
    probe.refused(Status.NOT_FOUND, "read", name="cert_chain")
    if probe.has(Capability.SECURE_ELEMENT) or probe.has(Capability.INJECTED_KEY):
        probe.refused(Status.NOT_FOUND, "sign", nonce=b"n")
    return "objects and device key erased; read of a never-written object is not_found"


# ---------------------------------------------------------------------- 2 frames


def _empty_frames(probe: Probe) -> str:
    probe.send_wire(b"\x00\x00\x00")
    probe.expect_silence(_SILENCE_S)
    probe.hello()
    return "no answer to empty frames"


def _bad_crc(probe: Probe) -> str:
    payload = cbor2.dumps(_hello_payload(probe), canonical=True)
    wrong = (crc32(payload) ^ 0x1).to_bytes(4, "little")
    _nak(probe, b"\x00" + cobs_encode(payload + wrong) + b"\x00", Status.MALFORMED, "bad CRC")
    return "NAK with seq 0"


def _bad_cobs(probe: Probe) -> str:
    _nak(probe, b"\x00\x05\x11\x22\x00", Status.MALFORMED, "a block longer than the frame")
    _nak(probe, b"\x00\x02\x11\x00", Status.MALFORMED, "a frame shorter than its CRC")
    return "NAK with seq 0 for both"


def _oversized(probe: Probe) -> str:
    _nak(probe, b"\x00" + b"\x01" * 9000 + b"\x00", Status.TOO_LARGE, "9000 bytes, no 0x00")
    probe.hello()
    return "one too_large NAK, then answers again"


def _largest_payload(probe: Probe) -> str:
    body = _hello_payload(probe, proto=b"")
    filler = MAX_PAYLOAD - len(cbor2.dumps(body, canonical=True)) - 2  # bstr head grows by 2
    body["args"]["proto"] = b"\x00" * filler
    payload = cbor2.dumps(body, canonical=True)
    if len(payload) != MAX_PAYLOAD:
        raise ClauseFailed(f"test payload is {len(payload)} bytes (suite bug)")
    # readable (the seq comes back), though `proto` is not an integer
    expect_status(
        probe.exchange_payload(payload), Status.BAD_ARGS, "8192-byte payload", seq=body["seq"]
    )
    return "an 8192-byte request is read (bad_args for its content)"


def _resync(probe: Probe) -> str:
    seq = probe.next_seq()
    payload = cbor2.dumps({"seq": seq, "op": "hello", "args": {"proto": 1}}, canonical=True)
    noise = bytes(b % 255 + 1 for b in secrets.token_bytes(300))  # no 0x00 in it
    probe.send_wire(noise + b"\x00" + encode_frame(payload))
    for _ in range(3):  # a NAK for the noise may come first
        answer = probe.expect_answer()
        if answer.seq == seq:
            expect_status(answer, Status.OK, "hello after noise", seq=seq)
            return "answered after 300 bytes of noise"
        if answer.seq != 0:
            raise ClauseFailed(f"unexpected answer {describe(answer)}")
    raise ClauseFailed("no answer to the request after the noise")


# ---------------------------------------------------------------------- 3 messages


def _not_a_map(probe: Probe) -> str:
    _malformed(probe, cbor2.dumps([1, 2]), "an array")
    _malformed(probe, {"seq": probe.next_seq(), "op": "hello", "args": {}, "x": 1}, "extra key")
    _malformed(probe, {"seq": probe.next_seq(), "op": "hello", "args": []}, "args not a map")
    _malformed(probe, {"op": "hello", "args": {}}, "no seq")
    _malformed(probe, {"seq": probe.next_seq(), "op": "", "args": {}}, "empty op")
    return "malformed, seq 0"


def _seq_range(probe: Probe) -> str:
    _malformed(probe, {"seq": 0, "op": "hello", "args": {}}, "seq 0")
    _malformed(probe, {"seq": 2**32, "op": "hello", "args": {}}, "seq 2^32")
    _malformed(probe, {"seq": -1, "op": "hello", "args": {}}, "seq -1")
    _malformed(probe, {"seq": True, "op": "hello", "args": {}}, "seq true")
    return "malformed, seq 0"


def _plain_types(probe: Probe) -> str:
    for value, what in (
        (cbor2.CBORTag(1234, 1), "a tag"),
        (1.5, "a float"),
        (cbor2.undefined, "undefined"),
    ):
        _malformed(probe, _hello_payload(probe, proto=value), what)
    _malformed(probe, _hello_payload(probe, proto={1: 2}), "a map key that is not text")
    bad_text = cbor2.dumps(_hello_payload(probe, proto="xx"), canonical=True)
    _malformed(probe, bad_text.replace(b"\x62xx", b"\x62\xc3\x28"), "text that is not UTF-8")
    return "tags, floats, undefined, non-text keys and bad UTF-8: malformed"


def _nesting(probe: Probe) -> str:
    body = _hello_payload(probe, proto=[[[[[]]]]])  # deepest item at level 6
    expect_status(probe.raw(body), Status.BAD_ARGS, "6 levels", seq=body["seq"])
    _malformed(probe, _hello_payload(probe, proto=[[[[[0]]]]]), "7 levels")
    return "6 levels read, 7 malformed"


def _width(probe: Probe) -> str:
    body = _hello_payload(probe, proto=list(range(64)))
    expect_status(probe.raw(body), Status.BAD_ARGS, "64 items", seq=body["seq"])
    _malformed(probe, _hello_payload(probe, proto=list(range(65))), "65 items")
    # 2048 items in all (keys and container heads included): 9 around `proto`, 31 arrays of 64
    # (65 items each) and one of 23; one more is too many
    for extra, readable in ((23, True), (24, False)):
        body = _hello_payload(probe, proto=[[0] * 64] * 31 + [[0] * extra])
        if readable:
            expect_status(probe.raw(body), Status.BAD_ARGS, "2048 items", seq=body["seq"])
        else:
            _malformed(probe, body, "2049 items")
    return "64 items per container and 2048 per message read; 65 and 2049 malformed"


# ---------------------------------------------------------------------- 5 sequence numbers


def _write_payload(probe: Probe, data: bytes) -> tuple[int, bytes]:
    seq = probe.next_seq()
    body = {"seq": seq, "op": "write", "args": {"name": "cert_chain", "data": data}}
    return seq, cbor2.dumps(body, canonical=True)


def _generation(response: Any, what: str) -> int:
    if not response.ok or not isinstance(response.result.get("gen"), int):
        raise ClauseFailed(f"{what}: answered {describe(response)}")
    gen: int = response.result["gen"]
    return gen


def _replay(probe: Probe) -> str:
    probe.need_unlocked()
    _, payload = _write_payload(probe, b"replay-1")
    first = _generation(probe.exchange_payload(payload), "write")
    again = _generation(probe.exchange_payload(payload), "the same write again")
    stored = _generation(probe.call("read", name="cert_chain"), "read")
    if not first == again == stored:
        raise ClauseFailed(f"write answered gen {first}, its retry {again}, read says {stored}")
    _, newer = _write_payload(probe, b"replay-1")
    if _generation(probe.exchange_payload(newer), "the write with a new seq") != first + 1:
        raise ClauseFailed("the same write with a new seq was not applied")
    return f"a retry replays gen {first}; a new seq applies gen {first + 1}"


def _only_last(probe: Probe) -> str:
    probe.need_unlocked()
    _, payload = _write_payload(probe, b"only-last")
    first = _generation(probe.exchange_payload(payload), "write")
    probe.ok("hello", proto=1)
    later = _generation(probe.exchange_payload(payload), "the earlier write re-sent")
    if later != first + 1:
        raise ClauseFailed(f"an older request re-sent after another was not executed ({later})")
    return "an older request after another one is a new request"


def _any_order(probe: Probe) -> str:
    probe.seq = max(2, probe.seq - 1000)
    probe.ok("hello", proto=1)
    return f"answered seq {probe.seq} after higher ones"


# ---------------------------------------------------------------------- 7, 8 operations


def _unknown_op(probe: Probe) -> str:
    probe.refused(Status.UNKNOWN_OP, "format")
    return "unknown_op with the request's seq"


def _bad_args(probe: Probe) -> str:
    probe.refused(Status.BAD_ARGS, "hello", proto=1, colour="red")
    probe.refused(Status.BAD_ARGS, "read", name=1)
    probe.refused(Status.BAD_ARGS, "read")
    probe.refused(Status.BAD_ARGS, "lock", now=True)
    probe.refused(Status.BAD_ARGS, "read", name="n" * 33)
    return "unknown, mistyped, missing and too long arguments: bad_args"


def _tpm_response(rsp: bytes) -> int:
    if len(rsp) < 10:
        raise ClauseFailed(f"TPM response of {len(rsp)} bytes")
    tag, size, code = struct.unpack(">HII", rsp[:10])
    if size != len(rsp) or tag not in (0x8001, 0x8002):
        raise ClauseFailed(f"TPM response header tag {tag:#x} size {size} for {len(rsp)} bytes")
    return int(code)


def _tpm(probe: Probe) -> str:
    probe.need(Capability.TPM)
    rsp = probe.ok("tpm", slow=True, cmd=GET_RANDOM_8)["rsp"]
    code = _tpm_response(rsp)
    if code != 0:
        raise ClauseFailed(f"GetRandom answered TPM_RC {code:#x}")
    probe.refused(Status.BAD_ARGS, "tpm", cmd=GET_RANDOM_8[:9])
    probe.refused(Status.BAD_ARGS, "tpm", cmd=GET_RANDOM_8 + b"\x00")
    probe.refused(Status.BAD_ARGS, "tpm", cmd=b"\x00" * 4097)
    return "GetRandom passes through; short, mis-sized and oversized commands: bad_args"


def _no_tpm(probe: Probe) -> str:
    if probe.has(Capability.TPM):
        raise ClauseSkipped("the board has a TPM")
    probe.refused(Status.UNSUPPORTED, "tpm", cmd=GET_RANDOM_8)
    return "unsupported"


def _spki(der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise ClauseFailed("pub is not a DER SubjectPublicKeyInfo") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ClauseFailed("pub is not a P-256 key")
    return key


def _same_key(a: ec.EllipticCurvePublicKey, b: ec.EllipticCurvePublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


def _keygen(probe: Probe) -> str:
    probe.need(Capability.SECURE_ELEMENT)
    probe.need_unlocked()
    first = _spki(probe.ok("keygen", slow=True)["pub"])
    probe.refused(Status.EXISTS, "keygen", slow=True)
    second = _spki(probe.ok("keygen", slow=True, replace=True)["pub"])
    if _same_key(first, second):
        raise ClauseFailed("keygen with replace kept the old key")
    probe.refused(Status.NOT_FOUND, "keygen", slow=True, key="other", replace=True)
    probe.device_public = second
    return "P-256 SPKI; exists without replace; a new key with replace; other slots not_found"


def _no_keygen(probe: Probe) -> str:
    if probe.has(Capability.SECURE_ELEMENT):
        raise ClauseSkipped("the board has a secure element")
    probe.refused(Status.UNSUPPORTED, "keygen", slow=True)
    return "unsupported"


def _privkey(probe: Probe) -> str:
    probe.need(Capability.INJECTED_KEY)
    probe.need_unlocked()
    probe.refused(Status.BAD_ARGS, "write", name="privkey", data=b"not a key")
    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    probe.refused(Status.BAD_ARGS, "write", name="privkey", data=other)
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    probe.ok("write", name="privkey", data=der)
    state = probe.ok("read", name="privkey")
    if "data" in state or state.get("sha256") != hashlib.sha256(der).digest():
        raise ClauseFailed("read of privkey must answer its SHA-256 only")
    probe.device_public = key.public_key()
    return "a P-256 PKCS#8 key is taken and never read back; others: bad_args"


def _csr(probe: Probe) -> str:
    probe.need(Capability.SECURE_ELEMENT, Capability.INJECTED_KEY)
    public = probe.device_public
    if public is None:
        raise ClauseSkipped("no device key was made or injected by an earlier clause")
    cn = "conformance-" + secrets.token_hex(4)
    der = probe.ok("csr", slow=True, cn=cn)["csr"]
    try:
        request = x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise ClauseFailed("csr is not a DER PKCS#10 request") from exc
    if not request.is_signature_valid:
        raise ClauseFailed("the CSR's signature does not verify")
    if request.subject.rfc4514_string() != f"CN={cn}":
        raise ClauseFailed(f"subject is {request.subject.rfc4514_string()}, not CN={cn}")
    if not isinstance(request.signature_hash_algorithm, hashes.SHA256):
        raise ClauseFailed("the CSR is not signed with SHA-256")
    request_key = request.public_key()
    if not isinstance(request_key, ec.EllipticCurvePublicKey) or not _same_key(request_key, public):
        raise ClauseFailed("the CSR carries another key than the device key")
    if len(request.extensions) or len(list(request.attributes)):
        raise ClauseFailed("the CSR must have no extensions or attributes")
    probe.refused(Status.NOT_FOUND, "csr", slow=True, cn=cn, key="other")
    return "subject CN only, the device key, ECDSA-SHA256"


def _sign(probe: Probe) -> str:
    probe.need(Capability.SECURE_ELEMENT, Capability.INJECTED_KEY)
    public = probe.device_public
    if public is None:
        raise ClauseSkipped("no device key was made or injected by an earlier clause")
    nonce = secrets.token_bytes(64)
    signature = probe.ok("sign", slow=True, nonce=nonce)["sig"]
    try:
        public.verify(signature, nonce, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise ClauseFailed("the signature does not verify with the device key") from exc
    probe.refused(Status.BAD_ARGS, "sign", slow=True, nonce=nonce + b"x")
    return "ECDSA-SHA256 over the nonce; a 65-byte nonce is bad_args"


def _operational_key(probe: Probe) -> str:
    """The P-384 ``operational`` slot that DPS-issued operational certificates need."""
    probe.need(Capability.SECURE_ELEMENT)
    probe.need_unlocked()
    args = {"key": "operational", "curve": "p384", "replace": True}
    response = probe.call("keygen", slow=True, **args)
    if response.status == Status.UNSUPPORTED:
        raise ClauseSkipped("the secure element makes no P-384 keys: no DPS-issued certificates")
    if response.status != Status.OK or not isinstance(response.result.get("pub"), bytes):
        raise ClauseFailed(f"keygen of the operational key: answered {describe(response)}")
    try:
        public = serialization.load_der_public_key(response.result["pub"])
    except ValueError as exc:
        raise ClauseFailed("pub is not a DER SubjectPublicKeyInfo") from exc
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp384r1":
        raise ClauseFailed("the operational key is not a P-384 key")
    probe.refused(Status.EXISTS, "keygen", slow=True, key="operational")
    probe.refused(Status.UNSUPPORTED, "keygen", slow=True, key="operational", curve="p256")
    probe.refused(Status.UNSUPPORTED, "keygen", slow=True, key="device", curve="p384")
    cn = "conformance-" + secrets.token_hex(4)
    der = probe.ok("csr", slow=True, key="operational", cn=cn)["csr"]
    try:
        request = x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise ClauseFailed("the operational csr is not a DER PKCS#10 request") from exc
    if not request.is_signature_valid:
        raise ClauseFailed("the operational CSR's signature does not verify")
    if not isinstance(request.signature_hash_algorithm, hashes.SHA384):
        raise ClauseFailed("the operational CSR is not signed with SHA-384")
    request_key = request.public_key()
    if request.subject.rfc4514_string() != f"CN={cn}" or not (
        isinstance(request_key, ec.EllipticCurvePublicKey) and _same_key(request_key, public)
    ):
        raise ClauseFailed("the operational CSR names another CN or another key")
    nonce = secrets.token_bytes(32)
    signature = probe.ok("sign", slow=True, key="operational", nonce=nonce)["sig"]
    try:
        public.verify(signature, nonce, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as exc:
        raise ClauseFailed("the operational signature does not verify (ECDSA-SHA384)") from exc
    return "P-384 SPKI; its CSR and signatures with SHA-384; other curves unsupported"


def _cert_chain(probe: Probe) -> str:
    probe.need_unlocked()
    data = secrets.token_bytes(OBJECTS["cert_chain"].max_size)
    gen = probe.ok("write", name="cert_chain", data=data)["gen"]
    state = probe.ok("read", name="cert_chain")
    if state.get("data") != data or state.get("gen") != gen:
        raise ClauseFailed("read did not return what was written, with its generation")
    response = probe.call("write", name="cert_chain", data=data + b"x")
    if response.status not in (Status.BAD_ARGS, Status.TOO_LARGE):
        raise ClauseFailed(f"6145 bytes: answered {describe(response)}")
    return f"6144 bytes round-trip at gen {gen}; 6145 refused"


def _dps(probe: Probe) -> str:
    probe.need_unlocked()
    good = cbor2.dumps({"endpoint": "global.example", "scope": "0ne0", "rid": "dev-1"})
    probe.ok("write", name="dps", data=good)
    probe.refused(Status.BAD_ARGS, "write", name="dps", data=cbor2.dumps({"endpoint": "x"}))
    probe.refused(Status.BAD_ARGS, "write", name="dps", data=b"\xff\x00")
    probe.refused(Status.TOO_LARGE, "write", name="dps", data=b"\xa0" * 1025)
    return "a map with endpoint, scope and rid is taken; others bad_args; > 1024 too_large"


def _symkey(probe: Probe) -> str:
    probe.need(Capability.SYMMETRIC_KEY)
    probe.need_unlocked()
    key = secrets.token_bytes(32)
    probe.ok("write", name="symkey", data=key)
    state = probe.ok("read", name="symkey")
    if "data" in state or state.get("sha256") != hashlib.sha256(key).digest():
        raise ClauseFailed("read of symkey must answer its SHA-256 only")
    probe.refused(Status.BAD_ARGS, "write", name="symkey", data=key[:15])
    probe.refused(Status.TOO_LARGE, "write", name="symkey", data=key * 2 + b"x")
    return "16..64 bytes, read back as SHA-256 only"


def _object_capabilities(probe: Probe) -> str:
    probe.need_unlocked()
    checked = []
    for name, capability in (
        ("symkey", Capability.SYMMETRIC_KEY),
        ("privkey", Capability.INJECTED_KEY),
    ):
        if not probe.has(capability):
            probe.refused(Status.UNSUPPORTED, "write", name=name, data=b"\x01" * 16)
            checked.append(name)
    if not checked:
        raise ClauseSkipped("the board takes every object")
    return f"{', '.join(checked)}: unsupported"


def _unknown_object(probe: Probe) -> str:
    probe.refused(Status.BAD_ARGS, "read", name="firmware")
    if probe.info is not None and not probe.info.locked:
        probe.refused(Status.BAD_ARGS, "write", name="firmware", data=b"x")
    return "bad_args"


def _plain_reset(probe: Probe) -> str:
    before = probe.call("read", name="cert_chain")
    if probe.ok("reset") != {}:
        raise ClauseFailed("reset must answer an empty result")
    after = probe.call("read", name="cert_chain")
    if (before.status, before.result) != (after.status, after.result):
        raise ClauseFailed("a reset without factory changed the objects")
    return "objects kept"


# ---------------------------------------------------------------------- 10 lock


def _lock(probe: Probe) -> str:
    if not probe.allow_lock:
        raise ClauseSkipped("locking is for good: run with --lock on a sample board")
    if probe.ok("lock") != {"locked": True}:
        raise ClauseFailed("lock must answer {locked: true}")
    if not probe.hello().locked:
        raise ClauseFailed("hello does not say locked after lock")
    probe.refused(Status.LOCKED, "write", name="cert_chain", data=b"x")
    probe.refused(Status.LOCKED, "reset", factory=True)
    if probe.has(Capability.SECURE_ELEMENT):
        probe.refused(Status.LOCKED, "keygen", slow=True, replace=True)
    probe.ok("read", name="cert_chain")
    if probe.device_public is not None:
        probe.ok("sign", slow=True, nonce=b"locked")
    probe.ok("lock")
    probe.ok("reset")
    if not probe.hello().locked:
        raise ClauseFailed("the lock did not survive a reset")
    return "writes, keygen and factory reset refused; read, sign, lock and reset work"


CLAUSES: tuple[Clause, ...] = (
    ("4", "hello: identity, protocol 1, capabilities, max 8192", _hello),
    ("2", "the spec's worked example is answered", _worked_example),
    ("8 reset", "factory reset erases objects and the device key", _factory_reset),
    ("2", "empty frames are ignored", _empty_frames),
    ("2", "a wrong CRC gets a NAK (seq 0, malformed)", _bad_crc),
    ("2", "broken COBS and short frames get a NAK", _bad_cobs),
    ("2", "an oversized frame gets one too_large NAK", _oversized),
    ("2", "an 8192-byte payload is read", _largest_payload),
    ("2", "resynchronisation after line noise", _resync),
    ("3", "only request maps with seq, op, args", _not_a_map),
    ("3", "seq is 1..4294967295", _seq_range),
    ("3", "only plain CBOR types", _plain_types),
    ("3", "nesting at most 6 levels below the top map", _nesting),
    ("3", "at most 64 items per array or map, 2048 per message", _width),
    ("5.2", "a retried request is replayed, not applied twice", _replay),
    ("5.2", "only the last request is remembered", _only_last),
    ("5.1", "any seq is answered, in any order", _any_order),
    ("7", "unknown operations: unknown_op", _unknown_op),
    ("8", "bad arguments: bad_args", _bad_args),
    ("8 tpm", "TPM passthrough and its command checks", _tpm),
    ("8 tpm", "no TPM: unsupported", _no_tpm),
    ("8 keygen", "device key generation", _keygen),
    ("8 keygen", "no secure element: unsupported", _no_keygen),
    ("8 keygen", "operational key (P-384) for DPS-issued certificates", _operational_key),
    ("9 privkey", "injected private key", _privkey),
    ("8 csr", "certificate signing request", _csr),
    ("8 sign", "proof of possession", _sign),
    ("9 cert_chain", "write and read back, up to 6144 bytes", _cert_chain),
    ("9 dps", "dps content is checked", _dps),
    ("9 symkey", "symmetric key: 16..64 bytes, secret", _symkey),
    ("9", "objects need their capability", _object_capabilities),
    ("9", "unknown objects: bad_args", _unknown_object),
    ("8 reset", "reset keeps objects", _plain_reset),
    ("10", "manufacturing lock", _lock),
)


def run_conformance(
    transport: Transport,
    *,
    allow_lock: bool = False,
    timeout_s: float = 2.0,
    slow_timeout_s: float = 30.0,
) -> ConformanceReport:
    """Drive the board on ``transport`` through every clause (see the module docstring)."""
    probe = Probe(
        transport, timeout_s=timeout_s, slow_timeout_s=slow_timeout_s, allow_lock=allow_lock
    )
    return run_clauses(probe, CLAUSES, transport.url)
