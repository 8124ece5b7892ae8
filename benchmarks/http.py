"""HTTP benchmarks: gunicorn (2 workers, 127.0.0.1) under wrk, one session per connection.

Each contender gets its own gunicorn, twice:

* ``sync``: sync workers, which close the connection after each response, so wrk reconnects
  for every request (a new TCP connection per request, for every contender alike);
* ``keep-alive``: gthread workers (:data:`THREADS` threads each), which keep the connection
  open, so wrk sends every request of a connection on one socket, as a browser behind a
  keep-alive proxy does; the session layer's share of a request shows more plainly.

Every wrk thread is one connection that carries its own session cookie (made before the run),
and takes up any cookie the server re-issues.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .contenders import Context, build, missing, session_cookie

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "session.lua"

CONTENDERS = [
    "bare",
    "floor:sqlite",
    "wsgisession:memory",
    "wsgisession:sqlite",
    "wsgisession:redis",
    "wsgisession:postgres",
    "wsgisession:cookie",
    "beaker:memory",
    "beaker:file",
    "beaker:redis",
    "beaker:cookie",
]
PAGES = {"untouched": "/untouched", "write": "/write"}
#: Per-process stores: the gunicorn master makes their sessions before it forks.
PRELOADED = {"wsgisession:memory", "beaker:memory", "beaker:memory-signed"}
CONNECTIONS = 4
#: Servers started per contender and mode; each page's figure is the best of theirs. Now and
#: then a gunicorn settles into a slow state for its whole life (about 1 ms per request, a
#: quarter of its usual rate, seen on different contenders in different runs): a second
#: server keeps that from deciding a ratio.
SERVERS = 2
#: The two server set-ups each contender is measured under: gunicorn's worker options.
MODES = {
    "sync": ["-k", "sync"],
    "keep-alive": ["-k", "gthread", "--threads", "4", "--keep-alive", "30"],
}


@dataclass(frozen=True)
class HttpResult:
    name: str
    label: str
    page: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int
    mode: str = "sync"

    def cell(self) -> str:
        text = f"{self.rps:,.0f} ({self.p50_ms:.1f} / {self.p99_ms:.1f})"
        if self.errors or self.non2xx:
            text += f" {self.errors + self.non2xx} errors"
        return text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gunicorn() -> str:
    candidate = Path(sys.executable).with_name("gunicorn")
    return str(candidate) if candidate.exists() else "gunicorn"


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode} before serving")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/untouched")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer on port {port} within {timeout:.0f} s")


def _wrk(port: int, page: str, cookies: list[str], duration: float) -> dict[str, int]:
    env = dict(os.environ, BENCH_PATH=page, BENCH_COOKIES="|".join(cookies))
    command = [
        "wrk",
        "-t", str(CONNECTIONS),
        "-c", str(CONNECTIONS),
        "-d", f"{duration}s",
        "--timeout", "5s",
        "-s", str(LUA),
        f"http://127.0.0.1:{port}",
    ]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, int] = json.loads(line[len("RESULT ") :])
            return result
    raise RuntimeError(f"wrk printed no result:\n{out}")


def run_one(name: str, ctx: Context, duration: float, mode: str = "sync") -> list[HttpResult]:
    """Serve contender *name* with gunicorn in *mode* and load each page in turn."""
    env = dict(os.environ, **ctx.env(), BENCH_CONTENDER=name)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [_gunicorn(), "-w", "2", *MODES[mode], "--log-level", "warning"]
    label = build(name, ctx).label if name == "bare" else ""
    cookies: list[str] = []
    if name in PRELOADED:
        cookies_file = os.path.join(ctx.root, f"cookies-{name.replace(':', '-')}-{mode}.txt")
        env["BENCH_COOKIES_FILE"] = cookies_file
        env["BENCH_CONNECTIONS"] = str(CONNECTIONS)
        command.append("--preload")
    elif name != "bare":
        contender = build(name, ctx)
        try:
            cookies = [session_cookie(contender.app, "/setup") for _ in range(CONNECTIONS)]
        finally:
            contender.close()
    contender_label = label or build_label(name, ctx)
    port = _free_port()
    command += ["-b", f"127.0.0.1:{port}", "benchmarks.wsgi:application"]
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    results = []
    try:
        _wait_ready(port, proc)
        if name in PRELOADED:
            cookies = Path(env["BENCH_COOKIES_FILE"]).read_text(encoding="utf-8").splitlines()
        pages = {"untouched": "/untouched"} if name == "bare" else PAGES
        _wrk(port, "/write", cookies, 1)  # warm up the workers and their connections
        for page, path in pages.items():
            raw = _wrk(port, path, cookies, duration)
            seconds = raw["duration_us"] / 1e6
            results.append(
                HttpResult(
                    name,
                    contender_label,
                    "bare" if name == "bare" else page,
                    raw["requests"] / seconds,
                    raw["p50_us"] / 1000,
                    raw["p99_us"] / 1000,
                    raw["errors"],
                    raw["non2xx"],
                    mode,
                )
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return results


def build_label(name: str, ctx: Context) -> str:
    contender = build(name, ctx)
    contender.close()
    return contender.label


def run(  # type: ignore[no-untyped-def]
    ctx: Context, duration: float = 3, contenders: list[str] | None = None, log=print
) -> list[HttpResult] | None:
    """Run the HTTP benchmarks (every contender, or bare and *contenders*); None without wrk."""
    if shutil.which("wrk") is None:
        log("HTTP: skipped, wrk is not installed (apt-get install wrk; make bench does it)")
        return None
    results: list[HttpResult] = []
    for name in CONTENDERS:
        if contenders and name not in ("bare", "floor:sqlite") and name not in contenders:
            continue
        reason = missing(name) if name != "bare" else None
        if reason is not None:
            log(f"HTTP {name}: skipped ({reason})")
            continue
        # Both modes of one contender back to back, so a busy spell hits them alike.
        for mode in MODES:
            log(f"HTTP {mode} {name}")
            best: dict[str, HttpResult] = {}
            for _ in range(SERVERS):
                for result in run_one(name, ctx, duration, mode):
                    kept = best.get(result.page)
                    if kept is None or result.rps > kept.rps:
                        best[result.page] = result
            for result in best.values():
                log(f"  {result.page:<10} {result.cell()} req/s (p50 / p99 ms)")
                results.append(result)
    return results


def find(results: list[HttpResult], name: str, page: str, mode: str = "sync") -> HttpResult | None:
    for result in results:
        if result.name == name and result.page == page and result.mode == mode:
            return result
    return None


def table(results: list[HttpResult], mode: str = "sync") -> str:
    """req/s (p50 / p99 ms) per contender and page in *mode*, with write as a share of bare."""
    results = [r for r in results if r.mode == mode]
    bare = find(results, "bare", "bare", mode)
    lines = [
        "| contender | untouched req/s (p50 / p99 ms) | write req/s (p50 / p99 ms) "
        "| write / bare |",
        "|---|---:|---:|---:|",
    ]
    if bare is not None:
        lines.append(f"| {bare.label} | {bare.cell()} | — | — |")
    names = [r.name for r in results if r.name != "bare"]
    for name in dict.fromkeys(names):
        untouched = find(results, name, "untouched", mode)
        write = find(results, name, "write", mode)
        share = f"{write.rps / bare.rps:.0%}" if write and bare else "—"
        label = (untouched or write).label  # type: ignore[union-attr]
        lines.append(
            f"| {label} | {untouched.cell() if untouched else '—'} | "
            f"{write.cell() if write else '—'} | {share} |"
        )
    lines.append("")
    if mode == "sync":
        lines.append(
            f"{CONNECTIONS} connections, one session each; gunicorn sync workers close every "
            "connection, so each request is a new TCP connection."
        )
    else:
        lines.append(
            f"{CONNECTIONS} connections, one session each, kept open: gunicorn gthread "
            f"workers ({' '.join(MODES[mode][1:])})."
        )
    lines[-1] += f" Each figure is the best of {SERVERS} servers' runs."
    return "\n".join(lines)
