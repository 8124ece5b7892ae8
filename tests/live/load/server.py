"""Real gunicorn servers for the load suite, HTTP clients that keep their connection, a report.

A :class:`Gunicorn` listens on a socket the test opened itself (127.0.0.1, port 0, handed over
as ``fd://N``), so there is no race for a free port. Its output goes to a file whose tail every
failed assertion shows. It runs in its own process group, and :meth:`Gunicorn.stop` ends that
group: arbiter and workers.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from tests.support.stores import Backend, make_backend

ROOT = Path(__file__).resolve().parents[3]

#: gunicorn options of each worker model the suite runs.
WORKER_MODELS: dict[str, list[str]] = {
    "sync 4": ["--workers", "4", "--worker-class", "sync"],
    "gthread 2x8": ["--workers", "2", "--worker-class", "gthread", "--threads", "8"],
    "sync 4 --preload": ["--workers", "4", "--worker-class", "sync", "--preload"],
}

#: Lines a server log must never hold after a load run (T53, T55).
BAD_LOG_WORDS = (
    "Traceback", "database is locked", "protocol", "Worker failed", "WORKER TIMEOUT",
    "SHARED ACROSS FORK",
)  # fmt: skip


class Gunicorn:
    """One gunicorn serving ``tests.support.served:application`` with the given store."""

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str], log_path: Path, name: str = ""
    ) -> None:
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 20.0) -> Gunicorn:
        """Start the server and wait until it answers."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(256)
        self.port = listener.getsockname()[1]
        fd = listener.fileno()
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable, "-m", "gunicorn", "--bind", f"fd://{fd}", "--no-control-socket",
            "--log-level", "warning", "--timeout", "30", "--graceful-timeout", "2",
            "--keep-alive", "10", *self.args, "tests.support.served:application",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(fd,), start_new_session=True,
            )  # fmt: skip
        listener.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn {self.name} exited at start\n{self.tail()}")
            try:
                with Client(self.port) as probe:
                    status, _, _ = probe.get("/noop")
                if status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"gunicorn {self.name} did not answer in {timeout}s\n{self.tail()}"
                )
            time.sleep(0.05)

    def tail(self, lines: int = 40) -> str:
        """The last lines of the server's output, for assertion messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        body = "\n".join(text.splitlines()[-lines:])
        return f"--- gunicorn {self.name} log tail ({self.log_path}) ---\n{body}"

    def log(self) -> str:
        """The server's whole output so far."""
        return self.log_path.read_text(errors="replace")

    def workers(self) -> list[int]:
        """The process ids of the arbiter's children (the workers)."""
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        """End the arbiter and its workers (their process group): TERM, then KILL."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group, if any
        self.proc.wait(5)
        self.proc = None


class Client:
    """One HTTP client with its own keep-alive connection and its own cookie."""

    def __init__(self, port: int, cookie: str | None = None, timeout: float = 30.0) -> None:
        self.port = port
        self.cookie = cookie
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def get(self, path: str) -> tuple[int, Any, http.client.HTTPMessage]:
        """GET *path* with the cookie; keep any new session cookie; return status, body, headers."""
        headers = {"Cookie": f"wsgisession={self.cookie}"} if self.cookie else {}
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        for header in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            if "wsgisession" in jar:
                morsel = jar["wsgisession"]
                expired = morsel["max-age"] == "0"
                self.cookie = None if expired else morsel.value
        body: Any = raw.decode("utf-8", "replace")
        if response.headers.get_content_type() == "application/json":
            body = json.loads(body)
        return response.status, body, response.headers

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_together(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(0)`` … ``work(count - 1)`` in threads that start together; return their errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def main(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


@dataclass
class Served:
    """A running server and the store behind it."""

    backend: Backend
    model: str
    server: Gunicorn
    gates: Path

    def new_session(self) -> Client:
        """A client holding a freshly created session."""
        with Client(self.server.port) as client:
            status, _, _ = client.get("/set?init=1")
        assert status == 200 and client.cookie, self.server.tail()
        return client

    def dump(self, cookie: str) -> dict[str, object]:
        """The session's data as a new request sees it."""
        with Client(self.server.port, cookie) as client:
            status, body, _ = client.get("/dump")
        assert status == 200, self.server.tail()
        assert not body["new"], f"the session is gone\n{self.server.tail()}"
        return dict(body["data"])

    def assert_clean_log(self) -> None:
        """No traceback, lock or protocol error in the server's output (T53, T55)."""
        log = self.server.log()
        bad = [word for word in BAD_LOG_WORDS if word in log]
        assert not bad, f"server log mentions {bad}\n{self.server.tail()}"

    def record(self, scenario: str, clients: int, requests: int, lost: int, errors: int,
               started: float) -> None:  # fmt: skip
        REPORT.append(Row(self.backend.kind, self.model, scenario, clients, requests, lost,
                          errors, time.monotonic() - started))  # fmt: skip


@contextmanager
def serving(
    request: pytest.FixtureRequest,
    folder: Path,
    kind: str,
    model: str,
    store_options: Mapping[str, Any] | None = None,
    server_url: str | None = None,
    **env: str,
) -> Iterator[Served]:
    """Serve a fresh backend of *kind* with gunicorn's *model*; stop both on the way out.

    *store_options* are added to the backend's own; *server_url* names the Redis or PostgreSQL
    server to use; *env* is added to the server's environment.
    """
    backend = make_backend(kind, folder, request, server_url)
    backend.options.update(store_options or {})
    (folder / "gates").mkdir(exist_ok=True)
    server = Gunicorn(
        WORKER_MODELS[model],
        {
            **backend.env(),
            "WSGISESSION_TEST_WARM": "1",
            "WSGISESSION_TEST_GATES": str(folder / "gates"),
            **env,
        },
        folder / "gunicorn.log",
        name=f"{kind} {model}",
    )
    try:
        server.start()
        yield Served(backend, model, server, folder / "gates")
    finally:
        server.stop()
        backend.cleanup()


@dataclass
class Row:
    """One line of the load report."""

    store: str
    model: str
    scenario: str
    clients: int
    requests: int
    lost: int
    errors: int
    seconds: float


#: Every scenario run in this session, printed as a table at the end.
REPORT: list[Row] = []


def report_table() -> str:
    """The load report as a Markdown table."""
    lines = [
        "| store | worker model | scenario | clients | requests | lost updates | errors | s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in REPORT:
        lines.append(
            f"| {row.store} | {row.model} | {row.scenario} | {row.clients} | {row.requests} "
            f"| {row.lost} | {row.errors} | {row.seconds:.1f} |"
        )
    return "\n".join(lines)
