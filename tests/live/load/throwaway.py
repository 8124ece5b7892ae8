"""Throwaway Redis and PostgreSQL servers that a test may stop and start again on the same port.

The outage tests must never stop the shared servers, so they run their own from the binaries on
PATH, in a temporary folder, on a free loopback port. Without the binaries they skip, except
under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def missing(binary: str) -> None:
    """Skip (fail under CI) because *binary* is not on PATH."""
    reason = f"{binary} is not on PATH; install it to run the store outage tests"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited at start:\n{log.read_text(errors='replace')}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"server did not listen on {port}:\n{log.read_text(errors='replace')}")


class Throwaway:
    """A server process of our own; :meth:`stop` and :meth:`start` keep its port and data."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict[str, Any]:
        return {}

    def ready(self) -> None:
        """Wait until the server answers."""
        assert self.proc is not None
        _wait_port(self.port, self.proc, self.log)

    def start(self) -> None:
        """Start the server (again) on its port."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                **self.popen_options(),
            )  # fmt: skip
        self.ready()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and wait for it to be gone."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class ThrowawayRedis(Throwaway):
    """``redis-server`` that saves its data when stopped, so a restart keeps the sessions."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            missing("redis-server")
        super().__init__(Path(tempfile.mkdtemp(prefix="wsgisession-redis-")))
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "3600 1",
            "--appendonly", "no", "--dir", str(self.folder),
        ]  # fmt: skip


class ThrowawayPostgres(Throwaway):
    """A PostgreSQL cluster made with ``initdb`` (as the ``postgres`` user when run as root).

    *settings* are more ``name=value`` server settings.
    """

    def __init__(self, *settings: str) -> None:
        self.settings = [part for setting in settings for part in ("-c", setting)]
        for binary in ("initdb", "postgres"):
            if shutil.which(binary) is None:
                missing(binary)
        folder = Path(tempfile.mkdtemp(prefix="wsgisession-pg-"))
        super().__init__(folder)
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            shutil.chown(folder, self.user, self.user)
        self.data = folder / "data"
        subprocess.run(
            ["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
             "-E", "UTF8"],
            check=True, capture_output=True, **self.popen_options(),
        )  # fmt: skip
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def popen_options(self) -> dict[str, Any]:
        return {"user": self.user, "group": self.user} if self.user else {}

    def command(self) -> list[str]:
        return [
            "postgres", "-D", str(self.data), "-p", str(self.port), "-k", str(self.folder),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=60",
            "-c", "shared_buffers=16MB", *self.settings,
        ]  # fmt: skip

    def start(self) -> None:
        self.log.touch()
        if self.user:
            shutil.chown(self.log, self.user, self.user)
        super().start()

    def ready(self) -> None:
        """Wait until the server accepts a query, not only the port."""
        super().ready()
        import psycopg

        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop with a fast shutdown (SIGINT): open connections are cut."""
        super().stop(sig)
