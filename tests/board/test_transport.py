"""The pyserial transport over URLs, and sessions facing things that are not boards."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from station.adapters.board.session import BoardSession, open_session
from station.adapters.board.transport import SerialTransport
from station.domain.errors import BoardDisconnectedError, BoardProtocolError, BoardTimeoutError
from tests.support.board_tcti import BoardTcti


def test_loop_url_round_trip() -> None:
    transport = SerialTransport("loop://")
    try:
        transport.write(b"\x00abc\x00")
        assert transport.read(time.monotonic() + 2) == b"\x00abc\x00"
        assert transport.read(time.monotonic() + 0.05) == b""
        assert (transport.bytes_in, transport.bytes_out) == (5, 5)
    finally:
        transport.close()


def test_an_echoing_line_is_a_protocol_error_not_a_crash() -> None:
    # loop:// returns our own request: a valid frame that is not a response.
    session = open_session("loop://", timeout_s=0.2, retries=2)
    try:
        with pytest.raises(BoardProtocolError) as caught:
            session.hello()
        assert "invalid message" in caught.value.message
        assert caught.value.details["attempts"] == 3
    finally:
        session.close()


def test_missing_port_is_disconnected_with_a_remedy() -> None:
    with pytest.raises(BoardDisconnectedError) as caught:
        SerialTransport("/dev/ttyNOPE99")
    assert caught.value.remedy and caught.value.details["port"] == "/dev/ttyNOPE99"


@pytest.fixture
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """A TCP peer on 127.0.0.1 that accepts and reads but never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.settimeout(0.1)
            while not done.is_set():
                try:
                    if not connection.recv(4096):
                        return
                except TimeoutError:
                    continue

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield f"socket://127.0.0.1:{server.getsockname()[1]}", done
    finally:
        done.set()
        thread.join(timeout=10)
        server.close()


def test_socket_url_silent_peer_times_out(silent_server: tuple[str, threading.Event]) -> None:
    url, _ = silent_server
    session = open_session(url, timeout_s=0.2, retries=1)
    try:
        with pytest.raises(BoardTimeoutError) as caught:
            session.write("dps", b"x")
        assert caught.value.code == "board.timeout"
        assert session.stats.retries == 1
    finally:
        session.close()


def test_tcti_keeps_the_board_error_for_the_caller() -> None:
    session = open_session("loop://", timeout_s=0.1, retries=0)
    tcti = BoardTcti(session)
    try:
        with pytest.raises(BoardProtocolError):
            tcti.do_transmit(bytes.fromhex("80010000000c0000017b0008"))
        assert isinstance(tcti.last_error, BoardProtocolError)
        with pytest.raises(RuntimeError):
            tcti.do_receive(-1)
    finally:
        session.close()


def test_session_type_satisfies_the_port() -> None:
    from station.ports import BoardLink

    def accepts(link: BoardLink) -> str:
        return link.port

    session = open_session("loop://")
    try:
        assert isinstance(session, BoardSession)
        assert accepts(session) == "loop://"
    finally:
        session.close()


def test_a_line_that_never_stops_sending_still_times_out() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def flood() -> None:
        connection, _ = server.accept()
        with connection:
            while not done.is_set():
                try:
                    connection.sendall(b"\x00" * 256)  # endless empty frames
                except OSError:
                    return
                done.wait(0.001)

    thread = threading.Thread(target=flood)
    thread.start()
    session = open_session(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout_s=0.2)
    session.retries = 1
    try:
        with pytest.raises(BoardTimeoutError):
            session.hello()
    finally:
        session.close()
        done.set()
        thread.join(timeout=10)
        server.close()
