"""What to do about an error, said for the window: never "run station ..." or "--option".

The services' remedies are written for whoever calls them, mostly the CLI ("Seal it first:
station batch seal WO-1"). Someone at the window cannot type a command, so a remedy that names a
command or an option is replaced by the window's way to do it, or by whom to call.
"""

from __future__ import annotations

import re

from station.domain.errors import StationError

#: a remedy that tells someone to type a command or an option
_CLI = re.compile(
    r"""['"`]station\s|\bstation\s+(?:batch|label|ca|db|devices|operator|provision|board|tpm|"""
    r"""lab|init|gui|demo)\b|(?<![\w-])--[a-z]"""
)

#: error codes whose remedy the window always says its own way
_BY_CODE = {
    "batch.unresolved_jobs": (
        "Void the jobs whose boards will not come back with Void open jobs… (QA, with a "
        "reason), or resume them on the Line view; then seal again."
    ),
}

#: (what the CLI remedy is about, what to do in the window), first match wins
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (
            r"station label reprint",
            "QA: select the device in the QA view, type a reason and press Reprint label….",
        ),
        (r"--reason|reason TEXT", "Type the reason in the reason box, then try again."),
        (r"station label print", "Select the device in the QA view and press Print label."),
        (
            r"station devices (?:show|list)",
            "Search for it in the QA view (serial, registration ID or batch).",
        ),
        (r"station devices void", "Ask QA: rework the board from the QA view (Rework board…)."),
        (
            r"station provision void",
            "Let the job finish on the Line view, or have QA void it (QA view, Void job…).",
        ),
        (r"station batch seal", "Select the batch in the Batches view and press Seal first."),
        (r"station batch open", "Ask QA to open the batch in the Batches view."),
        (
            r"station batch export",
            "Press Export in the Batches view, create the enrollment group in DPS from its "
            "groups file, then push again.",
        ),
        (r"--operator", "Lock the window (Lock) and log in as an operator with that role."),
        (r"station operator", "Ask the station admin to add you in the Admin view."),
        (
            r"station db",
            "Stop releasing batches and call the station admin: the database must be checked "
            "first (admin guide, checking the database).",
        ),
        (
            r"writable (?:folder|location)",
            "Call the station admin: the station's output folder is not writable or the disk "
            "is full.",
        ),
        (
            r"--printer|--out",
            "Ask the station admin to set the label printer ([labels] printer in the station "
            "config); Test print in the Admin view checks it.",
        ),
        (
            r"station board bind|--location",
            "Plug the board in, then bind its slot in the Admin view (Slot binding).",
        ),
        (
            r"station ca",
            "Call the station admin: the CA needs their attention (admin guide, the CA ceremony).",
        ),
    )
)


def window_remedy(error: StationError) -> str:
    """What to do about ``error``, in terms of the window (empty when nothing is to be done)."""
    return remedy_for(error.code, error.remedy)


def remedy_for(code: str, remedy: str) -> str:
    """The window's version of ``remedy`` for an error ``code`` (also for a ``Failed`` event)."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if not _CLI.search(remedy):
        return remedy
    for about, text in _RULES:
        if about.search(remedy):
            return text
    return f"Call the station admin (error {code}); the admin guide says what to do."


def says_cli(text: str) -> bool:
    """Whether ``text`` tells the reader to type a station command or option."""
    return bool(_CLI.search(text))
