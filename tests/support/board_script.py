"""One script of requests every conforming board answers alike (Python, C host port, Cortex-M),
and the parts of an answer that must be equal between two boards."""

from __future__ import annotations

from typing import Any

import cbor2

GET_RANDOM_8 = bytes.fromhex("80010000000c0000017b0008")


def request_script(kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Requests every board of ``kind`` gets, in order (ops, errors and limits)."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("hello", {"proto": 1}),
        ("read", {"name": "cert_chain"}),
        ("write", {"name": "cert_chain", "data": b"\x30\x03\x02\x01\x00"}),
        ("read", {"name": "cert_chain"}),
        ("write", {"name": "symkey", "data": bytes(range(32))}),
        ("read", {"name": "symkey"}),
        ("write", {"name": "symkey", "data": bytes(15)}),
        ("write", {"name": "symkey", "data": bytes(65)}),
        ("write", {"name": "dps", "data": cbor2.dumps({"endpoint": "e", "scope": "s"})}),
        ("write", {"name": "privkey", "data": b"not a key"}),
        ("write", {"name": "firmware", "data": b"x"}),
        ("read", {"name": "cert_chain", "extra": 1}),
        ("format", {}),
        ("tpm", {"cmd": GET_RANDOM_8[:9]}),
        ("keygen", {"key": "other"}),
        # the operational slot (P-384) and the curve argument
        ("keygen", {"key": "operational", "curve": "p384"}),
        ("keygen", {"key": "operational", "curve": "p384"}),
        ("keygen", {"key": "operational", "curve": "p256", "replace": True}),
        ("keygen", {"key": "device", "curve": "p521", "replace": True}),
        ("csr", {"key": "operational", "cn": "dev-1"}),
        ("sign", {"key": "operational", "nonce": b"n"}),
        ("sign", {"nonce": b"n"}),
        ("lock", {}),
        ("write", {"name": "cert_chain", "data": b"x"}),
        ("reset", {"factory": True}),
        ("hello", {"proto": 1}),
        ("reset", {}),
    ]
    if kind == "tpm":
        steps.insert(1, ("tpm", {"cmd": GET_RANDOM_8}))
    if kind == "se":
        steps.insert(1, ("keygen", {}))
        steps.insert(2, ("keygen", {}))
    return steps


def comparable_fields(answer: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between two conforming boards: all but free text and identity."""
    res = answer.get("res", {})
    if "serial" in res:
        res = {k: v for k, v in res.items() if k not in ("serial", "fw")}
    if "pub" in res:  # a fresh random key: equal in size and kind only
        res = {"pub": len(res["pub"])}
    if "sig" in res:  # ECDSA signatures are randomized
        res = {"sig": res["sig"][:1]}
    if "csr" in res:  # so are the CSRs' signatures
        res = {"csr": res["csr"][:1]}
    if "rsp" in res:  # TPM random bytes
        res = {"rsp": res["rsp"][:10]}
    return {"seq": answer["seq"], "st": answer["st"], "res": res}
