"""``deconvgan serve`` on the command line: arguments, settings validation, warnings, the missing extra,
and a real server process answering on 127.0.0.1 and shutting down cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deconvgan.cli import main
from deconvgan.errors import ConfigError
from deconvgan.serve import ServeSettings, command
from deconvgan.serve.settings import parse_snapshot_args, snapshot_name


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def fake_uvicorn(monkeypatch):
    """uvicorn.run replaced by a recorder: the command builds the app and returns."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    return calls


def test_serve_builds_the_app_and_binds_loopback_by_default(serve_snapshots, fake_uvicorn, capsys):
    assert main(["serve", str(serve_snapshots["digits"]), f"tex={serve_snapshots['texture']}", "--port", "8123",
                 "--backend", "torch", "--max-batch", "32"]) == 0
    (app, kwargs), = fake_uvicorn
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8123
    assert list(app.state.models) == ["run", "tex"] and app.state.settings.max_batch == 32
    err = capsys.readouterr().err
    assert "serving run, tex on http://127.0.0.1:8123/" in err and "warning" not in err


def test_a_public_host_is_warned_about(serve_snapshots, fake_uvicorn, capsys, monkeypatch):
    assert main(["serve", str(serve_snapshots["digits"]), "--host", "0.0.0.0", "--backend", "torch"]) == 0
    assert "warning: --host 0.0.0.0 is reachable from other machines; anyone" in capsys.readouterr().err
    monkeypatch.setenv("SERVE_TOKEN", "a-long-secret")
    assert main(["serve", str(serve_snapshots["digits"]), "--host", "::", "--token-env", "SERVE_TOKEN"]) == 0
    err = capsys.readouterr().err
    assert "warning: --host :: is reachable" in err and "anyone" not in err
    assert fake_uvicorn[-1][0].state.settings.token == "a-long-secret"


@pytest.mark.parametrize(("argv", "message"), [
    (["/no/such/run"], "/no/such/run"),
    (["--token-env", "UNSET_SERVE_TOKEN_VAR"], "--token-env UNSET_SERVE_TOKEN_VAR: the environment variable is not"),
    (["--cors-origin", "example.org"], "--cors-origin 'example.org' must look like https://example.org"),
    (["a=x", "a=y"], "two snapshots are named 'a'"),
    (["--max-batch", "0"], "--max-batch: 0 is outside [1, 4096]"),
])
def test_bad_arguments_are_one_line_errors(serve_snapshots, fake_uvicorn, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("UNSET_SERVE_TOKEN_VAR", raising=False)
    snapshot = [] if any("=" in a and not a.startswith("-") for a in argv) or argv[0].startswith("/") else \
        [str(serve_snapshots["digits"])]
    assert main(["serve", *snapshot, *argv]) == 2
    assert message in one_line_error(capsys) and not fake_uvicorn


def test_without_the_serve_extra_the_command_says_how_to_install_it(serve_snapshots, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    assert main(["serve", str(serve_snapshots["digits"])]) == 2
    assert one_line_error(capsys) == "error: deconvgan serve needs the serve extra: pip install 'deconvgan[serve]'\n"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"snapshots": {}}, "no snapshot to serve"),
    ({"snapshots": {"../x": "p"}}, "model name '../x' must be"),
    ({"snapshots": {"a b": "p"}}, "model name 'a b' must be"),
    ({"port": 70000}, r"--port=70000 must be an integer in \[0, 65535\]"),
    ({"backend": "tensorrt"}, "--backend 'tensorrt' is not one of auto, onnx, torch"),
    ({"max_delay_ms": float("nan")}, "--max-delay-ms=nan must be a finite number"),
    ({"max_batch": True}, "--max-batch=True must be an integer"),
    ({"request_timeout_s": 0}, r"--timeout-s=0 must be a finite number in \(0, 86400\]"),
    ({"token": "short"}, "at least 8 characters"),
    ({"token_env": "1BAD"}, "must be an environment variable name"),
    ({"max_frames": 1}, r"--max-frames=1 must be an integer in \[2, 10000\]"),
])
def test_settings_are_validated_with_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ServeSettings(**{"snapshots": {"m": Path("m.safetensors")}, **overrides})


def test_snapshot_names(tmp_path):
    run = tmp_path / "00003-digits"
    run.mkdir()
    assert snapshot_name(run) == "00003-digits"
    assert snapshot_name(run / "snapshot.safetensors") == "00003-digits"
    assert snapshot_name(run / "snapshots" / "snapshot-000050.safetensors") == "00003-digits-snapshot-000050"
    assert snapshot_name(tmp_path / "g.safetensors") == "g"
    assert parse_snapshot_args(["mine=" + str(run), str(tmp_path / "g.safetensors")]) == {
        "mine": run, "g": tmp_path / "g.safetensors"}


def test_only_safetensors_snapshots_are_loaded(tmp_path):
    from deconvgan.serve.app import create_app

    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04not a snapshot")
    with pytest.raises(ConfigError, match="loads only .safetensors snapshots"):
        create_app(ServeSettings(snapshots={"m": pickle}))


def test_loopback_addresses():
    assert all(command.is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(command.is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_server_process_answers_and_stops_on_sigterm(serve_snapshots):
    import httpx

    port = _free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    process = subprocess.Popen([sys.executable, "-m", "deconvgan", "serve", f"digits={serve_snapshots['digits']}",
                                "--port", str(port), "--backend", "torch", "--directions", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if \
                process.poll() is not None else "not ready within 60 s"
            time.sleep(0.1)
        image = httpx.get(base + "/v1/models/digits/images/3.png", timeout=10)
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert httpx.get(base + "/", timeout=10).headers["content-type"].startswith("text/html")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    # uvicorn shuts down gracefully (batchers stopped), then ends by the signal it caught, as a server should
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "serving digits on http://127.0.0.1:" in err and "Application shutdown complete" in err
