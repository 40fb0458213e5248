"""Fault injection settings for virtual boards, parsed from ``--faults`` text.

Syntax: comma-separated ``name=value`` items, e.g. ``flip=1e-4,drop=1e-4,slow_tpm=1``.

============== ==============================================================================
``flip=P``     each byte, either direction, gets one random bit flipped with probability P
``drop=P``     each byte, either direction, is lost with probability P
``garbage=P``  the board answers a request with random bytes instead, with probability P
``unplug_after=N``  the board vanishes (process exits) after sending N bytes, mid-frame
``unplug_at=OP``    the board applies OP, sends half of the answer and vanishes
``mute_once=OP``    the board applies OP once and loses that first answer (tests retries)
``slow_tpm=S``      TPM commands take the slow discrete-TPM profile times S seconds
``clone``      (runner) the last board gets a copy of the first board's TPM state
``lie_ek``     the board answers ReadPublic of the EK (0x81010001) with the TPM2B_PUBLIC in
               ``<state>/lie-ek.bin`` (another TPM's EK) instead of its own
``tpm_failure``  the TPM answers every command with TPM_RC_FAILURE (failure mode)
``tpm_lockout``  the TPM refuses every authorized command with TPM_RC_LOCKOUT (DA lockout)
``bad_tpm_rsp=N``  the response to the Nth TPM command (1-based) comes back truncated
``nv_read_empty``  the TPM answers every NV_Read with success and zero bytes
``nv_size=N``  NV_ReadPublic of the EK-credential NV indices says they hold N bytes (the
               name recomputed to match)
``cap_same_handle``  GetCapability(handles) of NV indices answers "more data" with the same
               handle (0x01c00002), whatever handle was asked for, for ever
``cap_endless``  GetCapability(handles) of NV indices answers "more data" with the handle asked
               for, for ever (each page moves one handle on and never reaches the end)
``stuck_key``  the secure element ignores ``keygen`` while it holds a key and answers with that
               key (a cloned or counterfeit secure element; copy another board's device key
               file, ``LabBoards.device_key_file``, into its state folder to clone it)
``no_p384``    the secure element makes P-256 keys only: ``keygen`` with ``curve: "p384"`` is
               ``unsupported`` (a board that cannot hold a DPS operational certificate)
``csr_cn=CN``  the board's CSRs name CN instead of the CN the station asked for
``bad_csr_sig``  the board's CSRs carry a damaged signature (one bit of it flipped)
``no_serial``  the board reports an empty serial (blank serial EEPROM: the serial is only on
               its sticker, and the technician scans it)
``seed=N``     random seed, for reproducible noise
============== ==============================================================================

C boards (``--firmware c``, the C agent's host port) parse the same text and inject every fault
but ``lie_ek``, ``csr_cn`` and ``bad_csr_sig`` (see ``lab/station_lab/boards/c_agent.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from station.protocol.ops import Op


class FaultSpecError(ValueError):
    """The ``--faults`` text is not valid."""


@dataclass(frozen=True)
class Faults:
    """Fault settings of one board (all off by default)."""

    flip: float = 0.0
    drop: float = 0.0
    garbage: float = 0.0
    unplug_after: int = 0
    unplug_at: str = ""
    mute_once: str = ""
    slow_tpm: float = 0.0
    clone: bool = False
    lie_ek: bool = False
    tpm_failure: bool = False
    tpm_lockout: bool = False
    bad_tpm_rsp: int = 0
    nv_read_empty: bool = False
    nv_size: int = 0
    cap_same_handle: bool = False
    cap_endless: bool = False
    stuck_key: bool = False
    no_serial: bool = False
    no_p384: bool = False
    csr_cn: str = ""
    bad_csr_sig: bool = False
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> Faults:
        """Parse ``--faults`` text (empty = no faults).

        Raises:
            FaultSpecError: unknown name, bad number or unknown operation.
        """
        values: dict[str, object] = {}
        kinds = {f.name: f.type for f in fields(cls)}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in kinds:
                raise FaultSpecError(f"unknown fault '{name}'; known: {', '.join(kinds)}")
            kind = kinds[name]
            try:
                if kind == "bool":
                    values[name] = value.strip().lower() not in ("0", "false", "no")
                elif kind == "float":
                    number = float(value)
                    if not 0.0 <= number <= (1.0 if name != "slow_tpm" else 100.0):
                        raise FaultSpecError(f"fault '{name}' out of range: {value}")
                    values[name] = number
                elif kind == "int":
                    values[name] = int(value)
                    if int(value) < 0:
                        raise FaultSpecError(f"fault '{name}' must not be negative")
                elif name == "csr_cn":
                    values[name] = value.strip()
                else:
                    if value not in {op.value for op in Op}:
                        raise FaultSpecError(f"fault '{name}' needs an operation, not '{value}'")
                    values[name] = value
            except ValueError as exc:
                if isinstance(exc, FaultSpecError):
                    raise
                raise FaultSpecError(f"fault '{name}' has a bad value '{value}'") from exc
        return cls(**values)  # type: ignore[arg-type]

    @property
    def affects_tpm(self) -> bool:
        """Whether any TPM-level fault is set (the board then wraps its TPM)."""
        return (
            self.lie_ek
            or self.tpm_failure
            or self.tpm_lockout
            or self.bad_tpm_rsp > 0
            or self.nv_read_empty
            or self.nv_size > 0
            or self.cap_same_handle
            or self.cap_endless
        )

    def render(self) -> str:
        """The ``--faults`` text for these settings (only what differs from the default)."""
        default = Faults()
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(default, f.name):
                parts.append(f.name if value is True else f"{f.name}={value}")
        return ",".join(parts)
