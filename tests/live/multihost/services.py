"""The servers of a multi-host run: throwaway Redis and PostgreSQL, nginx, one gunicorn per host.

Redis, PostgreSQL and nginx run in the root namespace; Redis and PostgreSQL listen on the test
bridge's address only (every host reaches them there), nginx on a loopback port only. Each
application host runs gunicorn inside its namespace on its own address. Every server keeps its
files and logs in its own folder of the run folder and runs from there, so a later run can find
and stop it after a crash.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .netns import Host, Network, kill_namespace_processes

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
GUNICORN_CONF = EXAMPLES / "gunicorn.conf.py"
#: Port every host's gunicorn listens on (each host has its own address, so they never clash).
APP_PORT = 8000
#: Sync workers per host: enough to keep three hosts busy on a 2-core machine.
WORKERS = 2


def free_port(address: str) -> int:
    """A TCP port nobody listens on at *address* right now."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def wait_for_port(address: str, port: int, what: str, log: Path, timeout: float = 30.0) -> None:
    """Wait until *address*:*port* accepts a connection; fail with the server's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    raise RuntimeError(f"{what} did not listen on {address}:{port} in {timeout:.0f}s:\n{tail}")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Send *sig* to *process*, then SIGKILL it if it has not exited after *grace* seconds."""
    if process.poll() is None:
        try:
            process.send_signal(sig)
            process.wait(grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class RedisServer:
    """A throwaway redis-server on the bridge address, no persistence, in its own folder."""

    def __init__(self, network: Network, folder: Path) -> None:
        self.folder = folder / "redis"
        self.folder.mkdir()
        self.address = network.gateway
        self.port = free_port(self.address)
        self.log = self.folder / "redis.log"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                self.address,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.log),
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.address, self.port, "redis-server", self.log)

    @property
    def url(self) -> str:
        """The store URL every host uses."""
        return f"redis://{self.address}:{self.port}/0"

    def stop(self) -> None:
        """Stop the server."""
        _stop(self.process)


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb, run as the postgres user) on the bridge address."""

    def __init__(self, network: Network, folder: Path) -> None:
        self.folder = folder / "postgres"
        self.folder.mkdir()
        self.data = self.folder / "data"
        self.address = network.gateway
        self.port = free_port(self.address)
        self.log = self.folder / "postgres.log"
        os.chmod(folder, 0o711)  # mkdtemp makes it 0700; the postgres user must get through
        shutil.chown(self.folder, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *as_postgres,
                "initdb",
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.213.0.0/16 trust\n")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    *as_postgres,
                    "postgres",
                    "-D",
                    str(self.data),
                    "-h",
                    self.address,
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.folder),
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=100",
                    "-c",
                    "shared_buffers=32MB",
                ],
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.address, self.port, "postgres", self.log, timeout=60)

    @property
    def url(self) -> str:
        """The store URL every host uses."""
        return f"postgresql://postgres@{self.address}:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the cluster with a fast shutdown (SIGINT to the postmaster)."""
        pidfile = self.data / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGINT)
        except (OSError, ValueError, IndexError):
            pass
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class Nginx:
    """nginx in the root namespace: a round-robin load balancer on a loopback port."""

    def __init__(self, network: Network, folder: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="nginx-", dir=folder))
        self.port = free_port("127.0.0.1")
        self.log = self.folder / "error.log"
        self.conf = self.folder / "nginx.conf"
        self.conf.write_text(nginx_conf(network.hosts, self.port, self.folder))
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.folder), "-e", str(self.log), "-c", str(self.conf)],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_port("127.0.0.1", self.port, "nginx", self.log)

    @property
    def url(self) -> str:
        """Where the clients send their requests."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop nginx at once (SIGTERM is its fast shutdown)."""
        _stop(self.process)


def nginx_conf(hosts: list[Host], port: int, folder: Path) -> str:
    """The load balancer's configuration: the one the README shows, with this run's paths."""
    servers = "\n".join(
        f"        server {host.address}:{APP_PORT} max_fails=1 fail_timeout=10s;" for host in hosts
    )
    return f"""\
# Written by tests/multihost; the README's "Running on several hosts" shows the same setup.
daemon off;
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;

    upstream app {{
        # Round robin (nginx's default): no stickiness, any host may serve any request.
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            # A host that refuses or drops the connection: try the next one, POSTs too
            # (see the README on non_idempotent).
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


class AppHost:
    """gunicorn serving the example application inside one host's namespace."""

    def __init__(self, host: Host, folder: Path, store_url: str, secret_keys: list[str]) -> None:
        self.host = host
        self.log = folder / f"{host.name}.log"
        self.pidfile = folder / f"{host.name}.pid"
        env = dict(os.environ)
        env.update(
            WSGISESSION_STORE=store_url,
            WSGISESSION_SECRET=",".join(secret_keys),
            MULTIHOST_HOST=host.name,
        )
        config = ["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.exists() else []
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.namespace,
                    gunicorn,
                    *config,
                    "--bind",
                    f"{host.address}:{APP_PORT}",
                    "--workers",
                    str(WORKERS),
                    "--worker-class",
                    "sync",
                    "--pid",
                    str(self.pidfile),
                    "--chdir",
                    str(Path(__file__).parent),
                    "hostapp:app",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.secret_keys = list(secret_keys)
        wait_for_port(host.address, APP_PORT, f"gunicorn on {host.name}", self.log)

    def kill_master(self) -> None:
        """SIGKILL the gunicorn master, as a crashed host would lose it; workers are left."""
        self.process.kill()
        self.process.wait(5)

    def stop(self) -> None:
        """Stop gunicorn gracefully, then make sure nothing is left in the namespace."""
        _stop(self.process)
        kill_namespace_processes(self.host.namespace)

    def running(self) -> bool:
        """Tell whether any process (master or orphaned worker) still runs in the namespace."""
        out = subprocess.run(
            ["ip", "netns", "pids", self.host.namespace],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return bool(out.split())
