from pathlib import Path

from tpm2_pytss import ESAPI, TCTILdr

from station_lab.swtpm import SocketSwtpm


def test_socket_swtpm_serves_commands_and_cleans_up(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TSS2_LOG", "all+none")
    state = tmp_path / "state"
    state.mkdir()
    with SocketSwtpm(state_dir=state) as tpm:
        ectx = ESAPI(TCTILdr("swtpm", tpm.tcti_conf))
        try:
            assert len(bytes(ectx.get_random(8))) == 8
        finally:
            ectx.close()
        sockets = tpm.socket.parent
        assert tpm.socket.exists()
    assert not sockets.exists()
    assert any(state.iterdir()), "a given state directory keeps the TPM's state"

    temporary = SocketSwtpm().start()
    own_state = temporary.state_dir
    temporary.stop()
    assert not own_state.exists()
