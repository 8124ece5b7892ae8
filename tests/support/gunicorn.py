"""Run an example under gunicorn with examples/gunicorn.conf.py, on a free loopback port.

The listening socket is made here and handed to gunicorn (``--bind fd://N``), so there is no
race for the port, and the server is ready to be connected to as soon as it is started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONFIG = EXAMPLES / "gunicorn.conf.py"


@dataclass
class Server:
    """A running gunicorn: its base URL, and its log once it has stopped."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What gunicorn printed so far."""
        return self.log_path.read_text(errors="replace")


def gunicorn_command(target: str, *args: str) -> list[str]:
    """The gunicorn command line for *target* (``module:app``) under the example config."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(CONFIG),
        "--chdir",
        str(EXAMPLES),
        "--no-control-socket",
        *args,
        target,
    ]


@contextmanager
def serve(
    target: str, env: Mapping[str, str], tmp_path: Path, workers: int = 2
) -> Iterator[Server]:
    """Serve *target* with *workers* workers until the block ends; stop it cleanly then."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    log_path = tmp_path / f"gunicorn-{port}.log"
    command = gunicorn_command(target, "--bind", f"fd://{listener.fileno()}", "-w", str(workers))
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
    listener.close()  # gunicorn holds its own copy
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until_serving(server)
        yield server
    finally:
        stop(process)


def wait_until_serving(server: Server, timeout: float = 30.0) -> None:
    """Wait for the first answer from the server; fail with its log when it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise AssertionError(f"gunicorn exited with {code}:\n{server.log()}")
        try:
            requests.get(server.url + "/", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not answer within {timeout:.0f} s:\n{server.log()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn (master and workers), politely first."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
