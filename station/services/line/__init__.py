"""The line as a Qt-free model: scans, slots, the serial and rework queues, the counters.

``scans`` classifies what was scanned (it reads the store, so it runs off the GUI thread);
``model`` is the line's state, which the GUI's line view renders.
"""

from station.services.line.model import (
    LineModel,
    ProvisionOrder,
    Question,
    Rework,
    ScanAction,
    SelectBatch,
    SlotResult,
    SlotView,
    SwitchOperator,
)
from station.services.line.scans import BatchChoice, Scan, ScanClassifier, ScanKind, choose_batch

__all__ = [
    "BatchChoice",
    "LineModel",
    "ProvisionOrder",
    "Question",
    "Rework",
    "Scan",
    "ScanAction",
    "ScanClassifier",
    "ScanKind",
    "SelectBatch",
    "SlotResult",
    "SlotView",
    "SwitchOperator",
    "choose_batch",
]
