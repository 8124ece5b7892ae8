"""Test hosts as Linux network namespaces on a bridge of their own, and their removal.

Everything this module makes is named ``wsmh<pid>…`` (wsgisession multihost, then the id of the
test process that made it): the bridge ``wsmh<pid>br``, the host namespaces ``wsmh<pid>-h<n>``,
the veth ends ``wsmh<pid>v<n>`` and the run folder ``$TMPDIR/wsmh<pid>-…``. A later run removes
whatever a run whose process is gone left behind (``remove_leftovers``), so a crashed or killed
run never leaves namespaces, links or servers on the machine.

The addresses come from 10.213.0.0/16 and exist only on this bridge and in these namespaces:
the root namespace holds ``.1`` (where the throwaway Redis and PostgreSQL listen), the hosts
``.11``, ``.12``, … Nothing is routed anywhere else.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "wsmh"
_NAME = re.compile(rf"^{PREFIX}(\d+)(?:br|v\d+|-h\d+)$")
_RUN_DIR = re.compile(rf"^{PREFIX}(\d+)-")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run iproute2's ``ip`` with *args*; raise with its message when *check* and it fails."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _no_ipv6(link: str, namespace: str | None = None) -> None:
    """Turn IPv6 off on *link*, so it gets no link-local address and sends no solicitations."""
    setting = f"net.ipv6.conf.{link}.disable_ipv6=1"
    where = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run([*where, "sysctl", "-q", "-w", setting], capture_output=True, timeout=30)


def _owner_alive(pid: int) -> bool:
    """Tell whether the test process that made a name with *pid* in it is still running."""
    if pid == os.getpid():
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"python" in cmdline or b"pytest" in cmdline


def kill_processes_in(folder: Path) -> None:
    """SIGKILL every process whose working directory lies in *folder* (a run's servers).

    Each server of the root namespace starts in its own folder of the run folder, and its
    children (nginx's workers, PostgreSQL's backends) inherit that, so the working directory
    finds them all, even after the folder was deleted.
    """
    root = str(folder)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def kill_namespace_processes(namespace: str) -> None:
    """SIGKILL every process still running inside *namespace*, and wait until they are gone."""
    for _ in range(50):
        pids = [int(p) for p in ip("netns", "pids", namespace, check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_leftovers() -> list[str]:
    """Remove namespaces, links, servers and folders of earlier runs whose process is gone.

    Returns what it removed, so the run can say so.
    """
    removed: list[str] = []
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if match and not _owner_alive(int(match.group(1))):
            kill_namespace_processes(name)
            ip("netns", "delete", name, check=False)
            removed.append(f"namespace {name}")
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        match = _NAME.match(name)
        if match and not _owner_alive(int(match.group(1))):
            ip("link", "delete", name, check=False)
            removed.append(f"link {name}")
    tmp = Path(tempfile.gettempdir())
    for folder in tmp.glob(f"{PREFIX}*-*"):
        match = _RUN_DIR.match(folder.name)
        if not match or not folder.is_dir() or _owner_alive(int(match.group(1))):
            continue
        kill_processes_in(folder)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(f"folder {folder}")
    return removed


def _subnet_in_use(third_octet: int) -> bool:
    """Tell whether 10.213.<third_octet>.0/24 already appears on any link or route here."""
    needle = f"10.213.{third_octet}."
    shown = ip("-o", "addr", "show", check=False).stdout + ip("route", "show", check=False).stdout
    return needle in shown


@dataclass
class Host:
    """One application host: a network namespace with one address on the test bridge."""

    name: str
    namespace: str
    address: str


@dataclass
class Network:
    """A bridge in the root namespace and one namespace per host, each joined by a veth pair."""

    tag: str
    bridge: str
    gateway: str
    hosts: list[Host] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, host_count: int) -> Network:
        """Build the bridge and *host_count* hosts; undo what was made if a step fails."""
        tag = f"{PREFIX}{os.getpid()}"
        octet = next(
            (n for n in [os.getpid() % 200 + 10, *range(10, 250)] if not _subnet_in_use(n)), None
        )
        if octet is None:
            raise RuntimeError("every 10.213.x.0/24 is already in use here; remove some of them")
        network = cls(tag=tag, bridge=f"{tag}br", gateway=f"10.213.{octet}.1")
        try:
            ip("link", "add", network.bridge, "type", "bridge")
            network.links.append(network.bridge)
            _no_ipv6(network.bridge)
            ip("addr", "add", f"{network.gateway}/24", "dev", network.bridge)
            ip("link", "set", network.bridge, "up")
            for n in range(1, host_count + 1):
                host = Host(f"host{n}", f"{tag}-h{n}", f"10.213.{octet}.{10 + n}")
                veth = f"{tag}v{n}"
                ip("netns", "add", host.namespace)
                network.hosts.append(host)
                ip(
                    "link",
                    "add",
                    veth,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    host.namespace,
                )
                network.links.append(veth)
                _no_ipv6(veth)
                _no_ipv6("all", host.namespace)
                _no_ipv6("eth0", host.namespace)
                ip("link", "set", veth, "master", network.bridge)
                ip("link", "set", veth, "up")
                inside = ("netns", "exec", host.namespace, "ip")
                ip(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
                ip(*inside, "link", "set", "eth0", "up")
                ip(*inside, "link", "set", "lo", "up")
        except BaseException:
            network.destroy()
            raise
        return network

    def run_dir(self) -> Path:
        """A fresh folder for this run's servers, named so that a later run can find it."""
        return Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))

    def destroy(self) -> None:
        """Remove every namespace (and what runs in it) and every link this network made."""
        for host in self.hosts:
            kill_namespace_processes(host.namespace)
            ip("netns", "delete", host.namespace, check=False)
        for link in reversed(self.links):
            ip("link", "delete", link, check=False)
        self.hosts.clear()
        self.links.clear()

    def leftovers(self) -> list[str]:
        """Names of this run's namespaces and links that still exist (empty after destroy())."""
        names = ip("netns", "list", check=False).stdout + ip("-o", "link", check=False).stdout
        return sorted(set(re.findall(rf"\b{self.tag}(?:br|v\d+|-h\d+)\b", names)))
