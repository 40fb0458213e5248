"""The Qt binding the station runs on must not corrupt the interpreter.

PySide6 6.12.0 lost one reference to ``True`` on every signal emitted from Python; the line view
emits thousands per shift, and the interpreter aborted ("deallocating True or False") within
minutes of a busy line. pyproject.toml excludes that release; this test catches the next one.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QApplication

EMITS = 100  # enough to see a per-emit leak, few enough to fail before an abort


class _Emitter(QObject):
    value = Signal(object)
    pair = Signal(str, object)
    start = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.start.connect(self.run)

    @Slot()
    def run(self) -> None:
        for _ in range(EMITS):
            self.value.emit(None)
            self.pair.emit("slot-1", None)


class _Receiver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def take(self, *_values: object) -> None:
        self.count += 1


def _singletons() -> tuple[int, int, int]:
    return sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)


def test_signals_emitted_on_the_gui_thread_keep_reference_counts(qtbot) -> None:
    emitter, receiver = _Emitter(), _Receiver()
    emitter.value.connect(receiver.take)
    emitter.pair.connect(receiver.take)
    before = _singletons()
    emitter.run()
    after = _singletons()
    assert receiver.count == 2 * EMITS
    # a few references come and go with caches; a leak per emit would show hundreds
    assert all(abs(a - b) < 50 for a, b in zip(before, after, strict=True)), (before, after)


def test_signals_emitted_on_a_worker_thread_keep_reference_counts(qtbot) -> None:
    thread = QThread()
    emitter, receiver = _Emitter(), _Receiver()
    emitter.moveToThread(thread)
    emitter.value.connect(receiver.take)
    emitter.pair.connect(receiver.take)
    thread.start()
    try:
        before = _singletons()
        emitter.start.emit()
        qtbot.waitUntil(lambda: receiver.count == 2 * EMITS, timeout=30_000)
        QApplication.processEvents()
        after = _singletons()
    finally:
        thread.quit()
        thread.wait()
    assert all(abs(a - b) < 50 for a, b in zip(before, after, strict=True)), (before, after)
