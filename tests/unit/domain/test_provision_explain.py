"""A failed step explained to the technician: errors matched by type, never by code text."""

from __future__ import annotations

from station.domain.errors import (
    BoardDisconnectedError,
    BoardTimeoutError,
    DuplicateIdentityError,
    KeyPinError,
    ProvisionCancelledError,
    SerialNeededError,
    StationError,
    TpmUnreachableError,
    error_class,
)
from station.domain.provision_events import INTERRUPTIONS, Step, explain, failure_kind


def test_an_unplug_is_worded_for_the_technician() -> None:
    why = explain(Step.WRITE_CHAIN, BoardDisconnectedError("gone"))
    assert why.reason == "The board was unplugged or lost power during write-chain."
    assert "resumes" in why.remedy


def test_a_tpm_command_lost_on_the_link_is_judged_by_the_board_error_under_it() -> None:
    lost = TpmUnreachableError("cannot read the EK: no answer", cause=BoardTimeoutError.code)
    assert failure_kind(lost) is BoardTimeoutError
    assert issubclass(failure_kind(lost), INTERRUPTIONS)  # the job stays resumable
    assert "swap the cable" in explain(Step.TPM_EK, lost).remedy
    # a cause that is no board error does not change the judgement
    odd = TpmUnreachableError("cannot read", cause=DuplicateIdentityError.code)
    assert failure_kind(odd) is TpmUnreachableError
    assert not issubclass(failure_kind(odd), INTERRUPTIONS)


def test_errors_that_name_the_board_speak_in_their_own_words() -> None:
    why = explain(Step.CONNECT, SerialNeededError("the board reports no serial number"))
    assert why.reason == "The board reports no serial number."
    assert why.remedy.startswith("Scan the serial number printed on the board")
    duplicate = DuplicateIdentityError("serial SN-1 is already recorded", remedy="Ask QA (WO-7).")
    assert explain(Step.DUPLICATES, duplicate).remedy == "Ask QA (WO-7)."


def test_other_errors_keep_their_own_remedy_or_go_to_qa() -> None:
    pin = KeyPinError("the token refused the PIN", remedy="Check the PIN file.")
    why = explain(Step.ISSUE, pin)
    assert why.reason == "The station could not issue the certificate (the token refused the PIN)."
    assert why.remedy == "Check the PIN file."
    assert explain(Step.LOCK, StationError("odd")).remedy == (
        "Set the board aside for QA with this message."
    )
    assert issubclass(failure_kind(ProvisionCancelledError("stop")), INTERRUPTIONS)


def test_error_class_finds_every_code() -> None:
    assert error_class("board.disconnected") is BoardDisconnectedError
    assert error_class("station.error") is StationError
    assert error_class("no.such.code") is None
    assert error_class("") is None
